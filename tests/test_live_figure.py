"""The live tree's diffs (ui/live_figure.py) and the page's fold of them (ui/live_figure.js).

A search tree grows from a scripted beam search (events as the engine emits them, no model): nodes are added,
scored, pruned, finished and one is selected, so nodes move between traces and the layout re-orders them. Each
frame's figure goes through ``FigureStream.frame``; the page's own JavaScript, run in chromium, folds the
diffs one after another, and its copy must equal every full figure exactly (as JSON values). The Python side's
claims are checked without a browser: an unchanged figure sends nothing, each node's hover goes out once
unless it changes, and a whole stream costs a fraction of re-sending the figure.
"""
from __future__ import annotations

import json
import random
import shutil

import numpy as np
import plotly.graph_objects as go
import pytest

from ui.figures.tree import tree_figure
from ui.fold import ViewState, fold
from ui.live_figure import JS_PATH, FigureStream, plain

CHROMIUM = shutil.which("chromium")


def scripted_beam_search(steps: int = 6, width: int = 4, children: int = 4, seed: int = 0) -> list[list[dict]]:
    """Batches of events of a beam search (one batch per live frame): each step every survivor gets
    ``children`` children, all are scored, all but the best ``width`` are pruned; the last step's survivors
    finish and the best is selected. Previews carry text a hover must escape."""
    rng = random.Random(seed)
    batches: list[list[dict]] = [[{"type": "RunStarted", "run_id": "rtest", "strategy": "beam_search"},
                                  {"type": "NodeAdded", "id": "n0", "parent": None, "step": 0,
                                   "preview": "Start with 3. <b>Add</b> ${x} & 4."}]]
    survivors, k = ["n0"], 1
    for step in range(1, steps + 1):
        kids = []
        for parent in survivors:
            batch = []
            for _ in range(children):
                nid = f"n{k}"
                k += 1
                kids.append(nid)
                batch.append({"type": "NodeAdded", "id": nid, "parent": parent, "step": step,
                              "preview": f"{rng.randint(1, 99)} + {rng.randint(1, 99)} = <{rng.randint(1, 200)}>"})
            batches.append(batch)
        scores = {nid: rng.random() for nid in kids}
        batches.append([{"type": "NodeScored", "id": nid, "score": s, "per_step": [s]} for nid, s in scores.items()])
        survivors = sorted(kids, key=scores.get, reverse=True)[:width]
        batches.append([{"type": "NodePruned", "id": nid, "reason": f"not in top {width}"}
                        for nid in kids if nid not in survivors])
    batches.append([{"type": "NodeFinished", "id": nid, "answer": str(rng.randint(1, 9)), "correct": i % 2 == 0}
                    for i, nid in enumerate(survivors)])
    batches.append([{"type": "Selected", "id": survivors[0], "answer": "1", "score": 0.9}])
    return batches


def frames(brief: bool = True) -> list[go.Figure]:
    st = ViewState(strategy="beam_search")
    out = []
    for batch in scripted_beam_search():
        fold(batch, state=st)
        out.append(tree_figure(st, brief=brief))
    return out


def wire(value) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def test_an_unchanged_figure_sends_nothing_and_a_reset_starts_over():
    fig = frames()[-1]
    stream = FigureStream()
    first = stream.frame(fig)
    assert first["reset"] and first["rev"] == 1 and first["base"] == 0
    assert stream.frame(fig) == {"rev": 2, "base": 1}
    again = stream.frame(fig, reset=True)
    assert again["reset"] and {k: v for k, v in again.items() if k not in ("rev", "base")} == \
        {k: v for k, v in first.items() if k not in ("rev", "base")}


def test_each_hover_goes_out_once_unless_it_changes():
    st = ViewState(strategy="beam_search")
    stream = FigureStream()
    sent: dict[str, list[str]] = {}
    for batch in scripted_beam_search():
        fold(batch, state=st)
        diff = stream.frame(tree_figure(st, brief=True))
        for nid, hover in diff.get("points", {}).get("hovertext", {}).items():
            sent.setdefault(nid, []).append(hover)
    assert set(sent) == set(st.nodes)
    for nid, hovers in sent.items():
        assert len(set(hovers)) == len(hovers), f"{nid}'s unchanged hover was sent again"
        assert len(hovers) <= 4, hovers  # added, scored, then pruned, or finished and chosen


def test_a_stream_sends_a_fraction_of_the_whole_figures():
    figs = frames()
    stream = FigureStream()
    whole = sum(wire(plain(f.to_plotly_json())) for f in figs[1:])
    stream.frame(figs[0])
    diffs = sum(wire(stream.frame(f)) for f in figs[1:])
    assert diffs < whole / 3, (diffs, whole)


def test_plain_decodes_typed_arrays_and_gaps():
    fig = go.Figure(go.Scatter(x=np.asarray([0.1, float("nan"), 2.25], dtype=np.float32), y=[1, 2, 3]))
    trace = plain(fig.to_plotly_json())["data"][0]
    assert trace["x"] == [0.1, None, 2.25] and trace["y"] == [1, 2, 3]


def hand_made_figures() -> list[dict]:
    """Figures that exercise what the tree rarely does: a trace that appears, moves and goes, ids that are
    lost, two traces giving one id different values, a layout key deleted, an array that shrinks."""
    a = {"name": "a", "ids": ["p", "q"], "x": [1, 2], "y": [3, 4], "marker": {"color": ["red", "blue"]}}
    b = {"name": "b", "ids": ["p"], "x": [9], "y": [3], "mode": "markers"}
    return [
        {"data": [a], "layout": {"title": {"text": "one"}, "height": 300}},
        {"data": [a, b], "layout": {"title": {"text": "two"}}},
        {"data": [b, {**a, "ids": ["q", "p", "r"], "x": [2, 1, 5], "y": [4, 3, 6],
                      "marker": {"color": ["blue", "red", "green"]}}], "layout": {}},
        {"data": [{**a, "ids": None, "x": [1]}, {"line": {"width": 2}, "x": [1, 2, 3]}], "layout": {"height": 200}},
        {"data": [{"line": {"width": 2}, "x": [1, 2, 3, 4]}], "layout": {"height": 200}},
    ]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is missing (apt-get install chromium)")
def test_the_pages_fold_of_the_diffs_equals_every_whole_figure():
    from playwright.sync_api import sync_playwright

    from tests.test_browser import CHROMIUM_ARGS

    sequences = {"tree": [plain(f.to_plotly_json()) for f in frames()],
                 "tree, full hovers": [plain(f.to_plotly_json()) for f in frames(brief=False)],
                 "hand-made": [plain(f) for f in hand_made_figures()]}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        for name, figs in sequences.items():
            stream = FigureStream()
            diffs = [stream.frame(f) for f in figs]
            folded = page.evaluate("""([code, diffs]) => {
                const element = {};
                Function('element', 'trigger', 'props', 'server', 'upload', 'watch', code)(
                    element, () => {}, {}, {}, null, () => {});
                return diffs.map(d => element.ttsLive.apply(d) ? element.ttsLive.figure() : null);
            }""", [JS_PATH.read_text(), diffs])
            for i, (got, want) in enumerate(zip(folded, figs)):
                want = {"data": want.get("data") or [], "layout": want.get("layout") or {}}
                assert got == want, f"{name}: frame {i} folded differently"
            # a diff whose base is not what the page holds (a lost update) is refused, not folded in
            refused = page.evaluate("""([code, diffs]) => {
                const element = {};
                Function('element', 'trigger', 'props', 'server', 'upload', 'watch', code)(
                    element, () => {}, {}, {}, null, () => {});
                return [element.ttsLive.apply(diffs[0]), element.ttsLive.apply(diffs[2])];
            }""", [JS_PATH.read_text(), diffs])
            assert refused == [True, False]
        browser.close()
