"""Each strategy's defining behaviour on a deterministic fake space."""
from __future__ import annotations

import math

import pytest

from strategies import beam_search, best_of_n, dvts, first_finish, greedy, majority_vote, mcts, particle_filtering, weighted_bon
from strategies.core import CancelToken, Cancelled
from strategies.params import build
from strategies.registry import STRATEGIES
from tests.fake_space import FakeSpace, scripted_critic


def run(module, space, **values):
    return [e.to_dict() for e in module.search(space, build(module.Params, values))]


def of(events, kind):
    return [e for e in events if e["type"] == kind]


def test_greedy_takes_one_temperature_zero_chain():
    events = run(greedy, FakeSpace(length=3))
    added = of(events, "NodeAdded")
    assert [a["preview"] for a in added] == ["", "9", "9,9", "9,9,9"]
    assert events[-1]["answer"] == "27"


def test_best_of_n_picks_highest_score():
    space = FakeSpace(length=2, seed=3)
    events = run(best_of_n, space, n=8)
    scored = of(events, "NodeScored")
    assert len(scored) == 8
    best = max(scored, key=lambda s: s["score"])
    assert of(events, "Selected")[0]["id"] == best["id"]
    assert ("complete", 8) in space.calls


def test_weighted_bon_sums_scores_per_answer():
    # Two answers: "1" three times with score 0.3 each (sum 0.9), "2" once with score 0.8.
    from strategies.core import Node
    from strategies.common import weighted_vote

    class S:
        def extract(self, n):
            return n.answer
    nodes = [Node(id=f"a{i}", parent=None, depth=1, preview="", finished=True, answer="1") for i in range(3)]
    nodes.append(Node(id="b", parent=None, depth=1, preview="", finished=True, answer="2"))
    scores = {"a0": 0.3, "a1": 0.3, "a2": 0.3, "b": 0.8}
    assert weighted_vote(S(), nodes, scores).answer == "1"
    assert weighted_vote(S(), nodes, {k: 1.0 for k in scores}).answer == "1"
    events = run(weighted_bon, FakeSpace(length=2), n=6)
    assert of(events, "RunFinished")[0]["answer"] is not None


def test_majority_vote_calls_no_verifier():
    space = FakeSpace(length=1, seed=1)
    events = run(majority_vote, space, n=20)
    assert not of(events, "NodeScored")
    assert not any(c[0] == "score" for c in space.calls)
    cands = of(events, "RunFinished")[0]["candidates"]
    top = max(cands, key=lambda r: r["votes"])
    assert events[-1]["answer"] == top["answer"]


def test_beam_search_keeps_n_over_m_and_expands_m():
    space = FakeSpace(length=4, seed=2)
    events = run(beam_search, space, n=8, beam_width=2)
    extends = [c for c in space.calls if c[0] == "extend"]
    assert extends[0] == ("extend", 1, 8)            # the first step draws N from the root
    assert all(c == ("extend", 4, 2) for c in extends[1:])  # then N/M survivors expand M each
    # At every step exactly N - N/M open candidates are pruned, and the kept ones are the best scored.
    scores = {e["id"]: e["score"] for e in of(events, "NodeScored")}
    pruned = {e["id"] for e in of(events, "NodePruned")}
    parents = {e["id"]: e["parent"] for e in of(events, "NodeAdded")}
    steps = {e["id"]: e["step"] for e in of(events, "NodeAdded")}
    for step in (1, 2, 3):
        layer = [i for i, s in steps.items() if s == step]
        kept = [i for i in layer if i not in pruned]
        assert len(kept) == 4
        assert min(scores[i] for i in kept) >= max(scores[i] for i in layer if i in pruned)
        nxt = [i for i, s in steps.items() if s == step + 1]
        assert {parents[i] for i in nxt} <= set(kept)


def test_beam_width_above_n_is_rejected():
    with pytest.raises(ValueError):
        build(beam_search.Params, {"n": 2, "beam_width": 4})


def test_dvts_keeps_subtrees_apart():
    space = FakeSpace(length=4, seed=5)
    events = run(dvts, space, n=8, beam_width=2)
    parents = {e["id"]: e["parent"] for e in of(events, "NodeAdded")}
    pruned = {p["id"] for p in of(events, "NodePruned")}
    step1 = [e["id"] for e in of(events, "NodeAdded") if e["step"] == 1]
    assert len(step1) == 8  # step 1 costs N too: each subtree samples M first steps (search-and-learn)
    firsts = [i for i in step1 if i not in pruned]
    assert len(firsts) == 4  # N/M subtrees, each keeping the best of its own M
    assert [c for c in space.calls if c[0] == "extend"][0] == ("extend", 1, 8)

    def subtree(i):
        while parents[i] not in (None,) and parents[parents[i]] is not None:
            i = parents[i]
        return i
    finals = [e["id"] for e in of(events, "NodeFinished")]
    survivors = [f for f in finals if f not in pruned]
    assert sorted(subtree(f) for f in survivors) == sorted(firsts)  # one result per subtree
    # after the first step every open head expands M children
    assert [c for c in space.calls if c[0] == "extend"][1] == ("extend", 4, 2)


def test_particle_weights_are_softmax_of_logit():
    ws = particle_filtering.weights([0.5, 0.9], temperature=1.0)
    # logit(0.5)=0, logit(0.9)=ln 9: weights 1/10 and 9/10
    assert ws == pytest.approx([0.1, 0.9])
    assert particle_filtering.ess([0.5, 0.5]) == pytest.approx(2.0)
    sharp = particle_filtering.weights([0.5, 0.9], temperature=0.5)
    assert sharp[1] > ws[1]


def test_particle_resampling_records_ancestry():
    space = FakeSpace(length=3, seed=4)
    events = run(particle_filtering, space, n=6)
    res = of(events, "Resampled")
    assert res, "particle filtering resamples every step"
    added = {e["id"]: e for e in of(events, "NodeAdded")}
    for r in res:
        assert len(r["particles"]) == len(r["ancestors"]) == 6
    # after resampling, each next-step particle's parent is one of the resampled particles
    first = res[0]
    step2 = [e for e in added.values() if e["step"] == 2]
    assert {e["parent"] for e in step2} <= set(first["particles"])


def test_particle_filtering_freeze_sets_finished_aside():
    space = FakeSpace(length=4, seed=4, stop_digits=(9,))
    events = run(particle_filtering, space, n=6, finished="freeze")
    finished = {e["id"] for e in of(events, "NodeAdded") if e["finished"]}
    resampled = {p for r in of(events, "Resampled") for p in r["particles"]}
    assert finished and not finished & resampled  # a finished particle is never resampled under freeze
    assert {c["id"] for c in of(events, "RunFinished")[0]["candidates"]} == finished  # and none is lost


def check_puct_and_backups(events: list[dict], c_puct: float, width: int) -> int:
    """Replay an MCTS run from its events and check every choice and every backup; returns the iterations.

    Each iteration's NodeStats list its path, root first. Before the iteration, every step down that path must
    be the child maximising Q + c_puct * (1 / children) * sqrt(N_parent + 1) / (1 + N_child) among children
    with an unfinished node below them (Q: mean backed-up value, or the PRM score while unvisited); the
    expanded node's ``width`` new children follow, the path ends at the best-scored one, and every node on the
    path gains one visit and the value of that child (or of its rollout, the next node added).
    """
    scores = {e["id"]: e["score"] for e in events if e["type"] == "NodeScored"}
    finished = {e["id"] for e in events if e["type"] == "NodeAdded" and e["finished"]}
    root = next(e["id"] for e in events if e["type"] == "NodeAdded")
    visits: dict[str, int] = {}
    mean: dict[str, float] = {}
    children: dict[str, list[str]] = {}
    exhausted = set(finished)
    iteration: list[dict] = []
    done = 0
    for e in events:
        if e["type"] != "StepDone":
            iteration.append(e)
            continue
        added = [x["id"] for x in iteration if x["type"] == "NodeAdded" and x["id"] != root]
        path = [x["id"] for x in iteration if x["type"] == "NodeStats"]
        kids, rollout = added[:width], added[width:]
        assert path[0] == root and path[-1] in kids
        for parent, chosen in zip(path, path[1:-1]):
            options = [c for c in children[parent] if c not in exhausted]

            def puct(c, parent=parent):
                q = mean[c] if visits.get(c) else scores[c]
                explore = math.sqrt(visits.get(parent, 0) + 1) / (1 + visits.get(c, 0))
                return q + c_puct * (1 / len(children[parent])) * explore
            assert chosen == max(options, key=puct), f"iteration {done + 1}: PUCT picks another child of {parent}"
        children[path[-2]] = kids
        assert path[-1] == max(kids, key=lambda c: scores[c])
        value = scores[rollout[0]] if rollout else scores[path[-1]]
        stats = [x for x in iteration if x["type"] == "NodeStats"]
        for n, st in zip(path, stats):
            old = visits.get(n, 0)
            expected = (mean.get(n, 0.0) * old + value) / (old + 1)
            assert st["visits"] == old + 1 and st["value"] == pytest.approx(expected)
            visits[n], mean[n] = old + 1, st["value"]
        for n in reversed(path[:-1]):
            if all(c in exhausted for c in children.get(n, [None])):
                exhausted.add(n)
        iteration = []
        done += 1
    return done


def test_mcts_picks_by_puct_and_backs_values_up():
    space = FakeSpace(length=4, max_steps=6, seed=6, stop_digits=(0,))
    events = run(mcts, space, iterations=10, width=2, c_puct=1.0, rollout=False)
    assert check_puct_and_backups(events, c_puct=1.0, width=2) == 10
    root = of(events, "NodeAdded")[0]["id"]
    assert [s["visits"] for s in of(events, "NodeStats") if s["id"] == root] == list(range(1, 11))


def test_mcts_rollouts_add_candidates():
    space = FakeSpace(length=4, seed=6)
    events = run(mcts, space, iterations=3, width=2, rollout=True)
    assert sum(1 for c in space.calls if c[0] == "complete") >= 1
    assert of(events, "RunFinished")[0]["candidates"]


def test_first_finish_races_the_samples_and_keeps_the_first_to_end():
    space = FakeSpace(length=6, stop_digits=(7,), seed=3)
    events = run(first_finish, space, n=5)
    assert space.calls == [("race", 5)]  # one batch, nothing step by step
    added = {e["id"]: e for e in of(events, "NodeAdded")}
    pruned = {e["id"] for e in of(events, "NodePruned")}
    (chosen,) = of(events, "Selected")
    samples = [a for a in added.values() if a["parent"] is not None]
    assert len(samples) == 5 and pruned == {a["id"] for a in samples} - {chosen["id"]}
    # every sample was cut at the winner's length; the winner is the first (in batch order) to have ended
    lengths = {a["node_cost"]["generated_tokens"] for a in samples}
    assert lengths == {added[chosen["id"]]["node_cost"]["generated_tokens"]}
    assert chosen["id"] == next(a["id"] for a in samples if a["finished"])
    assert len(of(events, "RunFinished")[0]["candidates"]) == 1


# the image strategies need latents: tests/test_image_strategies.py runs them on a tiny real model
REASONING = [n for n, s in STRATEGIES.items() if "reasoning" in s.domains]
# critics for the strategies that need one: every solution right (they finish at once), or its first step wrong
# (refinement and verified thinking go on, so a Stop has something to stop)
ALL_RIGHT, ALWAYS_FLAGGED = scripted_critic([None]), scripted_critic([1])


@pytest.mark.parametrize("name", REASONING)
def test_cancel_mid_run_stops_at_next_step(name):
    token = CancelToken()
    # a thought longer than the verifying thinkers' probe chunk, so they probe (a step) before it ends
    space = FakeSpace(length=5, max_steps=8, cancel=token, critic=ALWAYS_FLAGGED, think_chunk=64)
    info = STRATEGIES[name]
    calls_at_cancel = None
    try:
        for e in info.search(space, build(info.params_cls, {}), token):
            if e.to_dict()["type"] == "StepDone" and calls_at_cancel is None:
                token.cancel()
                calls_at_cancel = len(space.calls)
    except Cancelled:
        pass
    else:
        # Only a one-step method may finish normally after Stop: it had nothing left to generate.
        assert name in ("best_of_n", "weighted_bon", "majority_vote", "first_finish")
    generated_after = [c for c in space.calls[calls_at_cancel:] if c[0] in ("extend", "complete", "race", "complete_with_logprobs")]
    assert generated_after == []


@pytest.mark.parametrize("name", REASONING)
def test_every_strategy_finishes_with_a_selection(name):
    info = STRATEGIES[name]
    events = [e.to_dict() for e in info.search(FakeSpace(length=3, seed=1, critic=ALL_RIGHT), build(info.params_cls, {}),
                                               None)]
    assert events[-1]["type"] == "RunFinished"
    assert events[-1]["answer"] is not None


def _children_per_step(events) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for e in of(events, "NodeAdded"):
        if e["parent"] is not None:
            out.setdefault(e["step"], []).append(e)
    return out


def test_beam_search_refills_n_generations_per_step_from_survivors():
    # stop digits 6-9 finish the children the scorer likes best, so beams leave the beam every step
    space = FakeSpace(length=6, max_steps=6, seed=0, stop_digits=(6, 7, 8, 9))
    events = run(beam_search, space, n=8, beam_width=2)
    layers = _children_per_step(events)
    scores = {e["id"]: e["score"] for e in of(events, "NodeScored")}
    pruned = {e["id"] for e in of(events, "NodePruned")}
    refilled = False
    for step in sorted(layers)[1:]:
        assert len(layers[step]) == 8, f"step {step} generated {len(layers[step])}, not N"
        survivors = [e for e in layers[step - 1] if not e["finished"] and e["id"] not in pruned]
        kids = {s["id"]: sum(1 for c in layers[step] if c["parent"] == s["id"]) for s in survivors}
        assert sum(kids.values()) == 8
        # shares differ by at most one, and the extra children go to the better-scored survivors
        ranked = sorted(survivors, key=lambda s: -scores[s["id"]])
        assert [kids[s["id"]] for s in ranked] == sorted(kids.values(), reverse=True)
        assert max(kids.values()) - min(kids.values()) <= 1
        refilled |= len(survivors) < 4
    assert refilled, "the fixed seed must make some step keep fewer than N/M open beams"


def test_chains_at_the_step_limit_are_finished_answerless_candidates():
    # Chains need 9 steps to answer but the space stops them at 3: they finish there with no answer,
    # compete as such, and nothing is rolled out past the limit.
    for module, values in ((beam_search, {"n": 4, "beam_width": 2}), (dvts, {"n": 4, "beam_width": 2}),
                           (particle_filtering, {"n": 4})):
        space = FakeSpace(length=9, max_steps=3, seed=1)
        events = run(module, space, **values)
        assert not [c for c in space.calls if c[0] == "complete"], module.__name__
        cands = of(events, "RunFinished")[0]["candidates"]
        assert cands and all(c["answer"] is None for c in cands), module.__name__
        steps = {e["id"]: e["step"] for e in of(events, "NodeAdded")}
        assert {steps[c["id"]] for c in cands} == {3}, module.__name__


def test_dvts_gives_finished_subtrees_share_to_the_open_ones():
    space = FakeSpace(length=6, max_steps=6, seed=2, stop_digits=(9,))
    events = run(dvts, space, n=8, beam_width=2)
    layers = _children_per_step(events)
    pruned = {e["id"] for e in of(events, "NodePruned")}
    fewer_open = False
    for step in sorted(layers)[1:]:
        assert len(layers[step]) == 8, f"step {step} generated {len(layers[step])}, not N"
        heads = {c["parent"] for c in layers[step]}
        # exactly the open subtree heads of the previous step expand, nothing else
        assert heads == {e["id"] for e in layers[step - 1] if e["id"] not in pruned and not e["finished"]}
        fewer_open |= len(heads) < 4
    assert fewer_open, "the fixed seed must finish some subtree before the others"


def test_mcts_budget_is_expansions_not_reselections():
    # Depth-1 nodes have only finished children: an iteration that went back to one would spend nothing.
    space = FakeSpace(length=2, max_steps=6, seed=6)
    events = run(mcts, space, iterations=4, width=3, rollout=False)
    assert [c for c in space.calls if c[0] == "extend"] == [("extend", 1, 3)] * 4
    assert len(of(events, "StepDone")) == 4


def test_mcts_stops_when_the_whole_tree_is_finished():
    # 1 + 2 expandable nodes; c_puct=0 would re-select the best finished leaf forever without the guard
    space = FakeSpace(length=2, max_steps=6, seed=6)
    events = run(mcts, space, iterations=50, width=2, c_puct=0.0, rollout=False)
    assert len([c for c in space.calls if c[0] == "extend"]) == 3
    assert len(of(events, "StepDone")) == 3
    assert events[-1]["type"] == "RunFinished" and len(events[-1]["candidates"]) == 4


def test_particle_filtering_prunes_only_particles_that_were_not_resampled():
    # stop digit 9 finishes the best-weighted particles, so under "compete" a finished particle is copied
    # and appears several times in the population; a copy left out is not a pruned particle.
    space = FakeSpace(length=6, max_steps=6, seed=0, stop_digits=(9,))
    events = run(particle_filtering, space, n=8, finished="compete")
    pruned_since: set[str] = set()
    duplicated_finished = False
    finished = {e["id"] for e in of(events, "NodeAdded") if e["finished"]}
    for e in events:
        if e["type"] == "NodePruned":
            assert e["id"] not in pruned_since, "pruned twice at one step"
            pruned_since.add(e["id"])
        elif e["type"] == "Resampled":
            assert not pruned_since & set(e["particles"]), f"step {e['step']}: resampled particles marked pruned"
            pruned_since = set()
            dups = [p for p in set(e["particles"]) if e["particles"].count(p) > 1 and p in finished]
            duplicated_finished |= bool(dups)
    assert duplicated_finished, "the fixed seed must copy a finished particle"


def test_particle_weights_in_events_are_paired_with_their_particles():
    space = FakeSpace(length=4, max_steps=6, seed=4)
    events = run(particle_filtering, space, n=6, temperature=0.5)
    scores = {e["id"]: e["score"] for e in of(events, "NodeScored")}

    def logit(r):
        return math.log(r / (1 - r))
    for r in of(events, "Resampled"):
        pairs = list(zip(r["particles"], r["ancestors"]))
        for (p, a), (q, b) in zip(pairs, pairs[1:]):
            # w_a / w_b = exp((logit(r_a) - logit(r_b)) / T), read from the scores of the particles drawn
            expected = math.exp((logit(scores[p]) - logit(scores[q])) / 0.5)
            assert r["weights"][a] / r["weights"][b] == pytest.approx(expected)


def test_particle_ess_is_n_for_equal_scores_and_near_one_for_a_dominant_particle():
    flat = run(particle_filtering, FakeSpace(length=3, seed=1, scorer=lambda n: [0.5]), n=6)
    assert [r["ess"] for r in of(flat, "Resampled")] == pytest.approx([6.0] * len(of(flat, "Resampled")))
    peaked = FakeSpace(length=3, seed=1, scorer=lambda n: [0.999 if n.id == "n1" else 0.01])
    first = of(run(particle_filtering, peaked, n=6), "Resampled")[0]
    assert first["ess"] == pytest.approx(1.0, abs=0.01)
    assert first["particles"] == ["n1"] * 6
