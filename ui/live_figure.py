"""Live figures that send only what changed: the server side of a plotly figure patched in the browser.

``gr.Plot`` re-sends and re-renders the whole figure on every update. A live figure is drawn once by its
``gr.Plot`` (the first frame, as fast as before), then patched: :class:`FigureStream` remembers what the
page holds and turns each later figure into a diff (:meth:`FigureStream.frame`), which a hidden ``gr.HTML``
channel (:func:`channel`) receives; its ``js_on_load`` (``live_figure.js``) folds the diff into the page's
copy and redraws the ``gr.Plot``'s own plotly div with ``Plotly.react`` (plotly.js, bundled with gradio's
plot component, sets ``window.Plotly`` once a plot has rendered), so ``uirevision`` keeps the visitor's zoom.

What a diff holds, against the figure the page holds (both flattened to dotted paths, typed arrays decoded,
NaN as null, so that the page rebuilds the figure's JSON exactly):

- ``layout``: the paths whose values changed (``set``) or went (``del``);
- ``order``: the traces' keys in drawing order, when they changed (a trace's key is its ``name``, or its
  place when the name is missing or repeated);
- ``traces``: per trace, its changed non-point values (``set``, ``del``), arrays that only grew as their new
  tail (``app``), and, for a trace with ``ids`` (one per point: the tree's node ids), its ids when they
  changed (``ids``, or ``ids_app`` when they only grew) and which of its values are per point (``pf``);
- ``points``: per point value path, the new values by point id. A point's value is kept once for every trace
  (a node moving from "not scored" to "scored" sends nothing but the trace's ids), so a frame carries the
  hovers of new or changed nodes and the positions that moved, not the whole tree. Where two traces give one
  id different values on one path, the later trace keeps that path as its own array.

A ``reset`` frame (the first) starts from nothing and is not drawn by the channel: its ``gr.Plot`` draws it.
Every frame names its ``rev`` and the ``base`` it applies to; the page drops a frame whose base is not what
it holds (a lost update) and redraws nothing until the next reset (the run's last frame is a whole figure
through ``gr.Plot`` again). The paper-free choices: patch granularity is a path, not a point index (points
are keyed by id because the tree's layout re-orders them), and the channel redraws with ``Plotly.react`` on
the rebuilt figure rather than ``extendTraces``/``restyle`` calls, which keeps one code path for appends,
moves and style changes; plotly diffs the traces itself.
"""
from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

JS_PATH = Path(__file__).with_name("live_figure.js")
_DTYPES = {"f4": np.float32, "f8": np.float64, "i1": np.int8, "u1": np.uint8, "i2": np.int16, "u2": np.uint16,
           "i4": np.int32, "u4": np.uint32}


def plain(value: Any) -> Any:
    """A figure's JSON (``fig.to_plotly_json()``) as plain JSON values: plotly's typed arrays (``bdata``) and
    numpy arrays as lists (float32 values at their shortest round-trip form, so they stay short), NaN and
    infinities as null (JSON has no NaN; plotly reads null as a gap, as it reads NaN)."""
    if isinstance(value, dict):
        if set(value) >= {"dtype", "bdata"} and value.get("dtype") in _DTYPES:
            arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=_DTYPES[value["dtype"]])
            if "shape" in value:
                arr = arr.reshape([int(s) for s in str(value["shape"]).split(",")])
            return plain(arr)
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        if value.dtype == np.float32:
            return [None if not math.isfinite(v) else float(str(v)) for v in value.ravel()] if value.ndim == 1 \
                else [plain(row) for row in value]
        return plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def flatten(value: dict, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict of dotted paths; lists (and empty dicts) are leaves."""
    out: dict[str, Any] = {}
    for k, v in value.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, path + "."))
        else:
            out[path] = v
    return out


def _changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    return {k: v for k, v in new.items() if k not in old or old[k] != v}, [k for k in old if k not in new]


def _trace_keys(traces: list[dict]) -> list[str]:
    names = [t.get("name") for t in traces]
    return [n if isinstance(n, str) and names.count(n) == 1 else f"#{i}" for i, n in enumerate(names)]


@dataclass
class _Trace:
    rest: dict[str, Any] = field(default_factory=dict)  # flattened values that are not per point
    ids: list[str] | None = None
    pf: list[str] = field(default_factory=list)         # paths of the per-point values


@dataclass
class FigureStream:
    """What the page holds of one live figure, and the diffs that bring it to the next figure."""

    rev: int = 0
    layout: dict[str, Any] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    traces: dict[str, _Trace] = field(default_factory=dict)
    points: dict[str, dict[str, Any]] = field(default_factory=dict)  # value path -> point id -> value

    def frame(self, figure: Any, reset: bool = False) -> dict[str, Any]:
        """The diff from what the page holds to ``figure`` (a plotly Figure or its JSON dict); remembered as
        held. ``reset`` (or the first frame) diffs from an empty figure."""
        fig = plain(figure.to_plotly_json() if hasattr(figure, "to_plotly_json") else figure)
        reset = reset or self.rev == 0
        if reset:
            self.layout, self.order, self.traces, self.points = {}, [], {}, {}
        base, self.rev = self.rev, self.rev + 1
        out: dict[str, Any] = {"rev": self.rev, "base": 0 if reset else base}
        if reset:
            out["reset"] = True
        layout = flatten(fig.get("layout") or {})
        put, gone = _changes(self.layout, layout)
        if put or gone:
            out["layout"] = {k: v for k, v in (("set", put), ("del", gone)) if v}
        self.layout = layout
        data = fig.get("data") or []
        keys = _trace_keys(data)
        if keys != self.order:
            out["order"] = keys
        patches: dict[str, dict] = {}
        points: dict[str, dict[str, Any]] = {}
        claims: dict[str, dict[str, Any]] = {}
        for key, trace in zip(keys, data):
            patch = self._trace(key, trace, points, claims)
            if patch:
                patches[key] = patch
        for key in set(self.traces) - set(keys):
            del self.traces[key]
        self.order = keys
        if patches:
            out["traces"] = patches
        if points:
            out["points"] = points
        return out

    def _trace(self, key: str, trace: dict, points: dict[str, dict[str, Any]],
               claims: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The patch of one trace; ``points`` collects the frame's new point values, ``claims`` every point
        value a trace of this frame relies on (a value another trace gives the same id differently stays
        that trace's own array, since the page keeps one value per id)."""
        held = self.traces.setdefault(key, _Trace())
        flat = flatten(trace)
        ids = flat.get("ids")
        patch: dict[str, Any] = {}
        if isinstance(ids, list) and all(isinstance(i, str) for i in ids) and len(set(ids)) == len(ids):
            del flat["ids"]
            pf = []
            for path in sorted(p for p, v in flat.items() if isinstance(v, list) and len(v) == len(ids)):
                claimed = claims.setdefault(path, {})
                if any(pid in claimed and claimed[pid] != v for pid, v in zip(ids, flat[path])):
                    continue
                pf.append(path)
                cache = self.points.setdefault(path, {})
                for pid, v in zip(ids, flat.pop(path)):
                    claimed[pid] = v
                    if pid not in cache or cache[pid] != v:
                        cache[pid] = points.setdefault(path, {})[pid] = v
            if held.ids is not None and len(ids) > len(held.ids) and ids[:len(held.ids)] == held.ids:
                patch["ids_app"] = ids[len(held.ids):]
            elif ids != held.ids:
                patch["ids"] = ids
            held.ids = ids
            if pf != held.pf:
                patch["pf"] = held.pf = pf
        elif held.ids is not None:  # the trace lost its ids: every value goes back to being its own
            held.ids, held.pf, held.rest = None, [], {}
            patch["ids"], patch["pf"] = None, []
        put, gone = _changes(held.rest, flat)
        grown = {k: v[len(held.rest[k]):] for k, v in put.items()
                 if isinstance(v, list) and isinstance(held.rest.get(k), list)
                 and len(v) > len(held.rest[k]) and v[:len(held.rest[k])] == held.rest[k]}
        put = {k: v for k, v in put.items() if k not in grown}
        patch.update({k: v for k, v in (("set", put), ("app", grown), ("del", gone)) if v})
        held.rest = flat
        return patch


def channel(target: str, elem_id: str):
    """The hidden ``gr.HTML`` that patches the ``gr.Plot`` whose elem_id is ``target``: its value is a
    diff (:meth:`FigureStream.frame`), its template renders nothing, and its
    ``js_on_load`` holds the page's copy of the figure."""
    import gradio as gr

    return gr.HTML(None, html_template="", js_on_load=JS_PATH.read_text(), target=target, elem_id=elem_id,
                   container=False, padding=False, apply_default_css=False, elem_classes=["tts-live-channel"])
