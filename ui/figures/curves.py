"""Several runs on one axis: best score against compute."""
from __future__ import annotations

import itertools
import math
import textwrap

import plotly.graph_objects as go

from strategies.core import H100_FLOPS_PER_BYTE
from ui.figures.style import TEMPLATE, esc, f32, log_ticks
from ui.fold import ViewState, fold


# ---- several runs -------------------------------------------------------------------------------

X_AXES = {"tokens": "tokens (prompt + generated + verifier)", "flops": "FLOPs",
          "eflops": "eFLOPs (FLOPs + memory bytes x FLOPs per byte)", "nfe": "NFE (denoiser evaluations)"}


def score_points(state: ViewState, x: str = "tokens",
                 flops_per_byte: float = H100_FLOPS_PER_BYTE) -> tuple[list[float], list[float]]:
    """(compute, score) of each scoring event of one folded run, in event order; ``x`` is tokens, flops, eflops (at
    ``flops_per_byte``; none for a run whose memory traffic was not counted) or nfe.

    Scores that arrive together at one compute reading (random search scores its N samples in one batch after all
    of them are drawn) are spread evenly, in candidate order, over the compute since the previous reading, as if
    the candidates had been drawn one after another: the curve then reads as the best score after each candidate,
    not as one vertical line."""
    raw: list[tuple[float, float]] = []
    for point in state.score_trace:
        if x == "eflops":
            if math.isnan(point[4]):
                continue
            raw.append((point[1] + point[4] * flops_per_byte, point[3]))
        else:
            raw.append((point[{"tokens": 0, "flops": 1, "nfe": 2}[x]], point[3]))
    xs: list[float] = []
    before = 0.0
    i = 0
    while i < len(raw):
        j = i
        while j + 1 < len(raw) and raw[j + 1][0] == raw[i][0]:
            j += 1
        reading, m = raw[i][0], j - i + 1
        start = before if m > 1 and before < reading else reading
        xs += [start + (reading - start) * (k + 1) / m for k in range(m)]
        before, i = reading, j + 1
    return xs, [score for _, score in raw]


def best_score_curve(state: ViewState, x: str = "tokens",
                     flops_per_byte: float = H100_FLOPS_PER_BYTE) -> tuple[list[float], list[float]]:
    """(compute, best verifier score so far) after each scoring event of one folded run (``score_points``)."""
    xs, scores = score_points(state, x, flops_per_byte)
    return xs, list(itertools.accumulate(scores, max))


def compute_axis(states: list[ViewState]) -> str:
    """The compute axis that fits these runs: NFE when every run is an image run, else tokens."""
    return "nfe" if states and all(s.is_image for s in states) else "tokens"


def score_vs_compute_figure(runs: list[ViewState | list[dict]], labels: list[str] | None = None,
                            x: str | None = None, height: int = 360,
                            flops_per_byte: float = H100_FLOPS_PER_BYTE, each: bool = False) -> go.Figure:
    """Best verifier score found so far against compute spent, one line per run (folded states or event
    lists). ``x``: tokens, flops, eflops (at ``flops_per_byte``) or nfe; by default NFE for image runs, tokens
    otherwise. A run of the other domain than the axis is left out with a note (tokens and NFE share no axis), and
    on eFLOPs a run whose memory traffic was not counted. ``each`` also marks every scored candidate (one run's
    view: how the scores spread under the best one)."""
    states = [r if isinstance(r, ViewState) else fold(r) for r in runs]
    x = x or compute_axis(states)
    what = "NFE" if x == "nfe" else "compute"
    fig = go.Figure(layout={"template": TEMPLATE, "height": height, "margin": dict(l=50, r=10, t=60, b=40),
                            "title": {"text": f"Best verifier score found so far vs {what}",
                                      "font": {"size": 13}, "y": 0.98, "yanchor": "top"},
                            "xaxis": {"title": {"text": X_AXES[x]}, "type": "log"},
                            "yaxis": {"title": {"text": "best verifier score so far"}},
                            "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom"},
                            "uirevision": "score-vs-compute"})
    any_points = False
    left_out = uncounted = 0
    for i, st in enumerate(states):
        if st.is_image != (x == "nfe"):
            left_out += 1
            continue
        xs, best = best_score_curve(st, x, flops_per_byte)
        if not xs:
            uncounted += bool(st.score_trace)
            continue
        any_points = True
        label = labels[i] if labels and i < len(labels) else f"run {i + 1}"
        fig.add_trace(go.Scatter(x=f32(xs), y=f32(best), mode="lines+markers", line={"shape": "hv"},
                                 name=esc(label), marker={"size": 4}))
        if each:
            _, scores = score_points(st, x, flops_per_byte)
            fig.add_trace(go.Scatter(x=f32(xs), y=f32(scores), mode="markers", name="each scored candidate",
                                     marker={"size": 6, "symbol": "circle-open", "color": "#888"},
                                     hovertemplate="score %{y:.3f} after %{x:.0f} " + X_AXES[x].split(" ")[0]
                                                   + "<extra></extra>"))
    fig.update_xaxes(**log_ticks([v for t in fig.data for v in t.x]))
    note = "No verifier scores in these runs." if not any_points else ""
    if not states:
        note = "Choose runs above and press Compare: their best verifier scores against compute are drawn here."
    if left_out:
        note = (f"{left_out} run(s) of the other domain left out: image runs are measured in NFE, "
                "reasoning runs in tokens. " + note)
    if uncounted:
        note = f"{uncounted} run(s) without memory counts left out (stored before eFLOPs, or a server's). " + note
    if note:
        fig.add_annotation(text="<br>".join(esc(line) for line in textwrap.wrap(note, 70)), showarrow=False,
                           x=0.5, y=0.5, xref="paper", yref="paper")
    return fig
