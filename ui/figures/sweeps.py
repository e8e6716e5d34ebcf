"""A sweep's figures: accuracy against compute per difficulty, with each strategy's saturation point, and the
compute-optimal table. An image sweep's accuracy is the held-out judge's; beside it each strategy's mean
search-verifier score is drawn dashed, so a verifier that the search hacks shows as a score that climbs while the
judge's accuracy does not."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from backends.domains import IMAGE_DOMAINS
from engine.saturation import DEFAULT_GAIN, Saturation, series, sweep_saturation
from strategies.core import H100_FLOPS_PER_BYTE, eflops_of
from ui.figures.style import TEMPLATE, empty_figure, esc, human, log_ticks
from ui.fold import num

AXES = {"tokens": "tokens", "flops": "FLOPs", "eflops": "eFLOPs", "nfe": "NFE"}
BINNINGS = {"difficulty": "difficulty", "pass1": "pass@1 level"}
RANKS = ("budget", "compute")


# ---- sweeps -------------------------------------------------------------------------------------

def _compute_of(cell: dict, x: str, flops_per_byte: float = H100_FLOPS_PER_BYTE, level: str | None = None,
                binning: str = "difficulty") -> float | None:
    """A cell's mean compute per problem on ``x``: over all its problems, or over those of ``level`` (of
    ``binning``; None for a sweep stored before per-level compute)."""
    c = cell.get("compute") or {}
    if level not in (None, "all"):
        c = (cell.get("compute_by_pass1" if binning == "pass1" else "compute_by_difficulty") or {}).get(level)
        if c is None:
            return None
    if x == "nfe":
        return num(c.get("nfe"))
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


def is_image_sweep(result: dict | None) -> bool:
    return ((result or {}).get("config") or {}).get("domain") in IMAGE_DOMAINS


def _difficulties(result: dict, binning: str = "difficulty") -> list[str]:
    levels: set[str] = set()
    for cell in result.get("results") or []:
        levels |= set((cell.get(_level_key(binning)) or {}).keys())
    return sorted(levels, key=lambda s: (len(s), s))


def cost_at(budgets: list[float], costs: list[float], n: float) -> float:
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
    fig.add_trace(go.Scatter(x=[cost_at(budgets, costs, n) for n in grid], y=[fit.predict(n) for n in grid],
                             mode="lines", line={"color": colour, "dash": "dot", "width": 1}, legendgroup=esc(strat),
                             showlegend=False, hoverinfo="skip", name=f"{esc(strat)} TTSPM fit"), row=1, col=1)
    note = " (extrapolated)" if fit.extrapolated else ""
    hover = (f"{esc(strat)} saturates at N* = {fit.budget}{note}<br>beyond it one more unit of N buys less than "
             f"{100 * fit.gain:.2g} accuracy points<br>TTSPM fit F(N) = {fit.f_max:.3f}·(1-(1-{fit.p:.3f})^N), "
             f"rmse {fit.rmse:.3f}")
    fig.add_trace(go.Scatter(x=[cost_at(budgets, costs, float(fit.budget))], y=[fit.predict(fit.budget)],
                             mode="markers", marker={"symbol": "diamond-open", "size": 13, "color": colour,
                                                     "line": {"width": 2}},
                             name=f"{esc(strat)} saturation N*={fit.budget}", legendgroup=esc(strat),
                             hovertext=[hover], hovertemplate="%{hovertext}<extra></extra>"), row=1, col=1)


def _oracle_points(result: dict, cells: list[dict], x: str, flops_per_byte: float) -> list[tuple[float, float, str]]:
    """(compute, pass@k, k) of the oracle ceiling, each placed at the compute of the run that drew those k samples:
    the sampling strategy's cell at budget k (any cell at k where none ran there)."""
    pts = []
    for k, acc in (((result or {}).get("oracle") or {}).get("pass@k") or {}).items():
        if acc is None:
            continue
        at_k = [c for c in cells if str(c.get("budget")) == str(k) and _compute_of(c, x, flops_per_byte)]
        same = [c for c in at_k if c.get("strategy") in ("best_of_n", "weighted_bon", "majority_vote", "random_search")]
        if same or at_k:
            pts.append((min(_compute_of(c, x, flops_per_byte) for c in same or at_k), float(acc), str(k)))
    return sorted(pts)


def _oracle_traces(fig: go.Figure, result: dict, cells: list[dict], x: str, flops_per_byte: float) -> None:
    """The ceiling, named for what it is: pass@N of the source strategy's own samples at each budget, and where a
    budget had no such run the unbiased estimate from the largest run's samples (its own trace, hollow stars)."""
    oracle = (result or {}).get("oracle") or {}
    source = str(oracle.get("source") or "the sampling runs")
    estimated = set(oracle.get("estimated") or [])
    if "estimated" not in oracle:  # a sweep stored before the ceiling came from each budget's own samples
        estimated = set((oracle.get("pass@k") or {}).keys())
    pts = _oracle_points(result, cells, x, flops_per_byte)
    own = [p for p in pts if p[2] not in estimated]
    guess = [p for p in pts if p[2] in estimated]
    if own:
        fig.add_trace(go.Scatter(x=[p[0] for p in own], y=[p[1] for p in own], mode="lines+markers",
                                 name=f"oracle pass@N of {esc(source)}'s samples (ceiling)",
                                 line={"color": "#111", "dash": "dot"}, marker={"symbol": "star", "size": 9},
                                 hovertext=[f"pass@{esc(k)} = {a:.1%}: some one of {esc(source)}'s {esc(k)} samples "
                                            "is right" for _, a, k in own],
                                 hovertemplate="%{hovertext}<extra></extra>"), row=1, col=1)
    if guess:
        top = max((int(k) for k in (oracle.get("pass@k") or {}) if str(k).isdigit()), default=0)
        fig.add_trace(go.Scatter(x=[p[0] for p in guess], y=[p[1] for p in guess], mode="lines+markers",
                                 name=f"pass@N estimated from {esc(source)} at N={top} (not the strategies' samples)",
                                 line={"color": "#777", "dash": "dot"}, marker={"symbol": "star-open", "size": 9},
                                 hovertext=[f"pass@{esc(k)} ≈ {a:.1%}: unbiased estimate from other samples"
                                            for _, a, k in guess],
                                 hovertemplate="%{hovertext}<extra></extra>"), row=1, col=1)


def scaling_figure(result: dict | None, x: str = "tokens", height: int = 640, binning: str = "difficulty",
                   flops_per_byte: float = H100_FLOPS_PER_BYTE, gain: float = DEFAULT_GAIN) -> go.Figure:
    """Accuracy against compute per problem (log x: tokens, FLOPs, eFLOPs at ``flops_per_byte``, or NFE), one line per
    strategy with its TTSPM fit and saturation point, oracle pass@N as a ceiling; below, the same per level of
    ``binning`` (the task's difficulty labels or the policy's pass@1 quintiles), each at that level's own compute.
    An image sweep draws the judge's accuracy (solid) and the search verifier's mean score (dashed)."""
    cells = (result or {}).get("results") or []
    if not cells:
        return empty_figure("Run a sweep or open a stored one to see accuracy against compute.", height)
    if not any(_compute_of(c, x, flops_per_byte) for c in cells):
        hint = " (an image sweep counts NFE)" if is_image_sweep(result) else \
            " (eFLOPs need the memory counter, which runs stored before it lack)"
        return empty_figure(f"This sweep has no {AXES.get(x, x)} counts{hint}: choose another compute axis.", height)
    image = is_image_sweep(result)
    levels = _difficulties(result, binning)
    ncols = max(1, min(len(levels), 5))
    label = BINNINGS.get(binning, binning)
    if levels:  # the gap leaves room for the top panel's tick labels and axis title above the level panels' titles
        fig = make_subplots(rows=2, cols=ncols, specs=[[{"colspan": ncols}] + [None] * (ncols - 1), [{}] * ncols],
                            row_heights=[0.6, 0.4], vertical_spacing=0.2, horizontal_spacing=0.03,
                            subplot_titles=["all problems"] + [f"{label} {esc(lv)}" for lv in levels[:ncols]])
    else:  # no levels (the digits have no difficulty labels): one panel
        fig = make_subplots(rows=1, cols=1, subplot_titles=["all problems"])
    strategies = list(dict.fromkeys(series(c) for c in cells))
    fits = sweep_saturation(result, gain=gain)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
    xlabel = f"{AXES.get(x, x)} per problem" + (f" ({flops_per_byte:.4g} FLOPs per byte)" if x == "eflops" else "")
    what = "judge accuracy" if image else "accuracy"
    for si, strat in enumerate(strategies):
        colour = palette[si % len(palette)]
        rows = [c for c in cells if series(c) == strat and _compute_of(c, x, flops_per_byte)]
        rows.sort(key=lambda c: _compute_of(c, x, flops_per_byte) or 0)
        if not rows:
            continue
        hover = [f"{esc(strat)} · budget {esc(c.get('budget'))}<br>{what} {float(c.get('accuracy') or 0):.1%}"
                 f" on {esc(c.get('n_problems'))} problems<br>{human(_compute_of(c, x, flops_per_byte) or 0)} "
                 f"{AXES.get(x, x)} per problem" for c in rows]
        fig.add_trace(go.Scatter(x=[_compute_of(c, x, flops_per_byte) for c in rows],
                                 y=[c.get("accuracy") for c in rows],
                                 mode="lines+markers+text", name=esc(strat) + (" · judge accuracy" if image else ""),
                                 legendgroup=esc(strat),
                                 text=[f"{'N' if c.get('samples') is None else 'B'}={esc(c.get('budget'))}"
                                       for c in rows], textposition="top center",
                                 textfont={"size": 9, "color": colour}, hovertext=hover,
                                 hovertemplate="%{hovertext}<extra></extra>", line={"color": colour}), row=1, col=1)
        scored = [c for c in rows if c.get("verifier_score") is not None]
        if image and scored:
            fig.add_trace(go.Scatter(x=[_compute_of(c, x, flops_per_byte) for c in scored],
                                     y=[float(c["verifier_score"]) for c in scored], mode="lines+markers",
                                     name=f"{esc(strat)} · search-verifier score", legendgroup=esc(strat),
                                     line={"color": colour, "dash": "dash"}, marker={"symbol": "square-open"},
                                     hovertext=[f"{esc(strat)} · budget {esc(c.get('budget'))}<br>mean "
                                                f"search-verifier score of the chosen images "
                                                f"{float(c['verifier_score']):.3f}" for c in scored],
                                     hovertemplate="%{hovertext}<extra></extra>"), row=1, col=1)
        if strat in fits:
            _saturation_traces(fig, str(strat), rows, fits[strat], x, flops_per_byte, colour)
        for li, lv in enumerate(levels[:ncols]):
            pts = [(_compute_of(c, x, flops_per_byte, lv, binning) or _compute_of(c, x, flops_per_byte),
                    (c.get(_level_key(binning)) or {}).get(lv)) for c in rows]
            pts = sorted((cost, a) for cost, a in pts if a is not None)
            if pts:
                fig.add_trace(go.Scatter(x=[cost for cost, _ in pts], y=[a for _, a in pts],
                                         mode="lines+markers", name=esc(strat), legendgroup=esc(strat),
                                         showlegend=False, line={"color": colour}, marker={"size": 5},
                                         hovertemplate=f"{esc(strat)} · {esc(label)} {esc(lv)}<br>"
                                                       f"{what} %{{y:.1%}}<br>%{{x:.3s}} {AXES.get(x, x)} per "
                                                       "problem of this level<extra></extra>"), row=2, col=li + 1)
    _oracle_traces(fig, result, cells, x, flops_per_byte)
    if binning == "pass1" and not levels:
        fig.add_annotation(text="This sweep has no pass@1 levels (it was stored before they existed).",
                           showarrow=False, x=0.5, y=0.15, xref="paper", yref="paper")
    fig.update_xaxes(type="log", **log_ticks([v for t in fig.data if t.x is not None for v in t.x]))
    fig.update_xaxes(title_text=xlabel, title_standoff=4, row=1, col=1)
    fig.update_yaxes(range=[-0.03, 1.03], tickformat=".0%")
    if image:  # one axis for a share and a score: plain numbers, not percentages
        fig.update_yaxes(title_text="judge accuracy · verifier score", tickformat=".1f", row=1, col=1)
    else:
        fig.update_yaxes(title_text="accuracy", row=1, col=1)
    if levels:
        fig.update_yaxes(showticklabels=False, row=2)
        fig.update_yaxes(showticklabels=True, title_text=what, row=2, col=1)
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


NO_WINNER = "none: all at 0%"


def compute_optimal_table(result: dict | None, x: str = "tokens", binning: str = "difficulty",
                          rank: str = "budget", flops_per_byte: float = H100_FLOPS_PER_BYTE,
                          gain: float = DEFAULT_GAIN) -> list[list[Any]]:
    """The compute-optimal strategy per level (of ``binning``), as the compute-optimal test-time scaling paper
    tabulates it, with the winner's saturation point on that level's curve and the compute spent on that level's
    problems (blank for a sweep stored before per-level compute).

    ``rank="budget"``: one row per level and budget N, the highest accuracy at that N; strategies tied at the top
    are named together as a tie (cheapest first, its compute shown) and no winner is named where every strategy is
    at 0%. ``rank="compute"``: matched compute on ``x`` (tokens, FLOPs, eFLOPs or NFE), one row per point of the
    level's accuracy-vs-compute frontier: the best accuracy reachable with at most that much compute per
    problem, the runner-up being the best other strategy within the same compute (a frontier point at 0% names
    no winner)."""
    cells = (result or {}).get("results") or []
    out: list[list[Any]] = []
    budgets = sorted({int(c.get("budget") or 0) for c in cells})
    for lv in ["all"] + _difficulties(result or {}, binning):
        fits = sweep_saturation(result, level=lv, binning=binning, gain=gain)
        cands = []
        for c in cells:
            acc = c.get("accuracy") if lv == "all" else (c.get(_level_key(binning)) or {}).get(lv)
            cost = _compute_of(c, x, flops_per_byte, lv, binning)
            if acc is not None and (cost is not None or rank == "budget"):
                cands.append((float(acc), cost, c))

        def row(acc: float, cost: float | None, best: list[dict], others: list) -> list[Any]:
            names = {series(b) for b in best}
            runner = next(((a, c) for a, _, c in others if series(c) not in names), None)
            shown = None if cost is None else round(cost) if x == "tokens" else human(cost)
            if acc <= 0:
                return [lv, int(best[0].get("budget") or 0), NO_WINNER, "0%", shown, "", ""]
            name = series(best[0]) if len(best) == 1 else \
                "tie: " + ", ".join(dict.fromkeys(series(b) for b in best))
            return [lv, int(best[0].get("budget") or 0), name, f"{acc:.0%}", shown,
                    f"{series(runner[1])} ({runner[0]:.0%})" if runner else "",
                    _saturation_cell(fits.get(series(best[0]))) if len(best) == 1 else ""]

        def order(t: tuple) -> tuple:  # higher accuracy first, then less compute
            return (-t[0], t[1] if t[1] is not None else math.inf)

        if rank == "budget":
            for b in budgets:
                at = sorted((t for t in cands if int(t[2].get("budget") or 0) == b), key=order)
                if at:
                    top = [t for t in at if t[0] == at[0][0]]
                    out.append(row(at[0][0], at[0][1], [t[2] for t in top], at[len(top):]))
            continue
        best_acc = -1.0
        for acc, cost, c in sorted(cands, key=lambda t: (t[1], -t[0])):
            if acc > best_acc:
                best_acc = acc
                within = sorted((t for t in cands if t[1] <= cost and t[2] is not c), key=order)
                out.append(row(acc, cost, [c], within))
    return out
