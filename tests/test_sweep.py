"""Sweeps: the result table, unbiased pass@k, and --resume giving the same results as an uninterrupted sweep."""
from __future__ import annotations

import pytest

from engine.limits import Limits
from engine.run import ConfigError
from engine.sweep import SweepConfig, pass_at_k, run_sweep
from strategies.core import CancelToken
from storage import RunStore


def test_pass_at_k_unbiased_estimator():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 5) == 1.0
    assert pass_at_k(10, 1, 1) == pytest.approx(0.1)
    assert pass_at_k(4, 2, 2) == pytest.approx(1 - 1 / 6)


def _config(path, **kw):
    return SweepConfig(model=str(path), verifier="oracle", strategies=["greedy", "best_of_n", "beam_search"],
                       budgets=[1, 2], problems=3, seeds=[0], params={"beam_search": {"beam_width": 2}}, **kw)


def test_sweep_result_shape(tmp_path, random_lm_path):
    store = RunStore(tmp_path / "a.db")
    result = run_sweep(_config(random_lm_path), store, limits=Limits())
    cells = {(r["strategy"], r["budget"]) for r in result["results"]}
    # greedy runs once whatever the budget; beam search cannot run below its width
    assert cells == {("greedy", 1), ("best_of_n", 1), ("best_of_n", 2), ("beam_search", 2)}
    for r in result["results"]:
        assert r["n_problems"] == 3 and 0 <= r["accuracy"] <= 1
        assert set(r["by_difficulty"]) == {"1", "2", "3"}
        assert r["compute"]["generated_tokens"] > 0
    assert set(result["oracle"]["pass@k"]) == {"1", "2"}
    assert store.get_sweep(result["config"]["sweep_id"])["status"] == "finished"


def test_seeds_average_over_runs_but_count_problems_once(tmp_path, random_lm_path):
    cfg = _config(random_lm_path)
    cfg.seeds, cfg.strategies = [0, 1], ["best_of_n"]
    result = run_sweep(cfg, RunStore(tmp_path / "s.db"), limits=Limits())
    for r in result["results"]:
        assert (r["n_problems"], r["n_runs"]) == (3, 6)
    assert (result["oracle"]["n_problems"], result["oracle"]["n_runs"]) == (3, 6)


def test_resume_continues_a_stopped_sweep_with_identical_results(tmp_path, random_lm_path):
    reference = run_sweep(_config(random_lm_path), RunStore(tmp_path / "ref.db"), limits=Limits())
    store = RunStore(tmp_path / "b.db")
    token = CancelToken()

    def stop_after_three(done, total):
        if done >= 3:
            token.cancel()
    partial = run_sweep(_config(random_lm_path), store, cancel=token, progress=stop_after_three, limits=Limits())
    assert partial["status"] == "cancelled"
    resumed = run_sweep(_config(random_lm_path, resume=True), store, limits=Limits())
    assert sum(r["reused_runs"] for r in resumed["results"]) >= 3
    strip = lambda res: [(r["strategy"], r["budget"], r["accuracy"], r["by_difficulty"],
                          r["compute"]["generated_tokens"]) for r in res["results"]]
    assert strip(resumed) == strip(reference)
    assert resumed["oracle"]["pass@k"] == reference["oracle"]["pass@k"]
    # every run reused: the wall times are the ones the runs took, not the milliseconds of reading them back
    again = run_sweep(_config(random_lm_path, resume=True), store, limits=Limits())
    assert all(r["reused_runs"] == r["n_runs"] for r in again["results"])
    assert [r["wall_s"] for r in again["results"]] == pytest.approx([r["wall_s"] for r in resumed["results"]])
    assert all(r["wall_s"] > 0 for r in again["results"])


def test_sweep_caps(tmp_path, random_lm_path):
    with pytest.raises(ConfigError, match="cap"):
        run_sweep(_config(random_lm_path), RunStore(tmp_path / "c.db"), limits=Limits(max_sweep_runs=2))


def test_resume_does_not_reuse_runs_made_with_another_aggregation(tmp_path, random_lm_path):
    store = RunStore(tmp_path / "d.db")
    cfg = _config(random_lm_path)
    cfg.strategies, cfg.budgets, cfg.problems = ["best_of_n"], [2], 1
    run_sweep(cfg, store, limits=Limits())
    again = _config(random_lm_path, resume=True)
    again.strategies, again.budgets, again.problems = ["best_of_n"], [2], 1
    assert sum(r["reused_runs"] for r in run_sweep(again, store, limits=Limits())["results"]) == 1
    again.aggregation = "min"
    assert sum(r["reused_runs"] for r in run_sweep(again, store, limits=Limits())["results"]) == 0


# ---- the ceiling, per-level compute and the time estimate (issue 18) ------------------------------

def _embedded_ready() -> None:
    from tests.conftest import embedded_models_ready
    ok, why = embedded_models_ready()
    if not ok:
        pytest.skip(f"embedded models not available ({why})")


def test_the_ceiling_comes_from_the_samples_of_the_strategy_it_bounds(tmp_path):
    """pass@N at every budget is computed from best-of-N's own samples at that budget: never below best-of-N's
    accuracy, equal to it at N = 1 (one sample, nothing to choose); a sweep with no sampling strategy gets the
    unbiased estimate from oracle runs, and says so."""
    _embedded_ready()
    store = RunStore(tmp_path / "c.db")
    cfg = SweepConfig(model="tiny-arith-s", verifier="tiny-prm", strategies=["greedy", "best_of_n"], budgets=[1, 4],
                      problems=8, seeds=[0])
    result = run_sweep(cfg, store, limits=Limits())
    oracle, cells = result["oracle"], {(r["strategy"], r["budget"]): r for r in result["results"]}
    assert oracle["source"] == "best_of_n" and oracle["estimated"] == []
    assert oracle["pass@k"]["1"] == cells[("best_of_n", 1)]["accuracy"]
    assert oracle["pass@k"]["4"] >= cells[("best_of_n", 4)]["accuracy"]
    # the same number, recounted from the stored runs: the share of best-of-4 runs with a right candidate
    runs = [store.get_run(r["id"]) for r in store.list_runs(limit=100)]
    bon4 = [r for r in runs if r["strategy"] == "best_of_n" and r["budget"] == 4]
    assert len(bon4) == 8
    from backends.embedded import arith
    any_right = [any(arith.is_correct(arith.problem_at("test", int(r["problem_uid"].split(":")[1])), c["answer"])
                     for c in r["result"]["candidates"]) for r in bon4]
    assert oracle["pass@k"]["4"] == pytest.approx(sum(any_right) / len(any_right))

    no_sampling = run_sweep(SweepConfig(model="tiny-arith-s", verifier="tiny-prm", strategies=["greedy"],
                                        budgets=[1, 4], problems=2, seeds=[0]), store, limits=Limits())
    assert no_sampling["oracle"]["estimated"] == ["1", "4"]
    assert no_sampling["oracle"]["source"] == "majority_vote (oracle runs)"


def test_each_cell_reports_the_compute_of_each_levels_problems(tmp_path):
    """A level's compute is the mean over that level's runs (not the all-problems mean repeated): the levels'
    means weighted by their runs average back to the cell's, and the compute-optimal table shows them."""
    _embedded_ready()
    from ui.figures.sweeps import compute_optimal_table
    cfg = SweepConfig(model="tiny-arith-s", verifier="tiny-prm", strategies=["greedy", "best_of_n"], budgets=[2],
                      problems=10, seeds=[0])
    result = run_sweep(cfg, RunStore(tmp_path / "d.db"), limits=Limits())
    from backends.embedded import arith
    sizes: dict[str, int] = {}
    for i in range(10):
        lv = str(arith.problem_at("test", i).difficulty)
        sizes[lv] = sizes.get(lv, 0) + 1
    for cell in result["results"]:
        per = cell["compute_by_difficulty"]
        assert set(per) == set(sizes)
        weighted = sum(per[lv]["tokens"] * n for lv, n in sizes.items()) / 10
        assert weighted == pytest.approx(cell["compute"]["tokens"])
        assert len({round(per[lv]["tokens"]) for lv in per}) > 1  # harder chains cost more tokens
    rows = compute_optimal_table(result)
    cells = {r["strategy"]: r for r in result["results"]}
    for lv, budget, best, _, tokens, *_ in rows:
        if lv != "all" and best in cells:
            assert tokens == round(cells[best]["compute_by_difficulty"][lv]["tokens"])


def test_the_time_left_is_each_cells_measured_time_per_run():
    from engine.sweep import SweepClock
    clock = SweepClock()
    clock.plan([("greedy", 1)] * 4 + [("beam_search", 16)] * 4 + [("best_of_n", 1)] * 2 + [("best_of_n", 4)] * 2)
    assert clock.left_s() is None  # nothing measured yet
    clock.record(("greedy", 1), 1.0)
    clock.record(("greedy", 1), 1.0)
    clock.record(("beam_search", 16), 10.0)
    clock.record(("best_of_n", 1), 2.0)
    clock.record(("greedy", 1), None)  # reused from the store: done, but it says nothing about the time a run takes
    # greedy 1 left at 1 s, beam 3 at 10 s, best-of-1 1 at 2 s, best-of-4 2 unmeasured at 2 s per unit of N x 4
    assert clock.left_s() == pytest.approx(1 * 1.0 + 3 * 10.0 + 1 * 2.0 + 2 * 8.0)
    # the elapsed-time average (15 s over 5 runs done, 7 to go: 21 s) is what the page used to say
    assert clock.left_s() != pytest.approx(15.0 / 5 * 7)


def test_the_sweep_tells_its_clock_every_run(tmp_path, random_lm_path):
    from engine.sweep import SweepClock
    clock = SweepClock()
    seen = []
    run_sweep(_config(random_lm_path), RunStore(tmp_path / "t.db"), limits=Limits(), clock=clock,
              progress=lambda d, t: seen.append(clock.left_s()))
    assert all(n == 0 for n in clock.left.values()) and seen[-1] == 0.0
    assert sum(len(v) for v in clock.spent.values()) == len(seen) and all(s is not None for s in seen)
