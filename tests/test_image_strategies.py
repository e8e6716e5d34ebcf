"""Every image strategy once end to end through ``engine.run.execute`` with a real SQLite store, on tiny
random models saved as local folders (a diffusers UNet folder, two classifier folders)."""
from __future__ import annotations

import dataclasses
import math
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
    assert all(j["verifier_score"] is not None for j in judged)
    assert all(j["judge_correct"] is (j["judge_predicted"] == 3) for j in judged)  # test:3 asks for a 3
    # the run is graded by the judge's verdict on the chosen candidate
    chosen = next(e for e in events if e["type"] == "Selected")
    assert end["correct"] is next(j["judge_correct"] for j in judged if j["id"] == chosen["id"])
    assert extras["chosen_judge_correct"] is end["correct"]
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
    if strategy == "fk_steering":  # not adaptive: every scheduled step resamples, systematically by its weights
        from strategies import fk_steering
        res = [e for e in events if e["type"] == "Resampled"]
        assert [e["step"] for e in res] == fk_steering.scheduled_steps(STEPS, fk_steering.Params(**params))
        for e in res:
            assert e["ancestors"] == sorted(e["ancestors"]) and len(e["ancestors"]) == budget
            assert all(math.floor(budget * w) <= e["ancestors"].count(i) <= math.ceil(budget * w)
                       for i, w in enumerate(e["weights"]))
            pruned = {p["id"] for p in events if p["type"] == "NodePruned"
                      and p["reason"] == f"not resampled at step {e['step']}"}
            assert len(pruned) == budget - len(set(e["ancestors"]))
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
    for r in rows.values():  # a cell's accuracy is its stored runs' judge verdicts
        runs = [x for x in store.list_runs(strategy=r["strategy"]) if x["budget"] == r["budget"]]
        assert r["accuracy"] == sum(bool(x["correct"]) for x in runs) / len(runs) and len(runs) == 2
        assert r["verifier_score"] is not None
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
    assert out["compute"]["nfe"] == 40 and out["correct"] is out["extras"]["chosen_judge_correct"]
    assert out["extras"]["mean_verifier_score"] is not None and len(out["extras"]["candidates_judged"]) == 4


# ---- each image strategy on the committed tiny-digits weights, at budget 16 (20 DDIM steps) ---------------------

DIGITS_BUDGET = 16
DIGITS_STEPS = 20  # the image domain's default schedule
IMAGE_STRATEGIES = [s for s, info in STRATEGIES.items() if "image" in info.domains]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """run(strategy) -> the events of one run on tiny-digits + digit-classifier at budget 16 with the defaults."""
    from backends import catalog
    from storage import RunStore
    if not all(catalog.CATALOG[i].availability()[0] for i in ("tiny-digits", "digit-classifier", "digit-judge")):
        pytest.skip("embedded image models not trained here (python -m backends.embedded.digits.train)")
    store = RunStore(tmp_path_factory.mktemp("digits") / "runs.db")

    def run(strategy: str, **params) -> list[dict]:
        cfg = RunConfig(domain="image", model="tiny-digits", verifier="digit-classifier", judge="digit-judge",
                        strategy=strategy, budget=DIGITS_BUDGET, problem_id="test:3", params=params,
                        options={"previews": "none"})
        events = list(execute(cfg, store))
        assert events[-1]["status"] == "finished", events[-1]["error"]
        return events

    yield run
    store.close()


def counters(events: list[dict]) -> dict:
    """A run's compute counters without the timings (wall clock differs from run to run)."""
    return {k: v for k, v in events[-1]["compute"].items() if not k.endswith("_s")}


@pytest.mark.parametrize("strategy", IMAGE_STRATEGIES)
def test_every_image_strategy_spends_random_searchs_nfe_on_the_digits(digits, strategy):
    """Budget 16 buys the NFE of 16 full samplings (320), within 10%; verifier calls are counted apart."""
    nfe = counters(digits(strategy))["nfe"]
    baseline = counters(digits("random_search"))["nfe"]
    assert baseline == DIGITS_BUDGET * DIGITS_STEPS
    assert abs(nfe - baseline) <= 0.1 * baseline, f"{strategy} spent {nfe} NFE against random search's {baseline}"


@pytest.mark.parametrize("strategy", IMAGE_STRATEGIES)
def test_the_same_run_twice_in_one_process_has_identical_counters(digits, strategy):
    first, second = digits(strategy), digits(strategy)
    assert counters(first) == counters(second)
    assert counters(first)["verifier_calls"] > 0 or not STRATEGIES[strategy].uses_verifier


def test_search_over_paths_spends_its_stated_nfe_on_the_digits(digits):
    from strategies import search_over_paths as sop
    plan = sop.plan(DIGITS_BUDGET, DIGITS_STEPS, sop.Params())
    events = digits("search_over_paths")
    added = [e for e in events if e["type"] == "NodeAdded"]
    root = added[0]["id"]
    assert len([e for e in added if e["parent"] == root]) == plan.paths  # P paths, sized by the budget
    assert counters(events)["nfe"] == plan.paths * plan.steps_per_path
    # every round scores P x M branches, and only those
    assert counters(events)["verifier_calls"] == len(plan.rounds) * plan.paths * plan.branches
    pruned = [e for e in events if e["type"] == "NodePruned" and "paths in round" in e["reason"]]
    assert len(pruned) == len(plan.rounds) * plan.paths * (plan.branches - 1)


def test_zero_order_moves_its_pivot_only_on_improvement_on_the_digits(digits):
    events = digits("zero_order")
    parent = {e["id"]: e["parent"] for e in events if e["type"] == "NodeAdded"}
    rounds: list[list[dict]] = [[]]
    for e in events:
        if e["type"] == "StepDone":
            rounds.append([])
        else:
            rounds[-1].append(e)
    pivot = next(e for e in rounds[0] if e["type"] == "NodeScored")
    moved = rejected = 0
    for rnd in rounds[1:-1]:
        scored = [e for e in rnd if e["type"] == "NodeScored"]
        pruned = {e["id"] for e in rnd if e["type"] == "NodePruned"}
        # each neighbour's noise is drawn around the current pivot's noise
        assert all(parent[parent[e["id"]]] == parent[pivot["id"]] for e in scored)
        best = max(scored, key=lambda e: e["score"])
        if best["score"] > pivot["score"]:
            assert pruned == {e["id"] for e in scored if e is not best} | {pivot["id"]}
            pivot, moved = best, moved + 1
        else:
            assert pruned == {e["id"] for e in scored}
            rejected += 1
    assert moved and rejected, "the digits run should both move the pivot and reject a round"
    selected = next(e for e in events if e["type"] == "Selected")
    assert selected["id"] == pivot["id"]


def test_fk_steering_resamples_only_below_its_ess_threshold_on_the_digits(digits):
    from strategies import fk_steering
    params = fk_steering.Params()
    events = digits("fk_steering")
    n = DIGITS_BUDGET
    res = [e for e in events if e["type"] == "Resampled"]
    assert [e["step"] for e in res] == fk_steering.scheduled_steps(DIGITS_STEPS, params)
    below = 0
    for e in res:
        pruned = [p for p in events
                  if p["type"] == "NodePruned" and p["reason"] == f"not resampled at step {e['step']}"]
        if e["ess"] < params.ess_threshold * n:
            below += 1
            assert e["ancestors"] != list(range(n))
            assert len(pruned) == n - len(set(e["ancestors"]))
        else:
            assert e["ancestors"] == list(range(n)) and not pruned
    assert 0 < below < len(res), "the digits run should have steps on both sides of the threshold"


@pytest.mark.parametrize("options, sampler", [({}, ("ddim", 0.0)), ({"eta": 0}, ("ddim", 0.0)),
                                              ({"scheduler": "flow_ode"}, ("flow_ode", 0.0)),
                                              ({"eta": 1}, None), ({"eta": 0.3}, None),
                                              ({"scheduler": "ddpm"}, None), ({"scheduler": "flow_sde"}, None)])
def test_zero_order_runs_only_on_a_deterministic_sampler(models, store, options, sampler):
    """DDIM with eta 0 unless the user chose; a stochastic sampler the user chose is refused before anything runs."""
    cfg = config(models, "zero_order", 3, params={"neighbours": 2}, options={**options, "previews": "none"})
    if sampler is None:
        with pytest.raises(ConfigError, match="^zero_order searches near a pivot noise and needs a deterministic "
                                              r"sampler \(scheduler=ddim with eta=0, or scheduler=flow_ode\), not "):
            list(execute(cfg, store))
        assert store.list_runs() == []
        return
    end = list(execute(cfg, store))[-1]
    assert end["status"] == "finished", end["error"]
    used = end["extras"]["sampling"]
    assert (used["scheduler"], used["eta"]) == sampler


def test_zero_order_neighbours_stay_near_the_pivot_on_the_digits(digits):
    """On the sampler zero-order gets, a neighbour's final image is nearer the pivot's than an independent noise's
    (with DDIM eta 1 it is not: 0.72 against 0.74 in mean cosine, while eta 0 gives 0.97 against 0.57)."""
    from backends.image import digits
    from strategies.core import CancelToken
    cfg = RunConfig(domain="image", model="tiny-digits", verifier="digit-classifier", judge="digit-judge",
                    strategy="zero_order", budget=4, problem_id="test:3", options={"previews": "none"})
    run = digits.prepare(cfg, uses_verifier=True)

    def cosine(a, b) -> float:
        return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))

    near, far = [], []
    for seed in range(4):
        sp = run.space(dataclasses.replace(cfg, seed=seed), CancelToken())
        root = sp.initial(1)[0]
        pivot_noise = sp.noises(root, 1)[0]
        pivot = sp.complete([pivot_noise])[0].payload.x
        near += [cosine(n.payload.x, pivot) for n in sp.complete(sp.perturb([pivot_noise], 0.95, 4)[0])]
        far += [cosine(n.payload.x, pivot) for n in sp.complete(sp.noises(root, 4))]
    assert sum(near) / len(near) > sum(far) / len(far) + 0.2


def test_the_cli_refuses_zero_order_on_a_stochastic_sampler(tmp_path):
    import os
    import subprocess
    import sys
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TTS_IMAGES_DIR": str(tmp_path / "img")}
    p = subprocess.run([sys.executable, "app.py", "--db", str(tmp_path / "cli.db"), "run", "--domain", "image",
                        "--model", "tiny-digits", "--verifier", "digit-classifier", "--strategy", "zero_order",
                        "--budget", "4", "--option", "eta=1", "--json"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env=env)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == ("error: zero_order searches near a pivot noise and needs a deterministic sampler "
                        "(scheduler=ddim with eta=0, or scheduler=flow_ode), not ddim with eta 1\n")
