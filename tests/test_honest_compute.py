"""A run is charged what it computed, the same whatever ran before it: on the embedded models, the verifier's
counters of a run do not depend on the runs before it in the process, nor on a sweep's order of cells (the
same run twice: tests/test_strategies_embedded.py, every reasoning strategy)."""
from __future__ import annotations

import pytest

from engine.run import RunConfig, execute
from engine.sweep import SweepConfig, run_sweep
from tests.conftest import embedded_models_ready

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(not embedded_models_ready()[0], reason="embedded weights missing")]

COUNTERS = ("prompt_tokens", "generated_tokens", "verifier_tokens", "model_calls", "verifier_calls", "nfe")


def _counters(store, strategy: str, budget: int = 4, problem: str = "test:5", seed: int = 0, **params) -> dict:
    cfg = RunConfig(model="tiny-arith-s", verifier="tiny-prm", strategy=strategy, budget=budget, seed=seed,
                    problem_id=problem, params=params)
    end = list(execute(cfg, store))[-1]
    assert end["status"] == "finished", end.get("error")
    return {k: end["compute"][k] for k in COUNTERS}


def test_best_of_n_and_weighted_best_of_n_on_the_same_seeds_charge_the_same_verifier_tokens(store):
    # the same samples (same seed) scored by the same verifier: the same verifier work, whichever runs first
    weighted = _counters(store, "weighted_bon", problem="test:7")
    plain = _counters(store, "best_of_n", problem="test:7")
    assert plain["verifier_tokens"] > 0
    assert plain == weighted
    assert _counters(store, "weighted_bon", problem="test:7") == weighted


def test_a_sweep_charges_every_cell_the_same_in_either_order_of_strategies(store):
    def cells(strategies: list[str]) -> dict:
        result = run_sweep(SweepConfig(strategies=strategies, budgets=[4], problems=2, seeds=[0],
                                       params={"beam_search": {"beam_width": 2}}), store)
        return {c["strategy"]: c["compute_total"] for c in result["results"]}

    order = ["best_of_n", "weighted_bon", "beam_search", "particle_filtering"]
    forward, backward = cells(order), cells(order[::-1])
    assert all(forward[s]["verifier_tokens"] > 0 for s in order)
    assert {s: {k: forward[s][k] for k in COUNTERS} for s in order} == \
        {s: {k: backward[s][k] for k in COUNTERS} for s in order}
