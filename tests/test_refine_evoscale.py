"""Refine and EvoScale: their defining behaviour on the fake space with scripted verdicts (exact events), the
refinement view folded from them, then once each on tiny-arith-s with the oracle's critique."""
from __future__ import annotations

import pytest

from engine.run import RunConfig, run_events
from strategies import evoscale, refine
from strategies.params import build
from tests.fake_space import FakeSpace, scripted_critic
from ui.fold import fold


def run(module, space, **values):
    return [e.to_dict() for e in module.search(space, build(module.Params, values))]


def of(events, kind):
    return [e for e in events if e["type"] == kind]


def parents(events):
    return {e["id"]: e["parent"] for e in of(events, "NodeAdded")}


def ancestor(events, nid, depth):
    steps = {e["id"]: e["step"] for e in of(events, "NodeAdded")}
    up = parents(events)
    while steps[nid] > depth:
        nid = up[nid]
    return nid


def test_refine_revises_from_the_flagged_step_and_stops_when_the_critique_accepts():
    space = FakeSpace(length=3, critic=scripted_critic([2], [None]))
    events = run(refine, space, rounds=4)
    attempts = of(events, "Attempt")
    assert [(a["chain"], a["round"], a["revises"], a["kept"]) for a in attempts] == [
        (0, 0, None, 0), (0, 1, attempts[0]["id"], 1)]
    # the revision grew from the first attempt's own first step: the step before the flagged one is kept
    first, second = attempts[0]["id"], attempts[1]["id"]
    assert ancestor(events, second, 1) == ancestor(events, first, 1)
    assert ancestor(events, second, 2) != ancestor(events, first, 2)
    assert [(c["id"], c["verdicts"], c["score"]) for c in of(events, "Critiqued")] == [
        (first, [2], 0.0), (second, [None], 1.0)]
    done = events[-1]
    assert done["node_id"] == second and done["stats"] == {"attempts": 2, "accepted": 1}
    assert len(of(events, "StepDone")) == 2


def test_refine_uses_up_its_rounds_and_keeps_the_latest_of_equal_scores():
    space = FakeSpace(length=3, critic=scripted_critic([1]))
    events = run(refine, space, rounds=3)
    attempts = of(events, "Attempt")
    assert [(a["round"], a["kept"]) for a in attempts] == [(0, 0), (1, 0), (2, 0)]  # step 1 flagged: from the root
    assert len(of(events, "Critiqued")) == 3
    assert events[-1]["node_id"] == attempts[-1]["id"] and events[-1]["stats"]["accepted"] == 0


def test_refine_votes_its_critiques():
    # two of three flag step 3: revise from there; the next attempt two of three accept
    space = FakeSpace(length=4, critic=scripted_critic([None, 3, 3], [None, None, 2]))
    events = run(refine, space, rounds=5, critiques=3)
    attempts = of(events, "Attempt")
    assert [(a["round"], a["kept"]) for a in attempts] == [(0, 0), (1, 2)]
    assert [c["score"] for c in of(events, "Critiqued")] == [pytest.approx(1 / 3), pytest.approx(2 / 3)]
    assert ("critique", 1, 3) in space.calls


def test_refine_chains_revise_on_their_own_and_vote():
    space = FakeSpace(length=2, critic=scripted_critic([None], [1], [None]))
    events = run(refine, space, rounds=3, chains=2)
    attempts = of(events, "Attempt")
    assert [(a["chain"], a["round"]) for a in attempts] == [(0, 0), (1, 0), (1, 1)]
    # the first round critiques both chains in one call, the second only the revised one
    assert [c for c in space.calls if c[0] == "critique"] == [("critique", 2, 1), ("critique", 1, 1)]
    assert events[-1]["stats"] == {"attempts": 3, "accepted": 2}


def test_refine_without_a_critic_is_refused_before_it_generates():
    space = FakeSpace()
    with pytest.raises(ValueError, match="critiques"):
        run(refine, space)
    assert not [c for c in space.calls if c[0] == "extend"]


def test_evoscale_keeps_the_best_and_regenerates_the_rest_from_their_flagged_step():
    # generation 0: every candidate flagged, the first at step 3; their children are flagged too
    space = FakeSpace(length=4, critic=scripted_critic([3], [2], [1], [3], [1]))
    events = run(evoscale, space, n=4, generations=3, keep=1)
    attempts = of(events, "Attempt")
    gen0 = [a["id"] for a in attempts if a["round"] == 0]
    assert len(gen0) == 4
    later = [(a["round"], a["revises"], a["kept"]) for a in attempts if a["round"] > 0]
    # the kept parent is the first (all score 0; ties to the earlier); children keep its steps 1-2
    assert later == [(1, gen0[0], 2)] * 3 + [(2, gen0[0], 2)] * 3
    assert events[-1]["stats"] == {"candidates": 10, "generations": 3}
    assert len(of(events, "Critiqued")) == 10 and len(of(events, "StepDone")) == 3


def test_evoscale_stops_once_its_best_is_accepted():
    space = FakeSpace(length=3, critic=scripted_critic([2], [None], [2], [2]))
    events = run(evoscale, space, n=4, generations=5, keep=2)
    gen0 = [a["id"] for a in of(events, "Attempt")]
    assert len(gen0) == 4 and events[-1]["node_id"] == gen0[1]
    assert events[-1]["stats"] == {"candidates": 4, "generations": 1}


def test_evoscale_mutates_an_accepted_parent_from_a_seeded_step():
    # 2 of 3 critiques accept every candidate: score 2/3, nothing flagged, so a child restarts at a drawn step
    space = FakeSpace(length=4, seed=5, critic=scripted_critic([None, None, 2]))
    events = run(evoscale, space, n=3, generations=2, keep=1, critiques=3)
    kept = [a["kept"] for a in of(events, "Attempt") if a["round"] == 1]
    assert len(kept) == 2 and all(0 <= k <= 3 for k in kept)
    again = run(evoscale, FakeSpace(length=4, seed=5, critic=scripted_critic([None, None, 2])), n=3, generations=2, keep=1, critiques=3)
    assert kept == [a["kept"] for a in of(again, "Attempt") if a["round"] == 1]  # the run's seed decides


def test_evoscale_refuses_keeping_the_whole_population():
    with pytest.raises(ValueError, match="keep must be below"):
        build(evoscale.Params, {"n": 4, "keep": 4})


def test_the_refinement_view_draws_each_attempt_its_critique_and_escapes_them():
    from ui.figures.attempts import attempt_steps, attempts_figure

    space = FakeSpace(length=3, critic=scripted_critic([2], [None]))
    events = run(refine, space, rounds=4)
    evil = '<img src=x onerror="alert(1)">${x}'
    for e in events:
        if e["type"] == "Critiqued" and e["verdicts"] == [2]:
            e["texts"] = [f"1: ok\n2: {evil} wrong\nVerdict: step 2 wrong"]
    st = fold([{"type": "RunStarted", "run_id": "r1", "strategy": "refine", "params": {"rounds": 4}}] + events)
    assert [len(st.attempts[0])] == [2]
    first, second = (a["id"] for a in st.attempts[0])
    assert len(attempt_steps(st, first)) == 3 and attempt_steps(st, first)[0] == attempt_steps(st, second)[0]
    fig = attempts_figure(st)
    texts = [a.text for a in fig.layout.annotations]
    assert len(texts) == 4  # two attempts, two critiques
    assert "<img" not in "".join(texts) and "&lt;img" in "".join(texts) and "&#36;&#123;x&#125;" in "".join(texts)
    assert any("regenerate from step 2" in t for t in texts) and any("accepted" in t for t in texts)
    assert any("kept 1" in t for t in texts)
    flagged = next(t for t in texts if t.startswith("<b>attempt 1</b>"))
    assert "2. " in flagged and "✗</span>" in flagged  # the flagged step is marked


# ---- on the embedded models, with the oracle's exact critique -------------------------------------------------
def _events(strategy, budget, **params):
    cfg = RunConfig(model="tiny-arith-s", verifier="oracle", strategy=strategy, budget=budget, problem_id="test:3",
                    params=params)
    return list(run_events(cfg))


def test_refine_on_tiny_arith_keeps_what_the_oracle_accepts_and_rewrites_from_its_first_error():
    events = _events("refine", 4, chains=2)
    st = fold([{"type": "RunStarted", "run_id": "r", "strategy": "refine", "params": {},
                "problem": {"answer": "1377"}}] + events)
    from ui.figures.attempts import attempt_steps

    revisions = [(a, b) for chain in st.attempts.values() for a, b in zip(chain, chain[1:])]
    assert revisions, "test:3 is one the small policy gets wrong at first"
    for before, after in revisions:
        flagged = st.critiques[before["id"]]["verdicts"][0]
        assert after["kept"] == flagged - 1 and after["revises"] == before["id"]
        assert attempt_steps(st, after["id"])[:after["kept"]] == attempt_steps(st, before["id"])[:after["kept"]]
    graded = events[-1]
    for cid, crit in st.critiques.items():  # the oracle accepts exactly the right answers
        assert (crit["verdicts"][0] is None) == bool(st.nodes[cid].correct)
    assert graded["totals"]["verifier_tokens"] == 0 and graded["totals"]["generated_tokens"] > 0


def test_evoscale_on_tiny_arith_answers_right_exactly_when_a_candidate_was_accepted():
    events = _events("evoscale", 4, generations=3, keep=1)
    scores = [e["score"] for e in events if e["type"] == "Critiqued"]
    assert len(scores) >= 4
    assert bool(events[-1]["correct"]) == (max(scores) == 1.0)


@pytest.mark.parametrize("strategy", ["refine", "evoscale"])
def test_a_verifier_that_only_scores_is_refused_before_the_run(strategy):
    from engine.run import ConfigError, prepare

    with pytest.raises(ConfigError, match=f"{strategy} needs a verifier that critiques .* tiny-prm gives only a score"):
        prepare(RunConfig(model="tiny-arith-s", verifier="tiny-prm", strategy=strategy, budget=4))


def test_refine_on_tiny_arith_with_tiny_critic_revises_where_the_critic_says_and_charges_it():
    cfg = RunConfig(model="tiny-arith-s", verifier="tiny-critic", strategy="refine", budget=3, problem_id="test:3")
    events = list(run_events(cfg))
    st = fold([{"type": "RunStarted", "run_id": "r", "strategy": "refine", "params": {}}] + events)
    chain = st.attempts[0]
    assert len(chain) >= 2  # the critic flags the small policy's first attempt at this hard problem
    for before, after in zip(chain, chain[1:]):
        assert after["kept"] == st.critiques[before["id"]]["verdicts"][0] - 1
    assert events[-1]["totals"]["verifier_tokens"] > 0 and events[-1]["totals"]["verifier_calls"] >= len(chain)
