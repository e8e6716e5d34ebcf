"""The refinement view: each chain's attempts top to bottom, the critique that came back on each between it and the
next attempt (refine; evoscale's generations the same way, a column per slot of the population)."""
from __future__ import annotations

import plotly.graph_objects as go

from strategies.feedback import voted_verdict

from ui.figures.style import CORRECT, TEMPLATE, UNKNOWN, WRONG, empty_figure, esc, fmt, hover_text
from ui.fold import ViewState

KEPT = "#8a8a8a"      # steps a revision kept from the attempt before
FLAGGED = WRONG       # the step the critique calls wrong
FEEDBACK_BG = "#fff4e5"
ATTEMPT_BG = "#f4f7fb"
LINE_PX = 17          # one text line of a box
GAP = 0.8             # lines between an attempt and its critique, and between rounds
MAX_STEP_CHARS = 48


def attempt_steps(state: ViewState, nid: str) -> list[str]:
    """An attempt's steps, read off the nodes from the root to it (each node's preview is its newest step)."""
    out, depth = [], 0
    for pid in state.path_to(nid):
        node = state.nodes[pid]
        if node.parent is not None and node.step > depth:
            out.append(node.preview)
            depth = node.step
    return out


def _cut(text: str) -> str:
    return text if len(text) <= MAX_STEP_CHARS else text[:MAX_STEP_CHARS - 1] + "…"


def attempts_figure(state: ViewState, height: int | None = None) -> go.Figure:
    """One column per chain, one row per attempt: the attempt's steps (those kept from the attempt before in grey,
    the step the critique flags in red), its grade against the truth (✓ / ✗) in its title, and under it the
    critique that came back (the first critique's last lines, all of them in the hover) with what happens next.
    Every model string is escaped."""
    chains = state.attempts
    if not chains:
        return empty_figure("The refinement view shows refine and evoscale runs: each attempt, the critique it "
                            "got, and the attempt that revised it.", height or 300)
    cols = sorted(chains)
    boxes: dict[tuple[int, int], tuple[list[str], list[str] | None, str]] = {}  # (column, round) -> lines
    hover: dict[tuple[int, int], tuple[str, str]] = {}
    revised = {a["revises"] for c in cols for a in chains[c]}
    for x, c in enumerate(cols):
        for a in chains[c]:
            boxes[x, a["round"]], hover[x, a["round"]] = _boxes(state, a, a["id"] in revised)
    rounds = max(r for _, r in boxes) + 1
    # y is in text lines, top down: a round takes as many as its tallest attempt and critique
    tops, y = [], 0.0
    for r in range(rounds):
        tops.append(y)
        row = [boxes[k] for k in boxes if k[1] == r]
        y -= max(len(b[0]) for b in row) + max(len(b[1] or []) for b in row) + GAP * 2
    fig = go.Figure(layout={
        "template": TEMPLATE, "height": height or int(70 + LINE_PX * -y), "showlegend": False,
        "margin": dict(l=20, r=20, t=40, b=10), "uirevision": f"attempts-{state.run_id}",
        "title": {"text": "Attempts and the feedback between them", "font": {"size": 13}},
        "xaxis": {"visible": False, "range": [-0.5, len(cols) - 0.5], "fixedrange": True},
        "yaxis": {"visible": False, "range": [y + GAP, 0.3], "fixedrange": True}})
    hx, hy, htext, hcolor = [], [], [], []
    for (x, r), (attempt, critique, color) in boxes.items():
        top = tops[r]
        fig.add_annotation(x=x, y=top, text="<br>".join(attempt), showarrow=False, align="left", xanchor="center",
                           yanchor="top", bgcolor=ATTEMPT_BG, borderpad=4, bordercolor=color,
                           font={"size": 11, "family": "ui-monospace, monospace"})
        if critique:
            fig.add_annotation(x=x, y=top - len(attempt) - GAP, text="<br>".join(critique), showarrow=False,
                               align="left", xanchor="center", yanchor="top", bgcolor=FEEDBACK_BG,
                               bordercolor="#f58518", borderpad=3, font={"size": 11})
        hx.append(x - 0.45)
        hy.append(top - 0.5)
        htext.append(hover[x, r][0])
        hcolor.append(hover[x, r][1])
    fig.add_trace(go.Scatter(x=hx, y=hy, mode="markers", hoverinfo="text", hovertext=htext,
                             marker={"size": 10, "symbol": "square", "color": hcolor}))
    return fig


def _boxes(state: ViewState, a: dict,
           revised: bool) -> tuple[tuple[list[str], list[str] | None, str], tuple[str, str]]:
    """An attempt's box lines, its critique's box lines (None before it is critiqued), the border colour; and
    its hover text and colour. ``revised``: a later attempt revises it."""
    node = state.nodes.get(a["id"])
    crit = state.critiques.get(a["id"])
    flagged = None if crit is None else voted_verdict(crit["verdicts"])
    steps = attempt_steps(state, a["id"])
    correct = None if node is None else node.correct
    color = CORRECT if correct else WRONG if correct is False else UNKNOWN
    title = f"<b>attempt {a['round'] + 1}</b> {'✓' if correct else '✗' if correct is False else '?'}"
    if a["revises"] is not None:
        title += f" <i>(from {esc(a['revises'])}, kept {a['kept']})</i>"
    lines = [title]
    for i, step in enumerate(steps, 1):
        shade = FLAGGED if i == flagged else KEPT if i <= a["kept"] else "#111"
        lines.append(f'<span style="color:{shade}">{i}. {esc(_cut(step))}{" ✗" if i == flagged else ""}</span>')
    critique = None
    if crit is not None:
        text = crit["texts"][0] if crit["texts"] else ""
        nxt = ("→ accepted: the chain stops" if flagged is None else
               f"→ regenerate from step {flagged}" if revised or state.status == "running" else
               "→ not revised: no rounds left")
        critique = [f"<b>critique</b> ({len(crit['verdicts'])}, score {fmt(crit['score'], 2)})",
                    *[esc(_cut(t)) for t in text.split("\n")[-2:] if t], f"<i>{nxt}</i>"]
    tip = f"{esc(a['id'])}: attempt {a['round'] + 1}<br>" + hover_text("\n".join(steps))
    if crit is not None:
        tip += "<br><br>critique:<br>" + "<br>----<br>".join(hover_text(t) for t in crit["texts"])
    return (lines, critique, color), (tip, color)
