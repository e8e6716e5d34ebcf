"""Bytes of the search tree per live update in Explore, before (the figure as ``gr.Plot`` serialises it, sent
on every update) and after (brief hovers, ``ui.figures.style.plot_payload``, sent only when the tree changed).

Part 1, one update of a 500-node tree: the first 500 nodes of a real run (beam search, budget 96, test:4, the
embedded models), folded and drawn once; bytes = the tree's part of gradio's message (its ``PlotData``, JSON
encoded as UTF-8), before and after. Part 2, a whole live stream: the same run through Explore's own streaming
handler (``ui.explore.stream_run``, its throttle as in the app); for each update, the tree bytes it sent and
what the old handler would have sent for the same state (the full figure, every update). Prints both and the
ratios. Usage: python bench/update_bytes.py [--budget 96] [--problem test:4]
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

from engine.limits import Limits  # noqa: E402
from engine.run import RunConfig, run_events  # noqa: E402
from storage import RunStore  # noqa: E402
from ui.common import AppContext  # noqa: E402
from ui import explore  # noqa: E402
from ui.explore import stream_run  # noqa: E402
from ui.figures.style import plot_payload  # noqa: E402
from ui.figures.tree import tree_figure  # noqa: E402
from ui.fold import fold  # noqa: E402

TREE = 1  # position of the tree in Explore's outputs


def wire(value) -> int:
    """Bytes of one output in gradio's message: its postprocessed value, JSON, UTF-8."""
    return len(json.dumps(gr.Plot().postprocess(value).model_dump(), ensure_ascii=False).encode())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=int, default=96)
    ap.add_argument("--problem", default="test:4")
    args = ap.parse_args()
    config = RunConfig(model="tiny-arith-s", verifier="tiny-prm", strategy="beam_search", budget=args.budget,
                       problem_id=args.problem)
    events, nodes = [], 0
    for e in run_events(config, Limits(max_budget=args.budget)):
        if e["type"] == "NodeAdded":
            nodes += 1
            if nodes > 500:
                break
        events.append(e)
    st = fold(events)
    before, after = wire(tree_figure(st)), wire(plot_payload(tree_figure(st, brief=True)))
    print(f"one update of a {min(nodes, 500)}-node tree: before {before / 1024:.1f} KiB, after {after / 1024:.1f} KiB, "
          f"ratio {before / after:.2f}x")
    print(f"    (brief hovers: {wire(tree_figure(st, brief=True)) / 1024:.1f} KiB as gr.Plot serialises it; compact JSON "
          f"with full hovers: {wire(plot_payload(tree_figure(st))) / 1024:.1f} KiB)")

    # the old handler sent tree_figure(state) on every update: record its size wherever a live frame draws
    full_sizes: list[int] = []

    def drawing(state, *a, brief: bool = False, **kw):
        full_sizes.append(wire(tree_figure(state, *a, **kw)))
        return tree_figure(state, *a, brief=brief, **kw)

    explore.tree_figure = drawing
    ctx = AppContext(store=RunStore(Path(tempfile.mkdtemp()) / "bench.db"), limits=Limits(max_budget=args.budget))
    sent = old = frames = skipped = 0
    for out in stream_run(ctx, config, "bench", viewer=None):
        value = out[TREE]
        frames += 1
        old += full_sizes[-1] if full_sizes else 0  # a skipped update re-sent the same figure before
        if isinstance(value, dict):
            skipped += 1
        else:
            sent += wire(value)
    print(f"live stream of budget-{args.budget} beam search on {args.problem}: {frames} updates ({skipped} without "
          f"the tree); tree bytes per update: before {old / frames / 1024:.1f} KiB, after {sent / frames / 1024:.1f} "
          f"KiB, ratio {old / sent:.2f}x")


if __name__ == "__main__":
    main()
