"""The thinking-trace view: each sample's thought as a bar of tokens, the budget line, every "Wait," and forced
end marked, every probe of its answer so far and the point where verification stopped the thought, and the
answer with its verdict at the end."""
from __future__ import annotations

import plotly.graph_objects as go

from ui.figures.style import CORRECT, TEMPLATE, UNKNOWN, WRONG, empty_figure, esc, hover_text
from ui.fold import ViewState

THINKING = ("#4c78a8", "#9ecae9")  # alternate shades: one segment per step of the method
WAIT = "#f58518"
FORCED = "#b5179e"
MARKS = {"wait": ("Wait, (its stop replaced)", WAIT, "diamond"), "end": ("ended its thought", "#333", "line-ns"),
         "forced": ("end of thinking forced", FORCED, "x"),
         "probe": ("answer probed, not verified: thinks on", "#7f7f7f", "circle-open"),
         "verified": ("answer verified: the thought stopped here", CORRECT, "star"),
         "trimmed": ("answer settled and accepted: the rest of the thought cut here", CORRECT, "triangle-left")}


def thoughts_figure(state: ViewState, height: int | None = None) -> go.Figure:
    """One row per sample: its thought grows as a bar along the token axis (one segment per step of the
    method, hover: that step's last line); a diamond where "Wait," replaced a stop, a cross where the end was
    forced, a bar where the model ended it, an open circle where an answer was probed and thinking went on, a
    star where a verified answer stopped the thought (Solve-Detect-Verify) and a triangle where the rest of it was
    cut (TrimR); the budget as a dashed line; the answer and its verdict after the bar. Sixteen samples stay
    readable: one thin row each."""
    samples = state.thoughts
    if not samples:
        return empty_figure("The trace view shows thinking-budget runs (budget forcing, solve-detect-verify, thought "
                            "truncation): each sample's thought, the budget, every Wait, forced end and probe, and "
                            "where verification stopped it.", height or 300)
    rows = sorted(samples)
    fig = go.Figure(layout={"template": TEMPLATE, "height": height or max(260, 90 + 26 * len(rows)),
                            "margin": dict(l=70, r=110, t=40, b=45), "showlegend": False,
                            "uirevision": f"thoughts-{state.run_id}", "barmode": "overlay",
                            "title": {"text": "Thinking traces", "font": {"size": 13}},
                            "xaxis": {"title": "thinking tokens", "rangemode": "tozero"},
                            "yaxis": {"title": "sample", "tickmode": "array", "tickvals": rows,
                                      "ticktext": [f"#{r + 1}" for r in rows], "autorange": "reversed"}})
    marks: dict[str, list[tuple[int, int, str]]] = {}
    ends: list[tuple[int, int, str, str]] = []
    for r in rows:
        start, segment = 0, 0
        for m in samples[r]:
            node = state.nodes.get(m["id"])
            if m["mark"] == "answer":
                verdict = None if node is None else node.correct
                answer = "no answer" if node is None or node.answer is None else esc(node.answer)
                ends.append((r, m["tokens"], f"{'✓' if verdict else '✗' if verdict is False else '?'} {answer}",
                             CORRECT if verdict else WRONG if verdict is False else UNKNOWN))
                continue
            text = hover_text(node.preview if node is not None else "")
            if m["tokens"] > start:
                fig.add_trace(go.Bar(x=[m["tokens"] - start], base=[start], y=[r], orientation="h", width=0.55,
                                     marker={"color": THINKING[segment % 2]}, hoverinfo="text",
                                     hovertext=f"sample #{r + 1}, tokens {start}-{m['tokens']}<br>{text}"))
                segment += 1
            start = max(start, m["tokens"])
            if m["mark"] in MARKS:
                marks.setdefault(m["mark"], []).append((r, m["tokens"], text))
    for kind, points in marks.items():
        label, color, symbol = MARKS[kind]
        fig.add_trace(go.Scatter(x=[p[1] for p in points], y=[p[0] for p in points], mode="markers",
                                 marker={"symbol": symbol, "size": 12, "color": color,
                                         "line": {"width": 2, "color": color}},
                                 hoverinfo="text", hovertext=[f"{label} at {p[1]} tokens<br>{p[2]}" for p in points]))
    for r, tokens, text, color in ends:
        fig.add_annotation(x=tokens, y=r, text=text, showarrow=False, xanchor="left", xshift=10,
                           font={"color": color, "size": 12})
    budget = state.params.get("budget")
    if isinstance(budget, (int, float)):
        fig.add_vline(x=budget, line={"dash": "dash", "color": "#333", "width": 1},
                      annotation_text=f"budget {int(budget)}", annotation_position="top")
    return fig
