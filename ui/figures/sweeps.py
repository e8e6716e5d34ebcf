"""A sweep's figures: accuracy against compute per difficulty, with each strategy's saturation point, and the
compute-optimal table."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.saturation import DEFAULT_GAIN, Saturation, sweep_saturation
from strategies.core import H100_FLOPS_PER_BYTE, eflops_of
from ui.figures.style import TEMPLATE, empty_figure, esc, human, log_ticks
from ui.fold import num

AXES = {"tokens": "tokens", "flops": "FLOPs", "eflops": "eFLOPs"}
BINNINGS = {"difficulty": "difficulty", "pass1": "pass@1 level"}
RANKS = ("budget", "compute")


# ---- sweeps -------------------------------------------------------------------------------------

def _compute_of(cell: dict, x: str, flops_per_byte: float = H100_FLOPS_PER_BYTE) -> float | None:
    c = cell.get("compute") or {}
    if x == "flops":
        return num(c.get("flops"))
    if x == "eflops":
        return eflops_of(c, flops_per_byte)
    v = num(c.get("tokens"))
    if v is None:
        v = sum(num(c.get(k)) or 0.0 for k in ("prompt_tokens", "generated_tokens", "verifier_tokens")) or None
    return v


def _level_key(binning: str) -> str:
    return "by_pass1" if binning == "pass1" else "by_difficulty"


def _difficulties(result: dict, binning: str = "difficulty") -> list[str]:
    levels: set[str] = set()
    for cell in result.get("results") or []:
        levels |= set((cell.get(_level_key(binning)) or {}).keys())
    return sorted(levels, key=lambda s: (len(s), s))


def _cost_at(budgets: list[float], costs: list[float], n: float) -> float:
    """A strategy's compute at budget ``n``, read off its measured cells (linear in log-log, extended past them
    by the nearest segment's slope)."""
    lb, lc = np.log(budgets), np.log(costs)
    if len(lb) == 1:
        return float(costs[0])
    ln = math.log(n)
    i = 0 if ln <= lb[0] else len(lb) - 2 if ln >= lb[-1] else int(np.searchsorted(lb, ln)) - 1
    slope = (lc[i + 1] - lc[i]) / (lb[i + 1] - lb[i]) if lb[i + 1] != lb[i] else 0.0
    return float(math.exp(lc[i] + slope * (ln - lb[i])))


def _saturation_traces(fig: go.Figure, strat: str, rows: list[dict], fit: Saturation, x: str,
                       flops_per_byte: float, colour: str) -> None:
    """The fitted TTSPM curve (dotted) and its saturation point N* (a diamond) on the all-problems panel."""
    if not fit.ok:
        return
    pts = sorted({float(c["budget"]): _compute_of(c, x, flops_per_byte) for c in rows}.items())
    budgets, costs = [b for b, _ in pts], [v for _, v in pts]
    top = max(budgets[-1], float(fit.budget))
    grid = np.geomspace(budgets[0], top, 24)
    fig.add_trace(go.Scatter(x=[_cost_at(budgets, costs, n) for n in grid], y=[fit.predict(n) for n in grid],
                             mode="lines", line={"color": colour, "dash": "dot", "width": 1}, legendgroup=esc(strat),
                             showlegend=False, hoverinfo="skip", name=f"{esc(strat)} TTSPM fit"), row=1, col=1)
    note = " (extrapolated)" if fit.extrapolated else ""
    hover = (f"{esc(strat)} saturates at N* = {fit.budget}{note}<br>beyond it one more unit of N buys less than "
             f"{100 * fit.gain:.2g} accuracy points<br>TTSPM fit F(N) = {fit.f_max:.3f}·(1-(1-{fit.p:.3f})^N), "
             f"rmse {fit.rmse:.3f}")
    fig.add_trace(go.Scatter(x=[_cost_at(budgets, costs, float(fit.budget))], y=[fit.predict(fit.budget)],
                             mode="markers", marker={"symbol": "diamond-open", "size": 13, "color": colour,
                                                     "line": {"width": 2}},
                             name=f"{esc(strat)} saturation N*={fit.budget}", legendgroup=esc(strat),
                             hovertext=[hover], hovertemplate="%{hovertext}<extra></extra>"), row=1, col=1)


def scaling_figure(result: dict | None, x: str = "tokens", height: int = 640, binning: str = "difficulty",
                   flops_per_byte: float = H100_FLOPS_PER_BYTE, gain: float = DEFAULT_GAIN) -> go.Figure:
    """Accuracy against compute per problem (log x: tokens, FLOPs or eFLOPs at ``flops_per_byte``), one line per
    strategy with its TTSPM fit and saturation point, oracle pass@N as a ceiling; below, the same per level of
    ``binning`` (the task's difficulty labels or the policy's pass@1 quintiles)."""
    cells = (result or {}).get("results") or []
    if not cells:
        return empty_figure("Run a sweep or open a stored one to see accuracy against compute.", height)
    if not any(_compute_of(c, x, flops_per_byte) for c in cells):
        return empty_figure(f"This sweep has no {AXES.get(x, x)} counts (eFLOPs need the memory counter, which "
                            "runs stored before it lack): choose another compute axis.", height)
    levels = _difficulties(result, binning)
    ncols = max(1, min(len(levels), 5))
    label = BINNINGS.get(binning, binning)
    fig = make_subplots(rows=2, cols=ncols, specs=[[{"colspan": ncols}] + [None] * (ncols - 1), [{}] * ncols],
                        row_heights=[0.6, 0.4], vertical_spacing=0.14, horizontal_spacing=0.03,
                        subplot_titles=["all problems"] + [f"{label} {esc(lv)}" for lv in levels[:ncols]])
    strategies = list(dict.fromkeys(c.get("strategy") for c in cells))
    fits = sweep_saturation(result, gain=gain)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
    xlabel = f"{AXES.get(x, x)} per problem" + (f" ({flops_per_byte:.4g} FLOPs per byte)" if x == "eflops" else "")
    for si, strat in enumerate(strategies):
        colour = palette[si % len(palette)]
        rows = [c for c in cells if c.get("strategy") == strat and _compute_of(c, x, flops_per_byte)]
        rows.sort(key=lambda c: _compute_of(c, x, flops_per_byte) or 0)
        if not rows:
            continue
        hover = [f"{esc(strat)} · budget {esc(c.get('budget'))}<br>accuracy {float(c.get('accuracy') or 0):.1%}"
                 f" on {esc(c.get('n_problems'))} problems<br>{human(_compute_of(c, x, flops_per_byte) or 0)} "
                 f"{AXES.get(x, x)} per problem" for c in rows]
        fig.add_trace(go.Scatter(x=[_compute_of(c, x, flops_per_byte) for c in rows],
                                 y=[c.get("accuracy") for c in rows],
                                 mode="lines+markers+text", name=esc(strat), legendgroup=esc(strat),
                                 text=[f"N={esc(c.get('budget'))}" for c in rows], textposition="top center",
                                 textfont={"size": 9, "color": colour}, hovertext=hover,
                                 hovertemplate="%{hovertext}<extra></extra>", line={"color": colour}), row=1, col=1)
        if strat in fits:
            _saturation_traces(fig, str(strat), rows, fits[strat], x, flops_per_byte, colour)
        for li, lv in enumerate(levels[:ncols]):
            pts = [(c, (c.get(_level_key(binning)) or {}).get(lv)) for c in rows]
            pts = [(c, a) for c, a in pts if a is not None]
            if pts:
                fig.add_trace(go.Scatter(x=[_compute_of(c, x, flops_per_byte) for c, _ in pts], y=[a for _, a in pts],
                                         mode="lines+markers", name=esc(strat), legendgroup=esc(strat),
                                         showlegend=False, line={"color": colour}, marker={"size": 5},
                                         hovertemplate=f"{esc(strat)} · {esc(label)} {esc(lv)}<br>"
                                                       "accuracy %{y:.1%}<extra></extra>"), row=2, col=li + 1)
    oracle = ((result or {}).get("oracle") or {}).get("pass@k") or {}
    pts = []
    for k, acc in oracle.items():
        if acc is None:
            continue
        # place pass@k at the compute of drawing k samples: the sampling strategy's cell at budget k
        same = [c for c in cells if str(c.get("budget")) == str(k) and _compute_of(c, x, flops_per_byte)
                and c.get("strategy") in ("best_of_n", "weighted_bon", "majority_vote")]
        same = same or [c for c in cells if str(c.get("budget")) == str(k) and _compute_of(c, x, flops_per_byte)]
        if same:
            pts.append((min(_compute_of(c, x, flops_per_byte) for c in same), float(acc), k))
    pts.sort()
    if pts:
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                 name="oracle pass@N (ceiling)", line={"color": "#111", "dash": "dot"},
                                 marker={"symbol": "star", "size": 9},
                                 hovertext=[f"pass@{esc(k)} = {a:.1%}: some sample is right" for _, a, k in pts],
                                 hovertemplate="%{hovertext}<extra></extra>"), row=1, col=1)
    if binning == "pass1" and not levels:
        fig.add_annotation(text="This sweep has no pass@1 levels (it was stored before they existed).",
                           showarrow=False, x=0.5, y=0.15, xref="paper", yref="paper")
    fig.update_xaxes(type="log", **log_ticks([v for t in fig.data if t.x is not None for v in t.x]))
    fig.update_xaxes(title_text=xlabel, row=1, col=1)
    fig.update_yaxes(range=[-0.03, 1.03], tickformat=".0%")
    fig.update_yaxes(title_text="accuracy", row=1, col=1)
    fig.update_yaxes(showticklabels=False, row=2)
    fig.update_yaxes(showticklabels=True, title_text="accuracy", row=2, col=1)
    fig.update_layout(template=TEMPLATE, height=height, margin=dict(l=60, r=10, t=40, b=40),
                      uirevision="scaling", legend={"orientation": "h", "y": -0.08, "yanchor": "top"})
    return fig


def optimal_headers(x: str = "tokens", binning: str = "difficulty") -> list[str]:
    return [BINNINGS.get(binning, binning), "budget", "best strategy", "accuracy", f"{AXES.get(x, x)} / problem",
            "runner-up", "saturates at N*"]


OPTIMAL_HEADERS = optimal_headers()


def _saturation_cell(fit: Saturation | None) -> str:
    if fit is None:
        return ""
    if not fit.ok:
        return fit.status
    return f"{fit.budget}" + (" (extrapolated)" if fit.extrapolated else "")


def compute_optimal_table(result: dict | None, x: str = "tokens", binning: str = "difficulty",
                          rank: str = "budget", flops_per_byte: float = H100_FLOPS_PER_BYTE,
                          gain: float = DEFAULT_GAIN) -> list[list[Any]]:
    """The compute-optimal strategy per level (of ``binning``), as the compute-optimal test-time scaling paper
    tabulates it, with the winner's saturation point on that level's curve.

    ``rank="budget"``: one row per level and budget N, the highest accuracy at that N (ties: less compute on
    ``x``). ``rank="compute"``: matched compute on ``x`` (tokens, FLOPs or eFLOPs), one row per point of the
    level's accuracy-vs-compute frontier: the best accuracy reachable with at most that much compute per
    problem, the runner-up being the best other strategy within the same compute."""
    cells = (result or {}).get("results") or []
    out: list[list[Any]] = []
    budgets = sorted({int(c.get("budget") or 0) for c in cells})
    for lv in ["all"] + _difficulties(result or {}, binning):
        fits = sweep_saturation(result, level=lv, binning=binning, gain=gain)
        cands = []
        for c in cells:
            acc = c.get("accuracy") if lv == "all" else (c.get(_level_key(binning)) or {}).get(lv)
            cost = _compute_of(c, x, flops_per_byte)
            if acc is not None and (cost is not None or rank == "budget"):
                cands.append((float(acc), cost, c))

        def row(acc: float, cost: float | None, best: dict, others: list) -> list[Any]:
            runner = next(((a, c) for a, _, c in others if c.get("strategy") != best.get("strategy")), None)
            shown = None if cost is None else round(cost) if x == "tokens" else human(cost)
            return [lv, int(best.get("budget") or 0), str(best.get("strategy")), f"{acc:.0%}", shown,
                    f"{runner[1].get('strategy')} ({runner[0]:.0%})" if runner else "",
                    _saturation_cell(fits.get(str(best.get("strategy"))))]

        def order(t: tuple) -> tuple:  # higher accuracy first, then less compute
            return (-t[0], t[1] if t[1] is not None else math.inf)

        if rank == "budget":
            for b in budgets:
                at = sorted((t for t in cands if int(t[2].get("budget") or 0) == b), key=order)
                if at:
                    out.append(row(at[0][0], at[0][1], at[0][2], at[1:]))
            continue
        best_acc = -1.0
        for acc, cost, c in sorted(cands, key=lambda t: (t[1], -t[0])):
            if acc > best_acc:
                best_acc = acc
                within = sorted((t for t in cands if t[1] <= cost and t[2] is not c), key=order)
                out.append(row(acc, cost, c, within))
    return out
