"""A thinking-budget sweep's figures: accuracy against the thinking tokens spent per sample (one line per count of
parallel samples, with its saturation point over the budget), and parallel against sequential scaling at equal
thinking tokens (accuracy against the thinking tokens spent per problem, N samples of budget B joined to one sample
of budget N x B). Both axes are measured spend, not the budgets: the budgets label the points."""
from __future__ import annotations

import plotly.graph_objects as go

from engine.saturation import DEFAULT_GAIN, series, sweep_saturation
from engine.thinking import equal_token_pairs, spent, thinking_cells
from ui.figures.style import TEMPLATE, empty_figure, esc, log_ticks
from ui.figures.sweeps import cost_at

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
PAIR = "#555555"
NO_AXIS = ("This sweep has no thinking-budget axis: sweep budget forcing over thinking budgets (and parallel "
           "samples) on a thinking model such as tiny-think.")


def _per_sample(cell: dict) -> float | None:
    t = spent(cell)
    return t / cell["samples"] if t is not None and cell.get("samples") else None


def _curves(result: dict | None) -> dict[str, list[dict]]:
    """Each (strategy, samples) line's cells by budget, only where thinking tokens were counted."""
    out: dict[str, list[dict]] = {}
    for c in thinking_cells(result):
        if spent(c):
            out.setdefault(series(c), []).append(c)
    return {k: sorted(v, key=lambda c: int(c["budget"])) for k, v in out.items()}


def _layout(fig: go.Figure, title: str, xlabel: str, height: int, revision: str) -> go.Figure:
    fig.update_xaxes(type="log", title_text=xlabel, **log_ticks([v for t in fig.data if t.x is not None for v in t.x]))
    fig.update_yaxes(range=[-0.03, 1.03], tickformat=".0%", title_text="accuracy")
    fig.update_layout(template=TEMPLATE, height=height, margin=dict(l=60, r=10, t=40, b=120), uirevision=revision,
                      title={"text": title, "font": {"size": 13}},
                      legend={"orientation": "h", "y": -0.3, "yanchor": "top"})
    return fig


def _label(cell: dict) -> str:
    return f"{esc(cell.get('strategy'))} × {cell['samples']} sample{'s' if cell['samples'] > 1 else ''}"


def thinking_budget_figure(result: dict | None, gain: float = DEFAULT_GAIN, height: int = 420) -> go.Figure:
    """Accuracy against the thinking tokens spent per sample, one line per count of parallel samples, each point
    labelled with its budget B; a diamond at the line's saturation budget B* (the TTSPM fit over B, unit one
    thinking token per sample), placed at the spend interpolated there."""
    curves = _curves(result)
    if not curves:
        return empty_figure(NO_AXIS, height)
    fits = sweep_saturation(result, gain=gain)
    fig = go.Figure()
    for i, (name, rows) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        xs = [_per_sample(c) for c in rows]
        hover = [f"{_label(c)}<br>budget B = {c['budget']} thinking tokens per sample<br>accuracy "
                 f"{float(c.get('accuracy') or 0):.1%} on {esc(c.get('n_problems'))} problems<br>spent {x:.1f} "
                 f"thinking tokens per sample, {spent(c, 'generated_tokens') or 0:.0f} generated per problem"
                 for c, x in zip(rows, xs)]
        fig.add_trace(go.Scatter(x=xs, y=[c.get("accuracy") for c in rows], mode="lines+markers+text",
                                 name=_label(rows[0]), legendgroup=esc(name), line={"color": colour},
                                 text=[f"B={c['budget']}" for c in rows], textposition="top center", cliponaxis=False,
                                 textfont={"size": 9, "color": colour}, hovertext=hover,
                                 hovertemplate="%{hovertext}<extra></extra>"))
        fit = fits.get(name)
        if fit is None or not fit.ok:
            continue
        at = cost_at([float(c["budget"]) for c in rows], xs, float(fit.budget))
        note = " (extrapolated past the largest budget)" if fit.extrapolated else ""
        fig.add_trace(go.Scatter(
            x=[at], y=[fit.predict(fit.budget)], mode="markers", legendgroup=esc(name),
            marker={"symbol": "diamond-open", "size": 13, "color": colour, "line": {"width": 2}},
            name=f"{_label(rows[0])}: saturates at B*={fit.budget}",
            hovertext=[f"{_label(rows[0])} saturates at B* = {fit.budget} thinking tokens{note}<br>beyond it one "
                       f"more thinking token per sample buys less than {100 * fit.gain:.2g} accuracy points<br>"
                       f"TTSPM fit F(B) = {fit.f_max:.3f}·(1-(1-{fit.p:.4f})^B), rmse {fit.rmse:.3f}"],
            hovertemplate="%{hovertext}<extra></extra>"))
    return _layout(fig, "Accuracy against thinking budget", "thinking tokens spent per sample", height,
                   "thinking-budget")


def parallel_sequential_figure(result: dict | None, height: int = 420) -> go.Figure:
    """Accuracy against the thinking tokens spent per problem (all samples), one line per count of parallel samples
    (points labelled N×B), and a dotted segment joining each pair at equal thinking tokens allowed: N samples of
    budget B with a vote, one sample of budget N x B."""
    curves = _curves(result)
    if not curves:
        return empty_figure(NO_AXIS, height)
    fig = go.Figure()
    for i, (name, rows) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=[spent(c) for c in rows], y=[c.get("accuracy") for c in rows],
                                 mode="lines+markers+text", name=_label(rows[0]), legendgroup=esc(name),
                                 line={"color": colour}, text=[f"{c['samples']}×{c['budget']}" for c in rows],
                                 textposition="top center", cliponaxis=False, textfont={"size": 9, "color": colour},
                                 hovertemplate=f"{_label(rows[0])}<br>accuracy %{{y:.1%}}<br>%{{x:.0f}} thinking "
                                               "tokens spent per problem<extra></extra>"))
    pairs = [p for p in equal_token_pairs(result) if spent(p.parallel) and spent(p.sequential)]
    for j, p in enumerate(pairs):
        par, seq = p.parallel, p.sequential
        text = (f"{p.allowance} thinking tokens allowed per problem<br>parallel: {p.samples} samples of {p.budget}, "
                f"vote: {float(par.get('accuracy') or 0):.1%}, spent {spent(par):.0f} thinking / "
                f"{spent(par, 'generated_tokens') or 0:.0f} generated tokens<br>sequential: one sample of "
                f"{p.allowance}: {float(seq.get('accuracy') or 0):.1%}, spent {spent(seq):.0f} thinking / "
                f"{spent(seq, 'generated_tokens') or 0:.0f} generated tokens")
        fig.add_trace(go.Scatter(x=[spent(par), spent(seq)], y=[par.get("accuracy"), seq.get("accuracy")],
                                 mode="lines", line={"color": PAIR, "dash": "dot", "width": 1.5},
                                 name="equal thinking tokens: N×B against 1×(N·B)", legendgroup="pairs",
                                 showlegend=j == 0, hovertext=[text, text],
                                 hovertemplate="%{hovertext}<extra></extra>"))
    title = "Parallel against sequential at equal thinking tokens"
    if not pairs:
        title += " (no pair: sweep N > 1 samples at B and one sample at N×B)"
    return _layout(fig, title, "thinking tokens spent per problem", height, "parallel-sequential")
