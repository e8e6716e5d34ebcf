"""Explore's live tree in a real browser: after its first frame the page receives diffs (ui/live_figure.py),
folds them (ui/live_figure.js) and redraws the tree with every node the search has made so far.

The page's channel keeps a log of what it received (``element.ttsLive.log``: revision, reset, folded, bytes,
and the markers drawn once plotly redrew) and its copy of the figure (``element.ttsLive.figure()``), which
this test reads after a beam search long enough to stream several frames.
"""
from __future__ import annotations

import json

import pytest

from tests.test_browser import (ARTIFACTS, CHROMIUM, browser, new_page, pick, points, run_id_of,  # noqa: F401 - the fixture
                                wait_status)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is missing (apt-get install chromium); "
                                "browser tests need a real browser")

LIVE = """() => {
    const root = document.querySelector('#explore-tree-live');
    const el = [root, ...root.querySelectorAll('*')].find(e => e.ttsLive);
    return {log: el.ttsLive.log, figure: el.ttsLive.figure()};
}"""


def test_beam_search_streams_diffs_that_draw_every_node(served, browser):
    from ui.figures.tree import tree_figure
    from ui.fold import fold
    from ui.live_figure import plain

    url, store = served
    page = new_page(browser, url)
    pick(page, "explore-strategy", "Beam search")
    pick(page, "explore-budget", "64")
    page.locator("#explore-difficulty").get_by_label("5").check()
    page.click("#run-btn")
    rid = run_id_of(wait_status(page, "explore", r"finished", timeout_s=180))
    page.wait_for_function("() => { const root = document.querySelector('#explore-tree-live');"
                           "  const el = [root, ...root.querySelectorAll('*')].find(e => e.ttsLive);"
                           "  const log = el.ttsLive.log; return log.length && log[log.length - 1].drawn !== null; }")
    live = page.evaluate(LIVE)
    log, fig = live["log"], live["figure"]
    assert log[0]["reset"] and log[0]["rev"] == 1, "the page's copy did not start from the first frame"
    diffs = log[1:]
    assert len(diffs) >= 2, f"too few live frames to see diffs: {log}"
    assert all(not d["reset"] and d["ok"] for d in diffs), f"a frame was lost or re-sent whole: {log}"
    assert [d["rev"] for d in log] == list(range(1, len(log) + 1))

    events = store.events(rid)
    whole = len(json.dumps(plain(tree_figure(fold(events), brief=True).to_plotly_json()),
                           separators=(",", ":"), ensure_ascii=False))
    assert max(d["bytes"] for d in diffs) < whole / 2, "a diff as large as the whole tree"

    # the copy the last diff left holds a prefix of the run's nodes (they arrive in order), more than the first
    # frame's, less the finished siblings folded into one counted node; plotly drew one marker per point of it
    added = [str(e["id"]) for e in events if e["type"] == "NodeAdded"]
    finished = {str(e["id"]) for e in events if e["type"] == "NodeAdded" and e.get("finished")}
    node_traces = [t for t in fig["data"] if t.get("hovertext")]
    shown = {i for t in node_traces for i in t["ids"]}
    assert len(shown) > 1 and shown <= set(added)
    prefix = added[:max(added.index(i) for i in shown) + 1]
    assert set(prefix) - shown <= finished, "an unfinished node of the prefix is missing from the page's copy"
    markers = sum(len(t["x"]) for t in fig["data"] if "markers" in (t.get("mode") or ""))
    assert diffs[-1]["drawn"] == markers
    # and the last frame, the whole figure through gr.Plot, draws every node of the run
    final = tree_figure(fold(events))
    assert points(page, "explore-tree") == sum(len(t.x) for t in final.data if "markers" in (t.mode or ""))
    page.screenshot(path=str(ARTIFACTS / "explore-live-diffs.png"), full_page=True)
    page.close()
