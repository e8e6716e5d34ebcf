"""Bytes of the search tree per live update in Explore: the whole figure as ``gr.Plot`` serialises it (sent on
every update two sessions ago), the compact brief figure (``ui.figures.style.plot_payload``, sent only when the
tree changed: last session), and now the diff to the page's copy (``ui.live_figure``: after the first frame
only new nodes, moved points and changed styles).

Part 1, one update of a 500-node tree: the first 500 nodes of a real run (beam search, budget 96, test:4, the
embedded models); the update that brings the tree from its 490th node to its 500th (with the scores and prunes
between). Bytes = the tree's part of gradio's message (the ``PlotData``, or the diff channel's value, JSON
encoded as UTF-8). Part 2, a whole live stream: the same run through Explore's own streaming handler
(``ui.live_run.stream_run``, its throttle as in the app); per update, the tree bytes it sent (the first frame's
figure, then diffs, then the last frame's whole figure), and for the same states what the whole figure and the
compact figure would have cost. Prints both and the ratios. Usage: python bench/update_bytes.py [--budget 96]
[--problem test:4]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402
import plotly.graph_objects as go  # noqa: E402

from engine.limits import Limits  # noqa: E402
from engine.run import RunConfig, run_events  # noqa: E402
from storage import RunStore  # noqa: E402
from ui.common import AppContext  # noqa: E402
from ui import live_run  # noqa: E402
from ui.live_run import stream_run  # noqa: E402
from ui.figures.style import plot_payload  # noqa: E402
from ui.figures.tree import tree_figure  # noqa: E402
from ui.fold import fold  # noqa: E402
from ui.live_figure import FigureStream  # noqa: E402

TREE = 1  # position of the tree in Explore's outputs
LIVE = -1  # position of the live tree's diff (after the viewer's outputs)
SKIP = {"__type__": "update"}


def wire(value) -> int:
    """Bytes of one output in gradio's message: its postprocessed value (a plot's, or the channel's plain diff),
    JSON, UTF-8."""
    if isinstance(value, dict):
        return len(json.dumps(value, ensure_ascii=False).encode())
    return len(json.dumps(gr.Plot().postprocess(value).model_dump(), ensure_ascii=False).encode())


def kib(x: float) -> str:
    return f"{x / 1024:.1f} KiB"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=int, default=96)
    ap.add_argument("--problem", default="test:4")
    args = ap.parse_args()
    config = RunConfig(model="tiny-arith-s", verifier="tiny-prm", strategy="beam_search", budget=args.budget,
                       problem_id=args.problem)
    events, nodes, cut = [], 0, None
    for e in run_events(config, Limits(max_budget=args.budget)):
        if e["type"] == "NodeAdded":
            nodes += 1
            if nodes == 490:
                cut = len(events)
            if nodes > 500:
                break
        events.append(e)
    st = fold(events)
    before, compact = wire(tree_figure(st)), wire(plot_payload(tree_figure(st, brief=True)))
    live = FigureStream()
    live.frame(tree_figure(fold(events[:cut]), brief=True))
    diff = wire(live.frame(tree_figure(st, brief=True)))
    print(f"one update of a {min(nodes, 500)}-node tree (its nodes 491 to 500 new): whole figure {kib(before)}, "
          f"compact figure {kib(compact)}, diff {kib(diff)}; ratio whole / diff {before / diff:.1f}x, "
          f"compact / diff {compact / diff:.1f}x")

    # record, wherever a live frame draws, what the whole and the compact figure would have cost
    full_sizes: list[int] = []
    compact_sizes: list[int] = []

    def drawing(state, *a, brief: bool = False, **kw):
        full_sizes.append(wire(tree_figure(state, *a, **kw)))
        compact_sizes.append(wire(plot_payload(tree_figure(state, *a, brief=True, **kw))))
        return tree_figure(state, *a, brief=brief, **kw)

    live_run.tree_figure = drawing
    ctx = AppContext(store=RunStore(Path(tempfile.mkdtemp()) / "bench.db"), limits=Limits(max_budget=args.budget))
    sent = old = compacted = frames = skipped = diffs = 0
    for out in stream_run(ctx, config, "bench", viewer=None):
        frames += 1
        old += full_sizes[-1] if full_sizes else 0  # two sessions ago a skipped update re-sent the same figure
        if out[TREE] == SKIP and out[LIVE] == SKIP:
            skipped += 1
        else:  # last session sent the compact figure, and the whole one last (as now)
            compacted += wire(out[TREE]) if isinstance(out[TREE], go.Figure) else compact_sizes[-1]
        for value in (out[TREE], out[LIVE]):
            if value != SKIP:
                sent += wire(value)
        diffs += out[LIVE] != SKIP and not out[LIVE].get("reset")
    print(f"live stream of budget-{args.budget} beam search on {args.problem}: {frames} updates ({skipped} without "
          f"the tree, {diffs} diffs); tree bytes per update: whole figure {kib(old / frames)}, compact figure "
          f"{kib(compacted / frames)}, now {kib(sent / frames)}; ratio whole / now {old / sent:.2f}x, "
          f"compact / now {compacted / sent:.2f}x")


if __name__ == "__main__":
    main()
