"""Explore's streaming handler on the embedded models, called directly (no server): what each update carries.

The acknowledgement (status line, the previous run's views cleared) and the first tree go out as one
update when the first node comes within ``ACK_GRACE_S``; a slow start gets the acknowledgement alone.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import plotly.graph_objects as go
import pytest

from tests.conftest import embedded_models_ready

# positions in Viewer.load_outputs: status, tree, particles, candidates, meter, slider, events, gallery, ...
STATUS, TREE, PARTICLES, CANDIDATES, METER, SLIDER, EVENTS, GALLERY, STRIPS, NFE = range(10)


@pytest.fixture(scope="module")
def ctx():
    ok, why = embedded_models_ready()
    if not ok:
        pytest.skip(f"embedded models not available ({why}); python -m backends.embedded.train writes them")
    from backends import catalog
    from engine.limits import Limits
    from storage import RunStore
    from ui.common import AppContext

    catalog.load_policy("tiny-arith-s")  # cached, as the app's warm-up leaves them
    catalog.load_verifier("tiny-prm")
    store = RunStore(Path(tempfile.mkdtemp()) / "runs.db")
    yield AppContext(store=store, limits=Limits(max_budget=64))
    store.close()


def stream(ctx):
    from engine.run import RunConfig
    from ui.explore import stream_run

    config = RunConfig(strategy="beam_search", budget=16, difficulty=3, seed=0)
    return stream_run(ctx, config, "run:test", viewer=None)


def is_skip(value) -> bool:
    return value == {"__type__": "update"}


def test_first_update_carries_the_tree_and_the_resets(ctx, monkeypatch):
    from ui import explore

    monkeypatch.setattr(explore, "ACK_GRACE_S", 60.0)  # however loaded the machine, the first node comes first
    outs = list(stream(ctx))
    first = outs[0]
    assert isinstance(first[TREE], go.Figure) and len(first[TREE].data) > 0, "first update without the tree"
    # the acknowledgement's part: the other domain's widgets hidden, this domain's emptied
    assert first[GALLERY] == {"__type__": "update", "value": [], "visible": False}
    assert first[STRIPS]["visible"] is False and first[NFE]["visible"] is False
    assert first[PARTICLES]["visible"] is False
    assert first[CANDIDATES]["visible"] is True
    assert "run <code>" in first[STATUS]
    assert "finished" in outs[-1][STATUS] and not is_skip(outs[-1][EVENTS])
    assert ctx.cancels == {}  # the session's cancel flag is released


def test_slow_start_is_acknowledged_before_the_tree(ctx):
    from backends import catalog
    from ui import views

    gen = stream(ctx)
    # another thread holds the model-load lock (as the app's warm-up does while it loads the models): the
    # run cannot start, and the page must hear of it within the grace period anyway
    with catalog._load_lock:
        ack = next(gen)
    assert is_skip(ack[TREE]), "the acknowledgement re-drew the tree"
    assert "starting" in ack[STATUS]
    assert ack[GALLERY] == {"__type__": "update", "value": [], "visible": False}
    assert ack[CANDIDATES] == {"__type__": "update", "value": [], "visible": True}
    assert ack[METER] == views.compute_meter_html({})  # the previous run's meter is cleared
    rest = list(gen)
    assert isinstance(rest[0][TREE], go.Figure)
    assert "finished" in rest[-1][STATUS]
