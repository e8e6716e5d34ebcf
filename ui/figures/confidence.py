"""DeepConf's view: each trace's group confidence along its tokens, the threshold, and where traces were cut."""
from __future__ import annotations

import plotly.graph_objects as go

from ui.figures.style import CORRECT, PRUNED, TEMPLATE, UNKNOWN, WRONG, empty_figure, esc, f32, fmt
from ui.fold import ViewState

STOPPED = "#7b3fb5"


def confidence_figure(state: ViewState, height: int = 380) -> go.Figure:
    """One line per trace (x: token, y: group confidence over the window ending there): green when its
    answer is right, red when wrong, grey when it did not vote, purple and ended with a cross where it was
    stopped; warm-up traces dotted; the threshold as a dashed line."""
    traces = state.confidence
    if not traces:
        return empty_figure("The confidence view shows DeepConf runs: each trace's confidence as it was "
                            "generated, and the traces stopped below the threshold.", height)
    fig = go.Figure(layout={"template": TEMPLATE, "height": height, "margin": dict(l=50, r=20, t=40, b=45),
                            "xaxis": {"title": "token"}, "yaxis": {"title": "group confidence"},
                            "showlegend": False, "uirevision": "confidence",
                            "title": {"text": "Trace confidence (window mean)", "font": {"size": 13}}})
    thresholds = set()
    for nid, t in traces.items():
        node = state.nodes.get(nid)
        groups = t["group"]
        if not groups:
            continue
        # each window drawn at its last token; the last window ends at the trace's last token
        first = max(1, t["tokens"] - len(groups) + 1)
        xs = list(range(first, first + len(groups)))
        stopped = t["stopped_at"] is not None
        voted = node is not None and not node.pruned
        color = (STOPPED if stopped else PRUNED if not voted else
                 CORRECT if node.correct else WRONG if node.correct is False else UNKNOWN)
        answer = esc(node.answer) if node is not None and node.answer is not None else "none"
        label = (f"{esc(nid)}{' (warm-up)' if t['warmup'] else ''}<br>confidence {fmt(t['confidence'])}"
                 f"<br>answer {answer}" + (f"<br>stopped after {t['stopped_at']} tokens" if stopped else ""))
        fig.add_trace(go.Scatter(x=xs, y=f32(groups), mode="lines", hovertext=label, hoverinfo="text",
                                 line={"color": color, "width": 1.6, "dash": "dot" if t["warmup"] else "solid"},
                                 opacity=0.85))
        if stopped:
            fig.add_trace(go.Scatter(x=[xs[-1]], y=[groups[-1]], mode="markers", hovertext=label, hoverinfo="text",
                                     marker={"symbol": "x", "size": 10, "color": STOPPED}))
        if t["threshold"] is not None:
            thresholds.add(t["threshold"])
    for th in sorted(thresholds):
        fig.add_hline(y=th, line={"dash": "dash", "color": "#333", "width": 1},
                      annotation_text=f"threshold {th:.3f}", annotation_position="top left")
    return fig
