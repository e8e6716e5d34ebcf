"""The search tree: node layout by step, one edge trace, nodes coloured by score, the chosen path lit.

Drawn for a room as much as for a screen: identical finished siblings are one node labelled with their count
(``fold_siblings``), the step text is written beside the nodes when the tree is small enough for it to fit
(``LABEL_MAX_ROWS``), and a replay or a Compare panel passes the whole run's layout (``TreeLayout``), so a node
keeps its place as the slider moves and every panel shares one step axis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from ui.figures.style import (CHOSEN, CORRECT, PRUNED, SCORE_SCALE, TEMPLATE, UNKNOWN, WRONG, empty_figure, esc, f32,
                              fmt, hover_text, step_range, tree_steps)
from ui.fold import NodeView, ViewState


# ---- the tree -----------------------------------------------------------------------------------

LABEL_MAX_ROWS = 14   # rows (leaves) up to which the step text is written on the tree, at the default height
LABEL_MAX_STEPS = 8   # steps up to which it is: each column then has room for about LABEL_CHARS characters
LABEL_CHARS = 20


def fold_siblings(state: ViewState) -> dict[str, list[str]]:
    """Groups of identical finished siblings, by the node that stands for each: representative id -> every id
    it stands for, itself first (groups of two or more only).

    Identical means the same parent, step, step text, answer, verdict and score: the verifier gives identical
    text an identical score, so two different solutions fold only on an exact tie of both their last step and
    their score. The representative is the chosen node when the group holds it (the chosen path ends on it),
    else the first to arrive. Image candidates are never identical (each has its own picture)."""
    if state.is_image:
        return {}
    groups: dict[tuple, list[str]] = {}
    for n in state.nodes.values():
        if n.finished and not n.pruned:
            groups.setdefault((n.parent, n.step, n.preview, n.answer, n.correct, n.score), []).append(n.id)
    out: dict[str, list[str]] = {}
    for ids in groups.values():
        if len(ids) > 1:
            rep = state.selected if state.selected in ids else ids[0]
            out[rep] = [rep] + [i for i in ids if i != rep]
    return out


@dataclass
class TreeLayout:
    """Where every node of a whole run sits (folded members at their representative's place) and the axes'
    extent: what a replay frame or a Compare panel draws on, so nothing moves between frames or panels."""

    pos: dict[str, tuple[float, float]]
    max_step: int
    rows: int


def whole_run_layout(state: ViewState, max_step: int | None = None) -> TreeLayout:
    """The layout of a finished run's state (``max_step``: a longer step axis, shared with other panels)."""
    folded = fold_siblings(state)
    pos = layout_tree(state, {m for ids in folded.values() for m in ids[1:]})
    for rep, ids in folded.items():
        for m in ids[1:]:
            pos[m] = pos[rep]
    rows = int(max((y for _, y in pos.values()), default=0.0)) + 1
    return TreeLayout(pos, max(tree_steps(state), max_step or 0), rows)


def layout_tree(state: ViewState, hidden: set[str] | frozenset = frozenset()) -> dict[str, tuple[float, float]]:
    """x = step depth, y = leaf order (depth-first, children in insertion order), parents centred; ``hidden``
    nodes (folded into a sibling) take no row and get no place."""
    pos: dict[str, tuple[float, float]] = {}
    next_leaf = 0.0
    roots = list(state.children.get(None, []))
    # parents that never arrived (a replay cut mid-way) still get drawn: treat them as roots
    roots += [nid for nid, n in state.nodes.items() if n.parent is not None and n.parent not in state.nodes]
    for root in roots:
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            nid, done = stack.pop()
            kids = [k for k in state.children.get(nid, []) if k not in hidden]
            if not kids:
                pos[nid] = (float(state.nodes[nid].step), next_leaf)
                next_leaf += 1.0
            elif done:
                ys = [pos[k][1] for k in kids if k in pos]
                pos[nid] = (float(state.nodes[nid].step), sum(ys) / len(ys) if ys else next_leaf)
            else:
                stack.append((nid, True))
                for k in reversed(kids):
                    if k not in pos:
                        stack.append((k, False))
    return pos


def _node_hover(n: NodeView, chosen: bool, judged: dict | None = None, image: bool = False,
                brief: bool = False, folded: list[str] | None = None) -> str:
    parts = [f"<b>{esc(n.id)}</b> · step {n.step}" + (" · <b>chosen</b>" if chosen else "")]
    if folded:
        shown = ", ".join(esc(i) for i in folded[:12]) + (", …" if len(folded) > 12 else "")
        parts.append(f"<b>{len(folded)} identical candidates</b>: {shown}")
    if image and n.parent is not None:  # a file path: the picture itself is in the gallery and the strips
        parts.append("final image" if n.finished else "latent (x_t and its x0-hat in the strips)")
    else:
        parts.append(hover_text(n.preview))
    if n.score is not None:
        parts.append(f"verifier score (aggregated): <b>{fmt(n.score)}</b>")
    if brief:  # a live frame's: what the node is and how it scored (the rest comes with the last frame)
        if n.finished and not image:
            parts.append(f"final answer: <b>{esc(n.answer)}</b>")
        return "<br>".join(parts + (["pruned"] if n.pruned else []))
    if n.per_step:
        shown = ", ".join(fmt(s, 2) for s in n.per_step[-12:])
        parts.append(f"per-step PRM scores: [{'…, ' if len(n.per_step) > 12 else ''}{shown}]")
    if n.visits is not None:
        parts.append(f"MCTS visits {n.visits}, mean value {fmt(n.value)}")
    c = n.node_cost or {}
    gen, pre = c.get("generated_tokens"), c.get("prompt_tokens")
    if gen is not None or pre is not None:
        parts.append(f"cost of this step: {int(gen or 0)} generated + {int(pre or 0)} prompt tokens")
    if n.finished and image:
        verdict = {True: "✓ correct", False: "✗ wrong", None: "not judged"}[n.correct]
        seen = f"sees <b>{esc(judged.get('judge_predicted'))}</b>, " if judged else ""
        parts.append(f"held-out judge: {seen}{verdict}")
    elif n.finished:
        verdict = {True: "✓ correct", False: "✗ wrong", None: ""}[n.correct]
        parts.append(f"final answer: <b>{esc(n.answer)}</b> {verdict}")
    if n.pruned:
        parts.append(f"pruned: {esc(n.prune_reason)}")
    return "<br>".join(parts)


def tree_signature(state: ViewState) -> tuple:
    """What the tree figure draws of a view state: an update whose signature is the last one's resends nothing."""
    return (state.run_id, state.selected, len(state.nodes),
            tuple((n.score, n.pruned, n.finished, n.correct, n.visits, n.value) for n in state.nodes.values()))


EMPTY_TREE = "Press Run: the search tree grows here step by step."


def _short(text: str, chars: int) -> str:
    """A step's text on one line, cut to ``chars`` characters (escaped)."""
    line = " ".join(str(text or "").split())
    return esc(line if len(line) <= chars else line[:chars - 1] + "…")


def tree_figure(state: ViewState, height: int = 460, title: str | None = None, legend: bool = True,
                brief: bool = False, layout: TreeLayout | None = None, empty: str = EMPTY_TREE) -> go.Figure:
    """The search tree: nodes at their step, coloured by verifier score; chosen path highlighted; identical
    finished siblings folded into one node with its count. ``brief`` hovers (live frames) name the node, its
    step text, score and answer, and leave out the per-step scores, the step's cost, MCTS statistics, the judge
    and the reason for a prune: a quarter of the bytes. ``layout`` (``whole_run_layout``) fixes every node's
    place and the axes (replay frames, Compare panels); ``empty`` is what the figure says before any node."""
    if not state.nodes:
        return empty_figure(empty, height)
    folded = fold_siblings(state)
    hidden = {m for ids in folded.values() for m in ids[1:]}
    if layout is not None and all(nid in layout.pos for nid in state.nodes):
        pos = {nid: layout.pos[nid] for nid in state.nodes if nid not in hidden}
        max_step, rows = layout.max_step, layout.rows
    else:
        pos = layout_tree(state, hidden)
        max_step = tree_steps(state)
        rows = int(max((y for _, y in pos.values()), default=0.0)) + 1
    chosen = set(state.chosen_path())

    ex: list[float] = []
    ey: list[float] = []
    for nid, n in state.nodes.items():  # one trace for every edge: NaN breaks the line between edges
        if n.parent is not None and n.parent in pos and nid in pos:
            (x0, y0), (x1, y1) = pos[n.parent], pos[nid]
            ex += [x0, x1, math.nan]
            ey += [y0, y1, math.nan]
    traces: list[go.Scatter] = [go.Scatter(x=f32(ex), y=f32(ey), mode="lines", hoverinfo="skip",
                                           line={"color": "#b9bcc6", "width": 1}, showlegend=False,
                                           name="edges")]
    path = [p for p in state.chosen_path() if p in pos]
    if len(path) > 1:
        traces.append(go.Scatter(x=f32([pos[p][0] for p in path]), y=f32([pos[p][1] for p in path]), ids=path,
                                 mode="lines", hoverinfo="skip", line={"color": CHOSEN, "width": 5},
                                 name="chosen path", opacity=0.8))

    groups: dict[str, list[NodeView]] = {"scored": [], "unscored": [], "pruned": []}
    for n in state.nodes.values():
        if n.id not in pos:
            continue
        if n.pruned:
            groups["pruned"].append(n)
        elif n.score is None:
            groups["unscored"].append(n)
        else:
            groups["scored"].append(n)

    def xs(ns: list[NodeView]) -> np.ndarray:
        return f32([pos[n.id][0] for n in ns])

    def ys(ns: list[NodeView]) -> np.ndarray:
        return f32([pos[n.id][1] for n in ns])

    def ids(ns: list[NodeView]) -> list[str]:  # a point's identity: ui.live_figure patches points by id
        return [n.id for n in ns]

    def hovers(ns: list[NodeView]) -> list[str]:
        return [_node_hover(n, n.id in chosen, state.judged.get(n.id), state.is_image, brief, folded.get(n.id))
                for n in ns]

    size = 11 if len(state.nodes) < 200 else 8
    if groups["pruned"]:
        ns = groups["pruned"]
        traces.append(go.Scatter(x=xs(ns), y=ys(ns), ids=ids(ns), mode="markers", name="pruned", hovertext=hovers(ns),
                                 hovertemplate="%{hovertext}<extra></extra>", opacity=0.6,
                                 marker={"color": PRUNED, "size": size - 2, "line": {"color": "#9a9aa0", "width": 1}}))
    if groups["unscored"]:
        ns = groups["unscored"]
        traces.append(go.Scatter(x=xs(ns), y=ys(ns), ids=ids(ns), mode="markers", name="not scored",
                                 hovertext=hovers(ns), hovertemplate="%{hovertext}<extra></extra>",
                                 marker={"color": "white", "size": size, "line": {"color": "#666", "width": 1.5}}))
    scores = [n.score for n in groups["scored"]]
    if groups["scored"]:
        ns = groups["scored"]
        lo, hi = (0.0, 1.0) if all(0.0 <= s <= 1.0 for s in scores) else (min(scores), max(scores) or 1.0)
        traces.append(go.Scatter(
            x=xs(ns), y=ys(ns), ids=ids(ns), mode="markers", name="scored", showlegend=False, hovertext=hovers(ns),
            hovertemplate="%{hovertext}<extra></extra>",
            marker={"color": f32(scores), "colorscale": SCORE_SCALE, "cmin": lo, "cmax": hi, "size": size,
                    "line": {"color": "#333", "width": 0.5},
                    "colorbar": {"title": {"text": "verifier<br>score"}, "thickness": 12, "len": 0.8}}))
    for label, verdict, colour, symbol in (("correct answer", True, CORRECT, "circle-open"),
                                           ("wrong answer", False, WRONG, "x-thin-open"),
                                           ("finished (answer unknown)", None, UNKNOWN, "diamond-open")):
        ns = [n for n in state.nodes.values() if n.finished and n.correct is verdict and n.id in pos]
        if ns:
            traces.append(go.Scatter(x=xs(ns), y=ys(ns), ids=ids(ns), mode="markers", name=label, hoverinfo="skip",
                                     marker={"symbol": symbol, "size": size + 7, "color": colour,
                                             "line": {"color": colour, "width": 2}}))
    ring = [state.nodes[p] for p in path]
    if ring:
        traces.append(go.Scatter(x=xs(ring), y=ys(ring), ids=ids(ring), mode="markers", hoverinfo="skip",
                                 showlegend=False,
                                 marker={"symbol": "circle-open", "size": size + 4, "color": CHOSEN,
                                         "line": {"color": CHOSEN, "width": 3}}, name="chosen"))
    if folded:  # the count of a folded node, beside it
        reps = [state.nodes[r] for r in folded if r in pos]
        traces.append(go.Scatter(x=xs(reps), y=ys(reps), mode="text", hoverinfo="skip", showlegend=False,
                                 text=[f" <b>×{len(folded[n.id])}</b>" for n in reps], textposition="middle right",
                                 textfont={"size": 13, "color": "#222"}, name="folded"))
    labelled = not state.is_image and rows <= LABEL_MAX_ROWS * height / 460 and max_step <= LABEL_MAX_STEPS
    if labelled:  # the step text where it fits; hover only on bigger trees
        chars = max(6, min(LABEL_CHARS, int(100 / (max_step + 1))))
        ns = [n for n in state.nodes.values() if n.parent is not None and n.id in pos]
        traces.append(go.Scatter(x=xs(ns), y=ys(ns), mode="text", hoverinfo="skip", showlegend=False,
                                 # an empty last line lifts the text clear of the node's rings
                                 text=[_short(n.preview, chars) + "<br> " for n in ns], textposition="top center",
                                 textfont={"size": 10, "color": "#444"}, name="step text"))
    fig = go.Figure(data=traces, layout={
        "template": TEMPLATE, "height": height, "uirevision": f"tree-{state.run_id}",
        "margin": dict(l=20, r=10, t=(64 if legend else 34) if title else 40, b=36), "hovermode": "closest",
        "title": {"text": esc(title), "font": {"size": 13}, "y": 0.99, "yanchor": "top"} if title else None,
        "xaxis": {"title": {"text": "denoising step" if state.is_image else "reasoning step"},
                  "dtick": 1 if max_step <= 30 else None,
                  "range": step_range(max_step), "zeroline": False},
        "yaxis": {"visible": False, "range": [-0.7, rows - 0.3 + (0.4 if labelled else 0.0)]},
        "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "font": {"size": 11}},
        "showlegend": legend,
    })
    return fig
