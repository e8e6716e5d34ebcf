"""A sweep's figures: accuracy against compute per difficulty, and the compute-optimal table."""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures.style import TEMPLATE, empty_figure, esc, human
from ui.fold import num


# ---- sweeps -------------------------------------------------------------------------------------

def _compute_of(cell: dict, x: str) -> float | None:
    c = cell.get("compute") or {}
    if x == "flops":
        return num(c.get("flops"))
    v = num(c.get("tokens"))
    if v is None:
        v = sum(num(c.get(k)) or 0.0 for k in ("prompt_tokens", "generated_tokens", "verifier_tokens")) or None
    return v


def _difficulties(result: dict) -> list[str]:
    levels: set[str] = set()
    for cell in result.get("results") or []:
        levels |= set((cell.get("by_difficulty") or {}).keys())
    return sorted(levels, key=lambda s: (len(s), s))


def scaling_figure(result: dict | None, x: str = "tokens", height: int = 640) -> go.Figure:
    """Accuracy against compute per problem (log x), one line per strategy, oracle pass@N as a ceiling;
    below, the same per difficulty level."""
    cells = (result or {}).get("results") or []
    if not cells:
        return empty_figure("Run a sweep or open a stored one to see accuracy against compute.", height)
    levels = _difficulties(result)
    ncols = max(1, min(len(levels), 5))
    fig = make_subplots(rows=2, cols=ncols, specs=[[{"colspan": ncols}] + [None] * (ncols - 1), [{}] * ncols],
                        row_heights=[0.6, 0.4], vertical_spacing=0.14, horizontal_spacing=0.03,
                        subplot_titles=["all problems"] + [f"difficulty {esc(lv)}" for lv in levels[:ncols]])
    strategies = list(dict.fromkeys(c.get("strategy") for c in cells))
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
    xlabel = "FLOPs per problem" if x == "flops" else "tokens per problem"
    for si, strat in enumerate(strategies):
        colour = palette[si % len(palette)]
        rows = sorted((c for c in cells if c.get("strategy") == strat), key=lambda c: _compute_of(c, x) or 0)
        rows = [c for c in rows if _compute_of(c, x)]
        if not rows:
            continue
        hover = [f"{esc(strat)} · budget {esc(c.get('budget'))}<br>accuracy {float(c.get('accuracy') or 0):.1%}"
                 f" on {esc(c.get('n_problems'))} problems<br>{human(_compute_of(c, x) or 0)} {x} per problem"
                 for c in rows]
        fig.add_trace(go.Scatter(x=[_compute_of(c, x) for c in rows], y=[c.get("accuracy") for c in rows],
                                 mode="lines+markers+text", name=esc(strat), legendgroup=esc(strat),
                                 text=[f"N={esc(c.get('budget'))}" for c in rows], textposition="top center",
                                 textfont={"size": 9, "color": colour}, hovertext=hover,
                                 hovertemplate="%{hovertext}<extra></extra>", line={"color": colour}), row=1, col=1)
        for li, lv in enumerate(levels[:ncols]):
            pts = [(c, (c.get("by_difficulty") or {}).get(lv)) for c in rows]
            pts = [(c, a) for c, a in pts if a is not None]
            if pts:
                fig.add_trace(go.Scatter(x=[_compute_of(c, x) for c, _ in pts], y=[a for _, a in pts],
                                         mode="lines+markers", name=esc(strat), legendgroup=esc(strat),
                                         showlegend=False, line={"color": colour}, marker={"size": 5},
                                         hovertemplate=f"{esc(strat)} · difficulty {esc(lv)}<br>"
                                                       "accuracy %{y:.1%}<extra></extra>"), row=2, col=li + 1)
    oracle = ((result or {}).get("oracle") or {}).get("pass@k") or {}
    pts = []
    for k, acc in oracle.items():
        if acc is None:
            continue
        # place pass@k at the compute of drawing k samples: the sampling strategy's cell at budget k
        same = [c for c in cells if str(c.get("budget")) == str(k) and _compute_of(c, x)
                and c.get("strategy") in ("best_of_n", "weighted_bon", "majority_vote")]
        same = same or [c for c in cells if str(c.get("budget")) == str(k) and _compute_of(c, x)]
        if same:
            pts.append((min(_compute_of(c, x) for c in same), float(acc), k))
    pts.sort()
    if pts:
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                 name="oracle pass@N (ceiling)", line={"color": "#111", "dash": "dot"},
                                 marker={"symbol": "star", "size": 9},
                                 hovertext=[f"pass@{esc(k)} = {a:.1%}: some sample is right" for _, a, k in pts],
                                 hovertemplate="%{hovertext}<extra></extra>"), row=1, col=1)
    fig.update_xaxes(type="log")
    fig.update_xaxes(title_text=xlabel, row=1, col=1)
    fig.update_yaxes(range=[-0.03, 1.03], tickformat=".0%")
    fig.update_yaxes(title_text="accuracy", row=1, col=1)
    fig.update_yaxes(showticklabels=False, row=2)
    fig.update_yaxes(showticklabels=True, title_text="accuracy", row=2, col=1)
    fig.update_layout(template=TEMPLATE, height=height, margin=dict(l=60, r=10, t=40, b=40),
                      uirevision="scaling", legend={"orientation": "h", "y": -0.08, "yanchor": "top"})
    return fig


OPTIMAL_HEADERS = ["difficulty", "budget", "best strategy", "accuracy", "tokens / problem", "runner-up"]


def compute_optimal_table(result: dict | None) -> list[list[Any]]:
    """For each difficulty level and budget: the strategy with the highest accuracy (ties: less compute),
    as the compute-optimal test-time scaling paper tabulates it."""
    cells = (result or {}).get("results") or []
    out: list[list[Any]] = []
    budgets = sorted({int(c.get("budget") or 0) for c in cells})
    for lv in ["all"] + _difficulties(result or {}):
        for b in budgets:
            cands = []
            for c in cells:
                if int(c.get("budget") or 0) != b:
                    continue
                acc = c.get("accuracy") if lv == "all" else (c.get("by_difficulty") or {}).get(lv)
                if acc is not None:
                    cands.append((float(acc), -(_compute_of(c, "tokens") or 0.0), c))
            if not cands:
                continue
            cands.sort(key=lambda t: (t[0], t[1]), reverse=True)
            acc, negtok, best = cands[0]
            runner = f"{cands[1][2].get('strategy')} ({cands[1][0]:.0%})" if len(cands) > 1 else ""
            out.append([lv, b, str(best.get("strategy")), f"{acc:.0%}", round(-negtok), runner])
    return out
