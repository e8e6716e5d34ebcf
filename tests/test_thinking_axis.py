"""The thinking-budget axis of sweeps: budget forcing on tiny-think over thinking budgets x parallel samples (cells,
stored, the tokens spent), the pairing of N samples of B with one sample of N x B, its figures, and Explore's budget
choices for a token budget."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine.limits import Limits
from engine.run import ConfigError
from engine.saturation import series, sweep_saturation
from engine.sweep import SweepConfig, plan, run_sweep, validate
from engine.thinking import equal_token_pairs
from storage import RunStore
from ui.figures.thinking_sweeps import NO_AXIS, parallel_sequential_figure, thinking_budget_figure
from ui.registry import budget_widget
from ui.scaling import sweep_label

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _thinking(**kw) -> SweepConfig:
    base = dict(model="tiny-think", verifier=None, strategies=["budget_forcing"], thinking_budgets=[4, 8],
                samples=[1, 2], problems=2, seeds=[0])
    return SweepConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("axis") / "axis.db")
    return store, run_sweep(_thinking(), store, limits=Limits())


def test_a_thinking_sweep_has_a_cell_per_budget_and_sample_count_and_is_stored(swept):
    store, result = swept
    cells = {(c["strategy"], c["budget"], c["samples"]): c for c in result["results"]}
    assert set(cells) == {("budget_forcing", b, k) for b in (4, 8) for k in (1, 2)}
    stored = store.get_sweep(result["config"]["sweep_id"])
    assert stored["status"] == "finished" and stored["result"]["results"] == result["results"]
    assert stored["config"]["thinking_budgets"] == [4, 8] and stored["config"]["samples"] == [1, 2]
    runs = store.list_runs(sweep_id=result["config"]["sweep_id"], limit=100)
    assert len(runs) == 8
    assert {(r["budget"], r["config"]["params"]["n"]) for r in runs} == {(4, 1), (4, 2), (8, 1), (8, 2)}
    # no strategy here counts samples, so there is no pass@N to draw, and no oracle runs were made for one
    assert result["oracle"]["pass@k"] == {} and result["oracle"]["source"].startswith("none")


def test_the_axis_carries_the_thinking_tokens_spent_within_each_allowance(swept):
    _, result = swept
    for c in result["results"]:
        thinking, generated = c["compute"]["thinking_tokens"], c["compute"]["generated_tokens"]
        assert 0 < thinking <= c["samples"] * c["budget"]  # per problem: every sample capped at B
        assert generated > thinking  # each sample writes its answer after the thought
    by = {(c["budget"], c["samples"]): c["compute"]["thinking_tokens"] for c in result["results"]}
    assert by[(4, 2)] > by[(4, 1)]  # two samples think twice


def test_resume_reuses_each_cells_own_runs(swept):
    store, result = swept
    again = run_sweep(_thinking(resume=True), store, limits=Limits())
    assert all(c["reused_runs"] == c["n_runs"] == 2 for c in again["results"])
    strip = lambda res: [(c["budget"], c["samples"], c["accuracy"], c["compute"]["thinking_tokens"])
                         for c in res["results"]]
    assert strip(again) == strip(result)


def test_thinking_budgets_and_samples_are_checked():
    limits = Limits()
    for config, message in (
            (_thinking(strategies=["majority_vote"]), "thinking budgets need a strategy"),
            (_thinking(thinking_budgets=[4097]), "thinking budgets must be whole numbers from 1 to 4096"),
            (_thinking(samples=[65]), "parallel samples must be whole numbers from 1 to 64"),
            (_thinking(strategies=["majority_vote"], thinking_budgets=[]), "parallel samples need"),
            (_thinking(params={"budget_forcing": {"n": 4}}), "not both")):
        with pytest.raises(ConfigError, match=message):
            validate(config, limits)
    with pytest.raises(ConfigError, match="this sweep needs 12 runs"):  # 2 budgets x 3 sample counts x 2 problems
        validate(_thinking(samples=[1, 2, 4]), Limits(max_sweep_runs=11))


def test_a_mixed_sweep_runs_budget_forcing_on_the_thinking_axis_and_the_rest_on_n():
    cfg = _thinking(strategies=["majority_vote", "budget_forcing"], budgets=[1, 4], thinking_budgets=[256])
    assert plan(cfg) == [("majority_vote", 1, None), ("majority_vote", 4, None), ("budget_forcing", 256, 1),
                         ("budget_forcing", 256, 2)]
    validate(cfg, Limits())  # 256 is over the cap of budgets N (64), not over the thinking cap
    # without thinking budgets budget forcing runs at the budgets, as sweeps did before the axis
    old = SweepConfig(model="tiny-think", strategies=["budget_forcing"], budgets=[16],
                      params={"budget_forcing": {"n": "4"}})
    assert plan(old) == [("budget_forcing", 16, 4)]


def _cell(strategy, budget, samples, acc, thinking, generated=None):
    return {"strategy": strategy, "budget": budget, "samples": samples, "accuracy": acc, "n_problems": 10,
            "compute": {"thinking_tokens": thinking, "generated_tokens": generated or 2 * thinking,
                        "tokens": 3 * thinking}}


RESULT = {"results": [_cell("budget_forcing", 16, 1, 0.5, 15), _cell("budget_forcing", 64, 1, 0.56, 46),
                      _cell("budget_forcing", 256, 1, 0.6, 70), _cell("budget_forcing", 16, 4, 0.58, 62),
                      _cell("budget_forcing", 64, 4, 0.64, 180), _cell("budget_forcing", 32, 2, 0.55, 50),
                      _cell("other", 64, 1, 0.9, 40), _cell("other", 16, 2, 0.1, 30)],
          "oracle": {"pass@k": {}}}


def test_pairs_join_n_samples_of_b_with_one_sample_of_n_times_b():
    pairs = equal_token_pairs(RESULT)
    got = [(p.strategy, p.samples, p.budget, p.allowance, p.parallel["accuracy"], p.sequential["accuracy"])
           for p in pairs]
    # 2 x 32 and 4 x 16 against 1 x 64, 4 x 64 against 1 x 256; "other" has no 1 x 32, and never pairs with
    # budget forcing's cells
    assert got == [("budget_forcing", 2, 32, 64, 0.55, 0.56), ("budget_forcing", 4, 16, 64, 0.58, 0.56),
                   ("budget_forcing", 4, 64, 256, 0.64, 0.6)]
    assert pairs[1].to_dict()["parallel"] == {"accuracy": 0.58, "thinking_tokens": 62.0, "generated_tokens": 124.0}
    assert equal_token_pairs({"results": [{"strategy": "best_of_n", "budget": 4, "accuracy": 1.0}]}) == []


def test_the_pairs_figure_joins_each_pair_at_the_tokens_spent():
    fig = parallel_sequential_figure(RESULT)
    joins = [t for t in fig.data if t.legendgroup == "pairs"]
    assert [(list(t.x), list(t.y)) for t in joins] == [([50.0, 46.0], [0.55, 0.56]), ([62.0, 46.0], [0.58, 0.56]),
                                                         ([180.0, 70.0], [0.64, 0.6])]
    assert "parallel: 4 samples of 16" in joins[1].hovertext[0] and "one sample of 64" in joins[1].hovertext[0]
    assert fig.layout.xaxis.title.text == "thinking tokens spent per problem"


def test_the_thinking_budget_figure_is_per_sample_with_each_lines_saturation_point():
    fig = thinking_budget_figure(RESULT)
    lines = {t.name: t for t in fig.data if t.mode == "lines+markers+text"}
    one = lines["budget_forcing × 1 sample"]
    assert list(one.x) == [15, 46, 70] and list(one.text) == ["B=16", "B=64", "B=256"]
    assert list(lines["budget_forcing × 4 samples"].x) == [15.5, 45.0]  # thinking per problem / 4 samples
    fit = sweep_saturation(RESULT)["budget_forcing n=1"]
    assert fit.ok and fit.n_budgets == 3
    diamonds = [t for t in fig.data if t.name and "saturates at B*" in t.name]
    assert [t.name for t in diamonds] == [f"budget_forcing × 1 sample: saturates at B*={fit.budget}"]
    assert fig.layout.xaxis.title.text == "thinking tokens spent per sample"


def test_sweeps_without_the_axis_still_draw_and_say_so():
    old = {"results": [{"strategy": "best_of_n", "budget": 4, "accuracy": 0.5, "compute": {"tokens": 100}}]}
    assert series(old["results"][0]) == "best_of_n"
    for fig in (thinking_budget_figure(old), parallel_sequential_figure(None)):
        assert fig.layout.annotations[0].text.replace("<br>", " ") == NO_AXIS
    stored = {"id": "s1", "status": "finished", "config": {"strategies": ["best_of_n"], "budgets": [1, 4],
                                                            "problems": 10}}
    assert sweep_label(stored) == "s1 · finished · best_of_n · budgets 1,4 · 10 problems"
    stored["config"].update(strategies=["budget_forcing"], thinking_budgets=[8, 64], samples=[1, 4])
    assert "budgets 1,4 · thinking budgets 8,64 · samples 1,4 ·" in sweep_label(stored)


def test_explores_budget_dropdown_offers_token_budgets_up_to_the_cap():
    tokens = budget_widget("budget_forcing", 64)
    assert tokens.choices == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096] and tokens.cap == 4096
    assert "thinking tokens" in tokens.label
    assert budget_widget("best_of_n", 64).choices[-1] == 64 and budget_widget("best_of_n", 64).cap == 64
    assert budget_widget("budget_forcing", 16).choices[-1] == 1024  # a Space's cap of 16, x 64
    assert budget_widget("budget_forcing", 20).choices[-2:] == [1024, 1280]  # the cap itself is offered


def test_the_cli_refuses_a_thinking_axis_it_cannot_run_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "app.py", "sweep", "--model", "tiny-think", "--strategies", "budget_forcing",
                           "--thinking-budgets", "8,32", "--samples", "1,4", "--param", "budget_forcing.n=2",
                           "--db", str(tmp_path / "cli.db")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == ("error: give budget_forcing's n by the samples axis or by its "
                                                     "parameter, not both")


def test_the_cli_table_shows_each_sample_count_its_thinking_tokens_and_the_pairs():
    from app import format_table
    from engine.saturation import sweep_saturation as fits
    result = {"results": [{**c, "by_difficulty": {}} for c in RESULT["results"]],
              "oracle": {"pass@k": {}, "source": "none (no strategy here counts samples)"},
              "saturation": {k: f.to_dict() for k, f in fits(RESULT).items()}}
    text = format_table(result)
    assert "budget_forcing n=4    16   0.58" in text and text.splitlines()[0].endswith("think")
    assert "oracle pass@k: none (no strategy here counts samples)" in text
    assert "saturation budget_forcing n=1: B* = " in text
    assert ("budget_forcing at 64 thinking tokens per problem: 4 x 16 (vote) 0.58, 62 thinking / 124 generated "
            "tokens; 1 x 64 0.56, 46 / 92") in text
