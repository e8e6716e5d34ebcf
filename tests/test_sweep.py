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
