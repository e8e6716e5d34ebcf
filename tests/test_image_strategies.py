"""Every image strategy once end to end through ``engine.run.execute`` with a real SQLite store, on tiny
random models saved as local folders (a diffusers UNet folder, two classifier folders)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.run import ConfigError, RunConfig, execute, summary
from strategies.registry import STRATEGIES
from tests import image_models

ROOT = Path(__file__).resolve().parents[1]
STEPS = 6


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return image_models.build(tmp_path_factory.mktemp("image-models"))


def config(models, strategy, budget, **kw):
    return RunConfig(domain="image", model=str(models["model"]), verifier=str(models["verifier"]),
                     judge=str(models["judge"]), strategy=strategy, budget=budget, problem_id=kw.pop("problem_id", "test:3"),
                     options={"steps": STEPS, **kw.pop("options", {})}, **kw)


CASES = [
    ("random_search", 4, {}),
    ("zero_order", 5, {"neighbours": 2}),
    ("search_over_paths", 2, {"branches": 2, "forward": 1, "backward": 2}),
    ("fk_steering", 4, {"every": 1, "window_start": 0.1, "adaptive": False}),
    ("evo_search", 6, {"population": 3, "elites": 1, "tournament": 2}),
    ("more_steps", 2, {}),
    ("rollover_budget_forcing", 4, {"chains": 2}),
]


def test_every_image_strategy_is_covered():
    assert {s for s, info in STRATEGIES.items() if "image" in info.domains} == {c[0] for c in CASES}


@pytest.mark.parametrize("strategy, budget, params", CASES)
def test_image_strategy_end_to_end(models, store, strategy, budget, params, tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_IMAGES_DIR", str(tmp_path / "images"))
    events = list(execute(config(models, strategy, budget, params=params), store))
    end = events[-1]
    assert end["type"] == "RunEnded" and end["status"] == "finished", end["error"]
    assert isinstance(end["correct"], bool)
    run = store.get_run(events[0]["run_id"])
    assert run["status"] == "finished" and run["domain"] == "image"
    assert [e["type"] for e in store.events(run["id"])] == [e["type"] for e in events[:-1]]
    # compute: NFE counted by the backend, cost deltas add up to the totals
    totals = end["compute"]
    assert totals["nfe"] > 0
    assert sum(e["cost"]["nfe"] for e in events[:-1]) == totals["nfe"]
    # every image node has a PNG preview written under the run's own folder
    added = [e for e in events if e["type"] == "NodeAdded" and e["parent"] is not None]
    assert added and all(Path(e["preview"]).is_file() for e in added)
    assert all(str(tmp_path / "images") in e["preview"] for e in added)
    # the judge's verdict and the search-verifier score of every candidate are stored
    extras = end["extras"]
    judged = extras["candidates_judged"]
    assert {j["id"] for j in judged} == {c["id"] for c in end["candidates"]}
    assert all(isinstance(j["judge_correct"], bool) and j["verifier_score"] is not None for j in judged)
    assert extras["chosen_judge_correct"] == end["correct"]
    assert run["result"]["candidates_judged"] == judged
    info = STRATEGIES[strategy]
    if info.uses_verifier:
        assert totals["verifier_calls"] > 0
    if strategy == "random_search":
        assert totals["nfe"] == budget * STEPS and len(end["candidates"]) == budget
    if strategy == "more_steps":
        assert totals["nfe"] == budget * STEPS and totals["verifier_calls"] == 0
    if strategy == "zero_order":
        assert totals["nfe"] == budget * STEPS
    if strategy == "evo_search":
        assert budget * STEPS - STEPS < totals["nfe"] <= budget * STEPS
    if strategy == "fk_steering":
        res = [e for e in events if e["type"] == "Resampled"]
        assert res and all(len(e["ancestors"]) == budget and abs(sum(e["weights"]) - 1) < 1e-6 for e in res)
        assert totals["nfe"] == budget * STEPS
    if strategy == "rollover_budget_forcing":  # exactly random search's NFE, on the flow SDE by default
        assert totals["nfe"] == budget * STEPS
        assert extras["sampling"]["scheduler"] == "flow_sde" and len(end["candidates"]) == 2
    summ = summary(events)
    assert summ["extras"]["mean_verifier_score"] is not None


def test_guidance_doubles_the_nfe(models, store):
    a = list(execute(config(models, "random_search", 2, options={"previews": "none"}), store))[-1]
    b = list(execute(config(models, "random_search", 2, options={"previews": "none", "guidance": 2.0}), store))[-1]
    assert b["compute"]["nfe"] == 2 * a["compute"]["nfe"] == 2 * 2 * STEPS


def test_same_seed_same_images(models, store):
    runs = [list(execute(config(models, "fk_steering", 3, options={"previews": "none"}), store))[-1]
            for _ in range(2)]
    seeds = [[j["seed"] for j in r["extras"]["candidates_judged"]] for r in runs]
    scores = [[j["verifier_score"] for j in r["extras"]["candidates_judged"]] for r in runs]
    assert seeds[0] == seeds[1] and scores[0] == scores[1]


@pytest.mark.parametrize("change, message", [
    ({"options": {"eta": 3}}, "eta must be"),
    ({"options": {"bogus": 1}}, "unknown image option"),
    ({"problem_id": "test:x"}, "problem id must look like"),
    ({"strategy": "beam_search"}, "unknown strategy"),
])
def test_bad_image_input_is_refused(models, store, change, message):
    kw = {"strategy": "random_search", "budget": 2, **change}
    strategy, budget = kw.pop("strategy"), kw.pop("budget")
    with pytest.raises(ConfigError, match=message):
        list(execute(config(models, strategy, budget, **kw), store))


def test_image_sweep_reports_judge_accuracy_and_verifier_score(models, store):
    from engine.sweep import SweepConfig, run_sweep
    cfg = SweepConfig(domain="image", model=str(models["model"]), verifier=str(models["verifier"]),
                      judge=str(models["judge"]), strategies=["random_search", "fk_steering"], budgets=[1, 2],
                      problems=2, options={"steps": 4, "previews": "none"})
    result = run_sweep(cfg, store)
    rows = {(r["strategy"], r["budget"]): r for r in result["results"]}
    assert set(rows) == {("random_search", 1), ("random_search", 2), ("fk_steering", 1), ("fk_steering", 2)}
    for r in rows.values():
        assert 0.0 <= r["accuracy"] <= 1.0 and r["verifier_score"] is not None
        assert r["compute"]["nfe"] == r["budget"] * 4
    assert result["oracle"]["n_problems"] == 2 and result["oracle"]["source"] == "random_search"


@pytest.mark.parametrize("strategy, budget, params", CASES)
def test_cancel_mid_run_stops_at_the_next_step(strategy, budget, params):
    from backends.image.diffusion import Sampling
    from backends.image.space import ImageSpace
    from strategies.core import CancelToken, Cancelled
    from strategies.params import build
    model = image_models.tiny_model()
    token = CancelToken()
    sp = ImageSpace(model, _Brightness(), label=2, sampling=Sampling(steps=STEPS), cancel=token)
    info = STRATEGIES[strategy]
    calls_at_cancel = None
    try:
        for e in info.search(sp, build(info.params_cls, {**params, info.budget_param: budget}), token):
            if e.to_dict()["type"] == "StepDone" and calls_at_cancel is None:
                token.cancel()
                calls_at_cancel = model.forward_calls
    except Cancelled:
        pass
    else:  # only a one-shot method may finish after Stop: it had nothing left to do
        assert strategy in ("random_search", "more_steps")
    assert calls_at_cancel is not None and model.forward_calls == calls_at_cancel


class _Brightness:
    name = "brightness"

    def score(self, images, labels):
        from strategies.core import Compute
        return [float(torch.sigmoid(x.mean() * 4)) for x in images], Compute(verifier_calls=len(images))


def test_cli_run_on_the_embedded_model(tmp_path):
    """The documented command on the committed tiny-digits weights (skipped where they are not trained)."""
    import json
    import os
    import subprocess
    import sys

    from backends import catalog
    if not all(catalog.CATALOG[i].availability()[0] for i in ("tiny-digits", "digit-classifier", "digit-judge")):
        pytest.skip("embedded image models not trained here (python -m backends.embedded.digits.train)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TTS_IMAGES_DIR": str(tmp_path / "img")}
    p = subprocess.run([sys.executable, "app.py", "--db", str(tmp_path / "cli.db"), "run", "--domain", "image",
                        "--model", "tiny-digits", "--verifier", "digit-classifier", "--judge", "digit-judge",
                        "--strategy", "random_search", "--budget", "4", "--problem-id", "test:3",
                        "--option", "steps=10", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout)
    assert out["status"] == "finished" and out["problem"]["answer"] == "3"
    assert out["compute"]["nfe"] == 40 and isinstance(out["correct"], bool)
    assert out["extras"]["mean_verifier_score"] is not None and len(out["extras"]["candidates_judged"]) == 4
