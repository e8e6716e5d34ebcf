"""What every figure shares: the plotly template, the colours, escaping of untrusted text, number formats."""
from __future__ import annotations

from ui.fold import num


import html
import textwrap
from typing import Any

import numpy as np
import plotly.graph_objects as go

# An empty template: plotly's default one adds ~7 kB of JSON to every streamed figure.
TEMPLATE = go.layout.Template(layout={"font": {"family": "system-ui, sans-serif", "size": 12},
                                       "paper_bgcolor": "white", "plot_bgcolor": "#fbfbfd",
                                       "hoverlabel": {"align": "left"}})
SCORE_SCALE = "Viridis"
PRUNED = "#c8c8cc"
CHOSEN = "#f5a400"
CORRECT = "#1a9e3f"
WRONG = "#d62728"
UNKNOWN = "#444444"
# a verdict in a table: the heavy check and ballot marks, which read as marks in the tables' monospace font (its
# light check mark, U+2713, falls back to a glyph that looks like a square root in Debian's chromium)
MARKS = {True: "✔", False: "✘", None: ""}
HOVER_WIDTH = 64
PREVIEW_CHARS = 400


def esc(text: Any) -> str:
    """HTML-escape untrusted text, and also the characters a JS template literal would act on.

    ``html.escape`` covers tags and attributes; ``$``, backtick, braces and backslash are escaped too so
    that the text stays inert even if some future component evaluates it as a template string.
    """
    s = html.escape("" if text is None else str(text), quote=True)
    return (s.replace("$", "&#36;").replace("`", "&#96;").replace("{", "&#123;").replace("}", "&#125;")
            .replace("\\", "&#92;"))


def hover_text(text: str | None) -> str:
    """Untrusted multi-line text as escaped, wrapped plotly hover lines."""
    text = "" if text is None else str(text)
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS] + "…"
    lines: list[str] = []
    for raw in text.split("\n") or [""]:
        lines += textwrap.wrap(raw, HOVER_WIDTH, replace_whitespace=False, drop_whitespace=False) or [""]
    return "<br>".join(esc(line) for line in lines)


def fmt(x: Any, digits: int = 3) -> str:
    v = num(x)
    return "–" if v is None else f"{v:.{digits}f}"


def f32(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def empty_figure(message: str, height: int = 420) -> go.Figure:
    fig = go.Figure(layout={"template": TEMPLATE, "height": height, "margin": dict(l=20, r=20, t=30, b=20),
                            "xaxis": {"visible": False}, "yaxis": {"visible": False}})
    fig.add_annotation(text="<br>".join(esc(line) for line in textwrap.wrap(message, 56)), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 14, "color": "#666"})
    return fig


def human(x: float, unit: str = "") -> str:
    x = float(x)
    for div, suffix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.2f} {suffix}{unit}"
    return f"{x:.0f} {unit}".strip() if x == int(x) else f"{x:.2f} {unit}".strip()


def tree_steps(state: Any) -> int:
    """The end of a view state's step axes (1 at least): the deepest step its nodes reach, or the column after
    its last resampling where the particle lanes draw the final population."""
    resampled = [int(ps.step) + 1 for ps in state.particle_steps[-1:]]
    return max([1, *(n.step for n in state.nodes.values()), *resampled])


def step_range(max_step: int) -> list[float]:
    """The step axis every panel of a run shares (tree, particle lanes), with room for the labels beside the
    last column's nodes."""
    return [-0.5, max(max_step, 1) + 0.9]


def short_number(x: float) -> str:
    """A tick label: 1, 20, 500, 1k, 2k, 50k, 1M, 0.2, 1.23k (three significant digits, no trailing zeros)."""
    for div, suffix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def log_ticks(values: Any) -> dict[str, list]:
    """A log axis's ticks over ``values`` (the positive ones) as plotly ``tickvals`` and ``ticktext``: 1, 2 and 5
    of every decade labelled 1k, 2k, 5k (plotly's own labels the minor ticks with a bare digit, "2 3 5 1000 2");
    finer within one decade, 1 and 3 over four or five, the powers of ten alone beyond; a range narrower than
    a factor 2 gets its two ends. Empty when there is nothing to span."""
    xs = [float(v) for v in values if v is not None and np.isfinite(float(v)) and float(v) > 0]
    if not xs:
        return {}
    if max(xs) < 2 * min(xs):  # a narrow range (one point): its ends, which no round tick may fall between
        keep = sorted({min(xs), max(xs)})
        return {"tickvals": keep, "ticktext": [short_number(v) for v in keep]}
    lo, hi = int(np.floor(np.log10(min(xs)))), int(np.ceil(np.log10(max(xs))))
    hi = max(hi, lo + 1)
    span = hi - lo
    mantissas = (1, 1.5, 2, 3, 5, 7) if span == 1 else (1, 2, 5) if span <= 3 else (1, 3) if span <= 5 else (1,)
    vals = [m * 10.0 ** e for e in range(lo, hi + 1) for m in mantissas]
    # one tick beyond the data at each end at most: plotly pads the range a little
    below = [v for v in vals if v <= min(xs)]
    above = [v for v in vals if v >= max(xs)]
    keep = [v for v in vals if (below and v >= below[-1] or not below) and (above and v <= above[0] or not above)]
    return {"tickvals": keep, "ticktext": [short_number(v) for v in keep]}


def human_bytes(x: float) -> str:
    x = float(x)
    for div, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if x >= div:
            return f"{x / div:.2f} {suffix}"
    return f"{x:.0f} B"


def plot_payload(fig: go.Figure):
    """``fig`` as ``gr.Plot`` sends it, a third smaller: compact JSON with non-ASCII characters as themselves and
    without plotly's HTML-safe escapes (``<``, ``>`` and ``/`` as ``\\u003c``...; every ``<br>`` and ``<b>`` of a
    hover costs 6 bytes a character, twice over once gradio quotes the string in its message). Those escapes
    guard JSON inlined into a ``<script>``; this JSON travels as a string in gradio's message and the page
    parses it (SSR is off), and every model or user string in it was already escaped by :func:`esc`. Typed
    arrays stay base64 (float32). ``gr.Plot`` passes a ``PlotData`` through unchanged."""
    import json

    from _plotly_utils.utils import PlotlyJSONEncoder
    from gradio.components.plot import PlotData

    text = json.dumps(fig.to_plotly_json(), cls=PlotlyJSONEncoder, separators=(",", ":"), ensure_ascii=False)
    return PlotData(type="plotly", plot=text)

