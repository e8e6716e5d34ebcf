"""Solve-Detect-Verify and thought truncation (TrimR): their defining behaviour on the fake thinking space with
scripted verdicts and answers (exact events), the trace view's marks, then once each on tiny-think with the oracle."""
from __future__ import annotations

import pytest

from engine.run import RunConfig, run_events
from strategies import solve_detect_verify as sdv
from strategies import thought_truncation as trimr
from strategies.params import build
from tests.fake_space import FakeSpace, scripted_critic
from ui.fold import fold


class ScriptedAnswers(FakeSpace):
    """A fake thinker whose n-th probed answer is ``answers[n]`` (a one-digit answer)."""

    def __init__(self, answers, **kw):
        super().__init__(length=1, think_chunk=1000, **kw)
        self.answers = list(answers)

    def complete(self, nodes, temperature=None):
        self.calls.append(("complete", len(nodes)))
        return [self._node(n, n.payload + (self.answers.pop(0),)) for n in nodes]


def run(module, space, **values):
    return [e.to_dict() for e in module.search(space, build(module.Params, values))]


def marks(events):
    return [(e["tokens"], e["mark"]) for e in events if e["type"] == "ThoughtProgress"]


def test_sdv_stops_the_thought_at_the_first_verified_answer():
    space = FakeSpace(length=2, think_chunk=1000, critic=scripted_critic([1], [2], [None]))
    events = run(sdv, space, budget=100, chunk=4)
    assert marks(events) == [(4, "probe"), (8, "probe"), (12, "verified"), (12, "answer")]
    assert [c for c in space.calls if c[0] == "think"] == [("think", 1, 4)] * 3
    assert events[-1]["stats"] == {"probes": 3, "stopped_by_verifier": True, "thinking_tokens": 12}
    verified = [e for e in events if e["type"] == "Critiqued"][-1]["id"]
    assert events[-1]["node_id"] == verified


def test_sdv_spends_the_slow_critiques_only_when_the_fast_ones_disagree():
    # the first probe's critiques read None, 1, None, 1, None: the fast two disagree, five in all, 3 of 5 accept
    space = FakeSpace(length=2, think_chunk=1000, critic=scripted_critic([None, 1]))
    events = run(sdv, space, budget=100, chunk=4, k_fast=2, k_slow=3)
    assert [c for c in space.calls if c[0] == "critique"] == [("critique", 1, 2), ("critique", 1, 3)]
    crit = [e for e in events if e["type"] == "Critiqued"]
    assert len(crit) == 1 and crit[0]["verdicts"] == [None, 1, None, 1, None] and crit[0]["score"] == 0.6
    assert marks(events)[0] == (4, "verified")
    agreeing = FakeSpace(length=2, think_chunk=1000, critic=scripted_critic([None]))
    run(sdv, agreeing, budget=100, chunk=4, k_fast=2, k_slow=3)
    assert [c for c in agreeing.calls if c[0] == "critique"] == [("critique", 1, 2)]


def test_sdv_forces_the_end_at_the_budget_when_nothing_is_verified():
    space = FakeSpace(length=2, think_chunk=1000, critic=scripted_critic([1]))
    events = run(sdv, space, budget=10, chunk=4)
    # 4 and 8 probed and rejected; 10 reaches the budget: forced, answered without a probe
    assert marks(events) == [(4, "probe"), (8, "probe"), (10, "forced"), (10, "answer")]
    assert events[-1]["stats"] == {"probes": 2, "stopped_by_verifier": False, "thinking_tokens": 10}
    assert events[-1]["answer"] is not None


def test_sdv_does_not_probe_a_thought_the_model_ends_itself():
    space = FakeSpace(length=2, think_chunk=3, critic=scripted_critic([None]))
    events = run(sdv, space, budget=100, chunk=8)
    assert marks(events) == [(3, "end"), (3, "answer")]
    assert not [c for c in space.calls if c[0] == "critique"]


def test_sdv_and_trimr_refuse_a_model_that_does_not_think_or_a_verifier_that_does_not_critique():
    class NoThinking:
        max_steps, seed = 3, 0

    for module in (sdv, trimr):
        with pytest.raises(ValueError, match="thinking model"):
            run(module, NoThinking())
        with pytest.raises(ValueError, match="critiques"):
            run(module, FakeSpace())
    run(trimr, ScriptedAnswers([1] * 10), confirm="none", chunk=4)  # the agreement alone needs no critic


def test_trimr_cuts_the_thought_once_its_answer_repeats():
    space = ScriptedAnswers([3, 5, 5, 7, 7])
    events = run(trimr, space, budget=100, chunk=4, repeats=2, confirm="none")
    assert marks(events) == [(4, "probe"), (8, "probe"), (12, "trimmed"), (12, "answer")]
    assert events[-1]["answer"] == "5"
    assert events[-1]["stats"] == {"probes": 3, "truncated": True, "thinking_tokens": 12}


def test_trimr_asks_the_critic_only_about_settled_answers():
    # answers 3, 5, 5, 5: settled at the third probe, which the critic rejects; accepted at the fourth
    space = ScriptedAnswers([3, 5, 5, 5, 5], critic=scripted_critic([1], [None]))
    events = run(trimr, space, budget=100, chunk=4, repeats=2)
    assert marks(events) == [(4, "probe"), (8, "probe"), (12, "probe"), (16, "trimmed"), (16, "answer")]
    assert [c for c in space.calls if c[0] == "critique"] == [("critique", 1, 1)] * 2
    assert events[-1]["answer"] == "5"


def test_trimr_keeps_thinking_while_the_answer_changes():
    space = ScriptedAnswers([1, 2, 3, 4, 5])
    events = run(trimr, space, budget=14, chunk=4, repeats=2, confirm="none")
    assert marks(events) == [(4, "probe"), (8, "probe"), (12, "probe"), (14, "forced"), (14, "answer")]
    assert events[-1]["stats"]["truncated"] is False and events[-1]["answer"] == "4"


def test_the_trace_view_draws_where_verification_stopped_the_thought():
    from ui.figures.thoughts import thoughts_figure

    space = FakeSpace(length=2, think_chunk=1000, critic=scripted_critic([1], [None]))
    events = run(sdv, space, budget=100, chunk=4)
    st = fold([{"type": "RunStarted", "run_id": "r", "strategy": "solve_detect_verify", "params": {"budget": 100}}]
              + events)
    fig = thoughts_figure(st)
    by_symbol = {t.marker.symbol: list(t.x) for t in fig.data if t.type == "scatter"}
    assert by_symbol == {"circle-open": [4], "star": [8]}
    assert "verified" in fig.data[-1].hovertext[0]
    trimmed = run(trimr, ScriptedAnswers([2, 2]), budget=100, chunk=4, confirm="none")
    st = fold([{"type": "RunStarted", "run_id": "t", "strategy": "thought_truncation", "params": {}}] + trimmed)
    assert {t.marker.symbol: list(t.x) for t in thoughts_figure(st).data if t.type == "scatter"} == {
        "circle-open": [4], "triangle-left": [8]}


# ---- on the embedded thinking model, checked by the oracle ------------------------------------------------------
def _events(strategy, **params):
    cfg = RunConfig(model="tiny-think", verifier="oracle", strategy=strategy, budget=256, problem_id="test:2",
                    params=params)
    return list(run_events(cfg))


def test_sdv_on_tiny_think_stops_at_a_verified_answer_and_counts_only_the_thought_as_thinking():
    events = _events("solve_detect_verify", chunk=8)
    stats = next(e for e in events if e["type"] == "RunFinished")["stats"]
    totals = events[-1]["totals"]
    assert stats["stopped_by_verifier"] is True and events[-1]["correct"] is True  # the oracle verifies right ones
    assert totals["thinking_tokens"] == stats["thinking_tokens"] == 8  # the probe's answer is not thinking
    assert totals["generated_tokens"] > totals["thinking_tokens"]
    assert [e["mark"] for e in events if e["type"] == "ThoughtProgress"] == ["verified", "answer"]


def test_trimr_on_tiny_think_cuts_where_its_answers_agree():
    events = _events("thought_truncation", chunk=8, confirm="none", repeats=2)
    probed = [e for e in events if e["type"] == "ThoughtProgress" and e["mark"] in ("probe", "trimmed")]
    done = next(e for e in events if e["type"] == "RunFinished")
    stats = done["stats"]
    assert stats["truncated"] is True and stats["probes"] == len(probed) >= 2
    finals = [e["answer"] for e in events if e["type"] == "NodeFinished"]
    assert len(finals) == len(probed) and finals[-1] == finals[-2] == done["answer"]
    assert probed[-1]["mark"] == "trimmed" and events[-1]["totals"]["thinking_tokens"] == probed[-1]["tokens"]
