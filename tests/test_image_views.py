"""The image views built from stored events: runs made through ``engine.run.execute`` into a real SQLite
store on tiny random diffusers models (tests/image_models.py), read back with ``ui.common.stored_events``
and drawn by ``ui.figures.images`` / ``ui.fold`` and ``ui.figures`` exactly as the Runs tab replays them."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.run import RunConfig, execute
from storage import RunStore
from tests import image_models
from ui.figures import images as image_views
from ui.figures.curves import score_vs_compute_figure
from ui.figures.particles import particle_figure
from ui.figures.tables import candidates_rows, metrics_rows
from ui.figures.tree import tree_figure
from ui.fold import ViewState, fold, run_verdict
from ui.common import frame, stored_events

STEPS = 6
PARAMS = {  # small, stochastic settings for the image strategies (tests/test_image_strategies.py covers them all)
    "random_search": {},
    "zero_order": {"neighbours": 2},
    "search_over_paths": {"branches": 2, "forward": 1, "backward": 2},
    "fk_steering": {"every": 1, "window_start": 0.1, "adaptive": False},
    "evo_search": {"population": 3, "elites": 1, "tournament": 2},
    "more_steps": {},
}
BUDGET = {"random_search": 4, "zero_order": 3, "search_over_paths": 2, "fk_steering": 4, "evo_search": 4,
          "more_steps": 1}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """TTS_IMAGES_DIR for the module: the runs write their previews here and the views accept only it."""
    root = tmp_path_factory.mktemp("images")
    mp = pytest.MonkeyPatch()
    mp.setenv("TTS_IMAGES_DIR", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def stored(tmp_path_factory, images):
    """One stored run per image strategy: {strategy: (store, run id)}."""
    models = image_models.build(tmp_path_factory.mktemp("image-models"))
    store = RunStore(tmp_path_factory.mktemp("db") / "runs.db")
    ids = {}
    for strategy, params in PARAMS.items():
        cfg = RunConfig(domain="image", model=str(models["model"]), verifier=str(models["verifier"]),
                        judge=str(models["judge"]), strategy=strategy, budget=BUDGET[strategy], problem_id="test:3",
                        params=params, options={"steps": STEPS})
        last = None
        for ev in execute(cfg, store):
            last = ev
        assert last["status"] == "finished", last
        ids[strategy] = last["run_id"]
    yield store, ids
    store.close()


def folded(stored, strategy: str, k: int | None = None) -> tuple[ViewState, list[dict]]:
    store, ids = stored
    events = stored_events(store, ids[strategy])
    return fold(events, upto_step=k), events


@pytest.mark.parametrize("strategy", list(PARAMS))
def test_image_views_render_from_stored_events(stored, images, strategy):
    st, events = folded(stored, strategy)
    assert st.is_image and st.status == "finished"
    items = image_views.gallery_items(st, images)
    assert items, "no candidate in the gallery"
    for path, caption in items:
        assert Path(path).is_file() and Path(path).resolve().is_relative_to(images.resolve())
        assert re.search(r"n\d+ · ([0-9.]+|–) · judge \d [✓✗]$", caption), caption
    strips = image_views.strips_figure(st, images)
    json.loads(strips.to_json())
    assert strips.layout.images, "no thumbnail in the strips"
    for img in strips.layout.images:
        assert img.source.startswith(image_views.FILE_ROUTE)
        assert Path(img.source[len(image_views.FILE_ROUTE):]).is_file()
    score = score_vs_compute_figure([st])
    assert score.layout.xaxis.title.text.startswith("NFE")
    tree = tree_figure(st)
    assert tree.layout.xaxis.title.text == "denoising step"
    hover = " ".join(" ".join(t.hovertext or []) for t in tree.data)
    assert str(images) not in hover and "digit 3" in hover  # the prompt, no file paths
    views = frame(events, None)
    assert len(views) == 10  # Viewer.view_outputs: ..., gallery, strips, NFE, traces, critiques
    assert views[-1]["visible"] is False  # an image run has no per-trace view


def test_gallery_sorted_by_score_with_the_judges_verdicts(stored, images):
    st, _ = folded(stored, "random_search")
    store, ids = stored
    judged = {j["id"]: j for j in store.get_run(ids["random_search"])["result"]["candidates_judged"]}
    items = image_views.gallery_items(st, images)
    assert len(items) == BUDGET["random_search"] == len(judged)
    ids_shown = [Path(p).stem for p, _ in items]
    scores = [judged[i]["verifier_score"] for i in ids_shown]
    assert scores == sorted(scores, reverse=True)
    for nid, (_, caption) in zip(ids_shown, items):
        j = judged[nid]
        assert caption.endswith(f"{nid} · {j['verifier_score']:.3f} · judge {j['judge_predicted']} "
                                f"{'✓' if j['judge_correct'] else '✗'}")
        assert st.nodes[nid].correct is j["judge_correct"]  # the judge, not "answer == asked class"
    assert items[0][1].startswith("★")  # random search picks the best verifier score
    # the candidates table is not used for images; its rows agree with the judge anyway
    rows = {r[0]: r[4] for r in candidates_rows(st)}
    assert all(rows[i] == ("✔" if judged[i]["judge_correct"] else "✘") for i in judged)


def test_live_fold_has_no_verdict_before_the_judge(stored, images):
    _, events = folded(stored, "random_search")
    live = fold([e for e in events if e["type"] != "RunEnded"])
    assert all(n.correct is None for n in live.nodes.values() if n.finished)
    assert run_verdict(live) is None
    live.status = "running"
    assert all(c.endswith("judge at the end") for _, c in image_views.gallery_items(live, images))


def test_fk_steering_lanes_and_ess_from_the_same_events(stored):
    st, events = folded(stored, "fk_steering")
    n = BUDGET["fk_steering"]
    assert st.particle_steps, "fk_steering emitted no Resampled events the lanes view folds"
    # the view holds each stored resampling as it was emitted: weights, ancestry, ESS, particles
    stored_steps = [e for e in events if e["type"] == "Resampled"]
    assert [(ps.step, ps.weights, ps.parent, ps.ess, ps.particles) for ps in st.particle_steps] == [
        (e["step"], e["weights"], e["ancestors"], e["ess"], e["particles"]) for e in stored_steps]
    assert all(len(ps.weights) == len(ps.parent) == len(ps.particles) == n for ps in st.particle_steps)
    # populations link one to one (the i-th resampled particle is the i-th at the next resampling)
    assert all(ps.next_index == list(range(n)) for ps in st.particle_steps[:-1])
    fig = particle_figure(st)
    names = [t.name for t in fig.data]
    assert "ESS" in names and any("threshold" in (x or "") for x in names)
    ess = next(t for t in fig.data if t.name == "ESS")
    assert list(ess.x) == [float(ps.step) for ps in st.particle_steps]


def test_strips_follow_the_lineage_and_the_replay_step(stored, images):
    st, events = folded(stored, "fk_steering")
    fig = image_views.strips_figure(st, images)
    sources = [img.source for img in fig.layout.images]
    assert any(s.endswith("_xt.png") for s in sources) and any(not s.endswith("_xt.png") for s in sources)
    assert list(fig.layout.xaxis.ticktext) == [str(s) for s in range(1, STEPS + 1)]  # aligned on steps
    assert fig.layout.yaxis.ticktext[0].startswith("★")  # the chosen lineage first
    assert len(fig.layout.shapes) == 1  # and framed
    early = image_views.strips_figure(fold(events, upto_step=2), images)
    assert 0 < len(early.layout.images) < len(fig.layout.images)
    assert len(early.layout.xaxis.ticktext) < STEPS


def test_score_vs_nfe_and_the_compare_axis(stored):
    a, _ = folded(stored, "random_search")
    b, _ = folded(stored, "fk_steering")
    fig = score_vs_compute_figure([a, b], ["random", "fk"])
    assert [t.name for t in fig.data] == ["random", "fk"]
    for t in fig.data:
        assert list(t.y) == sorted(t.y) and min(t.x) > 0
    assert max(fig.data[0].x) == a.totals["nfe"]
    text = [{"type": "RunStarted", "run_id": "r1", "strategy": "best_of_n", "config": {"domain": "reasoning"},
             "problem": {"answer": "1"}},
            {"type": "NodeAdded", "id": "n0", "parent": None, "step": 0, "preview": "p"},
            {"type": "NodeScored", "id": "n0", "score": 0.5, "totals": {"tokens": 10}}]
    mixed = score_vs_compute_figure([text, a], ["text", "img"])
    assert mixed.layout.xaxis.title.text.startswith("tokens") and [t.name for t in mixed.data] == ["text"]
    assert "left out" in mixed.layout.annotations[0].text
    headers, rows = metrics_rows([a, b], ["a", "b"])
    assert next(r for r in rows if r[0] == "NFE")[1:] == [int(a.totals["nfe"]), int(b.totals["nfe"])]


def test_only_pngs_inside_the_images_root_are_shown(stored, images, tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"not an image of ours")
    inside = next(images.rglob("*.png"))
    assert image_views.image_path(str(inside), images) == str(inside.resolve())
    for bad in (str(outside), str(images / ".." / outside.name), "/etc/passwd", str(inside) + ".txt", "", None):
        assert image_views.image_path(bad, images) is None
    st, _ = folded(stored, "random_search")
    victim = next(n for n in st.nodes.values() if n.finished)
    victim.preview = str(outside)  # as a crafted database could say
    shown = [p for p, _ in image_views.gallery_items(st, images)]
    assert str(outside) not in shown and len(shown) == BUDGET["random_search"] - 1


def test_reasoning_runs_hide_the_image_views():
    from ui.common import candidates_update, image_updates
    st = fold([{"type": "RunStarted", "run_id": "r1", "strategy": "best_of_n",
                      "config": {"domain": "reasoning"}, "problem": {"answer": "42"}},
                     {"type": "NodeAdded", "id": "n0", "parent": None, "step": 0, "preview": "p"},
                     {"type": "NodeAdded", "id": "n1", "parent": "n0", "step": 1, "preview": "x", "finished": True,
                      "answer": "42"}])
    assert not st.is_image and st.nodes["n1"].correct is True
    assert all(u.get("visible") is False for u in image_updates(st))
    assert candidates_update(st)["visible"] is True


def test_launch_serves_only_a_folder_of_its_own(tmp_path, monkeypatch):
    from ui.app import images_dir
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TTS_IMAGES_DIR", str(tmp_path / "imgs"))
    assert images_dir(tmp_path / "db" / "runs.db") == (tmp_path / "imgs").resolve()
    assert (tmp_path / "imgs").is_dir()
    with pytest.raises(ValueError, match="holds the run database"):
        images_dir(tmp_path / "imgs" / "runs.db")
    for served in (tmp_path, tmp_path.parent):
        monkeypatch.setenv("TTS_IMAGES_DIR", str(served))
        with pytest.raises(ValueError, match="working directory"):
            images_dir(None)


def test_strips_shown_only_for_lineages_of_several_images(stored):
    from ui.common import strips_update
    assert strips_update(folded(stored, "random_search")[0])["visible"] is False  # noise -> image in one go
    assert strips_update(folded(stored, "fk_steering")[0])["visible"] is True
