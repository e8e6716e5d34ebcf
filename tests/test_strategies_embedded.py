"""Each reasoning strategy once on the embedded models (tiny-arith-s policy, tiny-prm verifier; committed weights,
seconds on a CPU), checked for its defining behaviour on real generations, and the same run twice in one
process charged the same compute, the verifier's included."""
from __future__ import annotations

import math

import pytest

from engine.run import RunConfig, run_events
from strategies.params import build
from strategies.registry import STRATEGIES
from tests.conftest import embedded_models_ready
from tests.test_strategies import check_puct_and_backups

ready, why = embedded_models_ready()
pytestmark = [pytest.mark.skipif(not ready, reason=why), pytest.mark.usefixtures("one_torch_thread")]

REASONING = [n for n, s in STRATEGIES.items() if "reasoning" in s.domains]


def run(strategy: str, budget: int, problem_id: str = "test:17", **params) -> list[dict]:
    info = STRATEGIES[strategy]
    model = "tiny-think" if info.needs_thinking else "tiny-arith-s"  # budget forcing thinks
    # refine, EvoScale, Solve-Detect-Verify and TrimR check with the critic; the others are guided by the PRM
    verifier = "tiny-critic" if info.critic_needed(build(info.params_cls, params)) else "tiny-prm"
    cfg = RunConfig(model=model, verifier=verifier, strategy=strategy, budget=budget,
                    params=params, problem_id=problem_id)
    return list(run_events(cfg))


def of(events, kind):
    return [e for e in events if e["type"] == kind]


def layers(events) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for e in of(events, "NodeAdded"):
        if e["parent"] is not None:
            out.setdefault(e["step"], []).append(e)
    return out


def test_beam_search_keeps_n_over_m_and_expands_m_with_n_generations_per_step():
    events = run("beam_search", 8, beam_width=2)
    scores = {e["id"]: e["score"] for e in of(events, "NodeScored")}
    pruned = {e["id"] for e in of(events, "NodePruned")}
    by_step = layers(events)
    assert len(by_step) >= 3, "the chain must take several steps for the check to mean anything"
    for step, layer in sorted(by_step.items()):
        assert len(layer) == 8  # N generations at every step
        open_ = [e for e in layer if not e["finished"]]
        kept = [e for e in open_ if e["id"] not in pruned]
        assert len(kept) == min(4, len(open_))  # the top N/M open candidates survive...
        if kept and len(kept) < len(open_):
            assert min(scores[e["id"]] for e in kept) >= max(scores[e["id"]] for e in open_ if e not in kept)
        if step + 1 in by_step:  # ...and each expands M (N / survivors) children
            kids = [sum(1 for c in by_step[step + 1] if c["parent"] == k["id"]) for k in kept]
            assert kids == [8 // len(kept)] * len(kept)


def test_dvts_subtrees_each_keep_their_best_of_m():
    events = run("dvts", 8, beam_width=2)
    scores = {e["id"]: e["score"] for e in of(events, "NodeScored")}
    pruned = {e["id"] for e in of(events, "NodePruned")}
    for step, layer in sorted(layers(events).items()):
        assert len(layer) == 8
        siblings: dict[str, list[dict]] = {}
        for e in layer:
            siblings.setdefault(e["parent"], []).append(e)
        if step == 1:  # one root: its 8 first steps are 4 subtrees of 2, in order
            groups = [layer[i:i + 2] for i in range(0, 8, 2)]
        else:
            groups = list(siblings.values())
        for g in groups:
            kept = [e for e in g if e["id"] not in pruned]
            assert len(kept) == 1 and scores[kept[0]["id"]] == max(scores[e["id"]] for e in g)


def test_mcts_picks_the_puct_child_and_backs_values_up():
    events = run("mcts", 16, width=3, c_puct=1.0)
    # 16 iterations, each an expansion that generates (the loop once spent 5 of them here re-selecting finished leaves)
    assert check_puct_and_backups(events, c_puct=1.0, width=3) == 16


def test_particle_filtering_resamples_every_step_by_logit_weights():
    events = run("particle_filtering", 8)
    scores = {e["id"]: e["score"] for e in of(events, "NodeScored")}
    res = of(events, "Resampled")
    assert len(res) == len(layers(events))  # one resampling per step

    def logit(r: float) -> float:
        r = min(max(r, 1e-6), 1 - 1e-6)  # the strategy's documented clipping
        return math.log(r / (1 - r))
    for r in res:
        pairs = list(zip(r["particles"], r["ancestors"]))
        for (p, a), (q, b) in zip(pairs, pairs[1:]):  # T = 1: w_a / w_b = exp(logit(r_a) - logit(r_b))
            assert r["weights"][a] / r["weights"][b] == pytest.approx(math.exp(logit(scores[p]) - logit(scores[q])))


@pytest.mark.parametrize("name", REASONING)
def test_the_same_run_twice_in_one_process_is_charged_the_same(name):
    # a token budget long enough to probe the thought, on a problem whose probes agree early (so TrimR critiques)
    thinks = STRATEGIES[name].budget_scale > 1
    budget, problem = (64, "test:6") if thinks else (4, "test:17")
    first, second = run(name, budget, problem), run(name, budget, problem)
    counters = ("generated_tokens", "prompt_tokens", "model_calls", "verifier_tokens", "verifier_calls")
    assert {k: first[-1]["totals"][k] for k in counters} == {k: second[-1]["totals"][k] for k in counters}
    assert first[-1]["totals"]["generated_tokens"] > 0
    assert (first[-1]["totals"]["verifier_tokens"] > 0) == STRATEGIES[name].uses_verifier
    assert [(e["type"], e.get("id")) for e in first] == [(e["type"], e.get("id")) for e in second]


def test_first_finish_stops_every_sample_where_the_first_ends():
    """Best-of-N at the same N and seed draws the same samples to their ends: first finish's samples are all cut
    at the shortest one's length, its winner is that sample, and the difference is the tokens it saved."""
    ff, bon = run("first_finish", 16, "test:14"), run("best_of_n", 16, "test:14")
    full = [e for e in of(bon, "NodeAdded") if e["parent"] is not None]
    cut = [e for e in of(ff, "NodeAdded") if e["parent"] is not None]
    lengths = [e["node_cost"]["generated_tokens"] for e in full]
    assert len(set(lengths)) > 1  # the samples' lengths differ, so stopping early saves something
    shortest = next(e for e in full if e["node_cost"]["generated_tokens"] == min(lengths))
    assert [e["node_cost"]["generated_tokens"] for e in cut] == [min(lengths)] * 16
    winner = next(e for e in cut if e["id"] == of(ff, "Selected")[0]["id"])
    assert (winner["preview"], winner["answer"], winner["finished"]) == \
        (shortest["preview"], shortest["answer"], True)
    assert sum(e["finished"] for e in cut) == lengths.count(min(lengths))
    assert ff[-1]["totals"]["generated_tokens"] == 16 * min(lengths) < bon[-1]["totals"]["generated_tokens"]
    assert ff[-1]["totals"]["prompt_tokens"] == bon[-1]["totals"]["prompt_tokens"]
