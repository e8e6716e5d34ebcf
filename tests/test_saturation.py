"""The saturation point (TTSPM fit, engine/saturation.py) and difficulty as the compute-optimal paper bins it
(pass@1 quintiles, engine/sweep.py), in Scaling's figure and compute-optimal table."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.limits import Limits
from engine.saturation import DEFAULT_GAIN, fit_saturation, saturation_budget, sweep_saturation, ttspm
from engine.sweep import SweepConfig, pass1_levels, run_sweep
from storage import RunStore
from ui.figures.sweeps import compute_optimal_table, optimal_headers, scaling_figure

BUDGETS = [1, 2, 4, 8, 16, 32, 64]


def test_a_synthetic_curve_gives_back_its_parameters_and_known_saturation_point():
    acc = ttspm(np.array(BUDGETS, float), 0.8, 0.2)
    fit = fit_saturation(BUDGETS, list(acc))
    assert fit.ok and fit.f_max == pytest.approx(0.8, abs=1e-4) and fit.p == pytest.approx(0.2, abs=1e-4)
    # ΔF(N) = 0.8 * 0.2 * 0.8^N first drops below 0.001 at N = 23 (0.00094; at 22 it is 0.00118)
    assert fit.budget == 23 and not fit.extrapolated
    gain = lambda n: 0.8 * 0.2 * 0.8 ** n  # noqa: E731
    assert gain(fit.budget) < DEFAULT_GAIN <= gain(fit.budget - 1)


def test_a_larger_stated_gain_saturates_earlier():
    assert saturation_budget(0.8, 0.2, gain=0.01) < saturation_budget(0.8, 0.2, gain=0.001)
    assert saturation_budget(0.8, 0.2, gain=0.01) == math.ceil(math.log(0.01 / 0.16) / math.log(0.8))


def test_noisy_points_still_fit_near_the_truth():
    rng = np.random.default_rng(0)
    acc = ttspm(np.array(BUDGETS, float), 0.7, 0.3) + rng.normal(0, 0.005, len(BUDGETS))
    fit = fit_saturation(BUDGETS, list(acc))
    assert fit.ok and abs(fit.budget - saturation_budget(0.7, 0.3)) <= 2 and fit.rmse < 0.02


def test_too_few_budgets_say_so_and_never_raise():
    for budgets, accs in (([], []), ([1], [0.4]), ([1, 4], [0.4, 0.5]), ([4, 4, 4], [0.4, 0.5, 0.6]),
                          ([1, 4, None], [0.4, 0.5, 0.6]), ([1, 4, 16], [0.4, None, 0.6])):
        fit = fit_saturation(budgets, accs)
        assert fit.status == "not enough budgets" and fit.budget is None
        assert "not enough budgets" in fit.message and "needs 3" in fit.message


def test_flat_falling_and_zero_curves_fit_without_error():
    for accs in ([0.5, 0.4, 0.3], [0.0, 0.0, 0.0], [0.6, 0.6, 0.6]):
        fit = fit_saturation([1, 4, 16], accs)
        assert fit.ok and fit.budget == 1  # nothing to gain past the first unit


def test_a_curve_still_climbing_at_its_largest_budget_is_flagged_extrapolated():
    acc = ttspm(np.array([1, 2, 4], float), 0.9, 0.05)
    fit = fit_saturation([1, 2, 4], list(acc))
    assert fit.ok and fit.budget > 4 and fit.extrapolated


def test_pass1_levels_are_quintiles_with_ties_sharing_a_level_and_the_hardest_at_five():
    counts = [(str(i), 10, i) for i in range(10)]  # pass@1 0.0 .. 0.9
    levels = pass1_levels(counts)
    assert [levels[str(i)] for i in range(9, -1, -1)] == ["1", "1", "2", "2", "3", "3", "4", "4", "5", "5"]
    tied = pass1_levels([("a", 4, 4), ("b", 4, 4), ("c", 4, 2)] + [(f"z{i}", 4, 0) for i in range(7)])
    assert tied["a"] == tied["b"] == "1" and tied["c"] == "2"
    assert {tied[f"z{i}"] for i in range(7)} == {"5"}  # many unsolved problems are all the hardest level
    # two seeds of one problem average (1/4 and 3/4 make 0.5); with two problems the easier is the median
    assert pass1_levels([("p", 4, 1), ("p", 4, 3), ("q", 4, 4)]) == {"q": "3", "p": "5"}


def test_a_sweep_bins_by_pass1_from_its_own_samples(tmp_path):
    cfg = SweepConfig(model="tiny-arith-s", verifier="oracle", strategies=["greedy", "best_of_n"],
                      budgets=[1, 2], problems=5, seeds=[0])
    result = run_sweep(cfg, RunStore(tmp_path / "p.db"), limits=Limits())
    p1 = result["pass1"]
    assert p1["source"] == "best_of_n at budget 2" and len(p1["by_problem"]) == 5
    assert set(p1["level_of"]) == set(p1["by_problem"])
    for cell in result["results"]:
        levels = cell["by_pass1"]
        assert set(levels) <= {"1", "2", "3", "4", "5"}
        # the levels partition the problems: their accuracies average back to the cell's
        sizes = {lv: sum(1 for v in p1["level_of"].values() if v == lv) for lv in levels}
        assert sum(levels[lv] * sizes[lv] for lv in levels) / 5 == pytest.approx(cell["accuracy"])
    table = compute_optimal_table(result, binning="pass1")
    assert {r[0] for r in table} == {"all"} | set(p1["level_of"].values())
    fig = scaling_figure(result, binning="pass1")
    assert any("pass@1 level" in a.text for a in fig.layout.annotations)
    assert optimal_headers("eflops", "pass1")[0] == "pass@1 level"


SWEEP = {"results": [
    {"strategy": s, "budget": b, "accuracy": float(ttspm(np.array(b, float), f, p)), "n_problems": 10,
     "by_difficulty": {"1": float(ttspm(np.array(b, float), 1.0, 0.9)), "2": float(ttspm(np.array(b, float), f, p))},
     "compute": {"tokens": 100.0 * b * (2 if s == "beam" else 1)}}
    for s, f, p in (("bon", 0.6, 0.4), ("beam", 0.8, 0.2)) for b in (1, 4, 16, 64)
] + [{"strategy": "greedy", "budget": 1, "accuracy": 0.4, "n_problems": 10, "by_difficulty": {"1": 0.9, "2": 0.3},
      "compute": {"tokens": 90.0}}], "oracle": {"pass@k": {}}}


def test_scaling_draws_each_fitted_strategys_saturation_point_and_the_table_reports_it():
    fits = sweep_saturation(SWEEP)
    assert fits["bon"].budget == saturation_budget(0.6, 0.4) and fits["beam"].budget == 23
    assert fits["greedy"].status == "not enough budgets"
    fig = scaling_figure(SWEEP)
    marks = {t.name: t for t in fig.data if "saturation" in (t.name or "")}
    assert set(marks) == {"bon saturation N*=%d" % fits["bon"].budget, "beam saturation N*=23"}
    beam = marks["beam saturation N*=23"]
    # on the tokens axis the point sits at the strategy's cost at N* (200 tokens per unit of N here)
    assert float(beam.x[0]) == pytest.approx(200.0 * 23, rel=1e-6)
    assert float(beam.y[0]) == pytest.approx(float(ttspm(np.array(23.0), 0.8, 0.2)), abs=1e-4)
    table = compute_optimal_table(SWEEP)
    by = {(r[0], r[1]): r for r in table}
    assert by[("all", 64)][2] == "beam" and by[("all", 64)][6] == "23"
    assert by[("all", 4)][2] == "bon" and by[("all", 4)][6] == str(fits["bon"].budget)
    assert by[("all", 1)][2] == "greedy" and by[("all", 1)][6] == "not enough budgets"
    # per level the winner's own curve on that level is fitted; at level 1 both curves reach the same accuracy by
    # N = 16, a tie, which names no winner and so no saturation point
    assert by[("2", 16)][6] == str(sweep_saturation(SWEEP, level="2")[by[("2", 16)][2]].budget)
    assert by[("1", 16)][2] == "tie: bon, beam" and by[("1", 16)][6] == ""
