"""Budget forcing: its defining behaviour on the fake thinking space, then once on the real tiny-think."""
from __future__ import annotations

from collections import Counter

import pytest

from engine.run import ConfigError, RunConfig, prepare, run_events
from strategies import budget_forcing
from strategies.core import Compute
from strategies.params import build
from tests.fake_space import FakeSpace


def run(space, **values):
    return [e.to_dict() for e in budget_forcing.search(space, build(budget_forcing.Params, values))]


def stats(events):
    return events[-1]["stats"]


def test_the_end_of_thinking_is_forced_at_the_budget():
    space = FakeSpace(think_chunk=10)
    events = run(space, budget=4, n=3)
    assert [c for c in space.calls if c[0] == "think"] == [("think", 3, 4)]
    assert stats(events) == {"forced_ends": 3, "waits": 0, "thinking_tokens": 12}
    assert events[-1]["answer"] is not None


def test_a_stop_before_the_budget_is_accepted_without_a_minimum():
    space = FakeSpace(think_chunk=3)
    events = run(space, budget=100, n=2)
    assert stats(events) == {"forced_ends": 0, "waits": 0, "thinking_tokens": 6}


def test_wait_replaces_an_early_stop_up_to_max_waits():
    space = FakeSpace(think_chunk=3)
    events = run(space, budget=100, min_thinking=8, max_waits=5, n=1)
    # 3 tokens, stop -> Wait; 6, stop -> Wait; 9 >= 8: the stop is accepted
    assert stats(events) == {"forced_ends": 0, "waits": 2, "thinking_tokens": 9}
    assert len(space.waits) == 2
    assert [c[2] for c in space.calls if c[0] == "think"] == [100, 97, 94]  # the extensions share the budget
    capped = run(FakeSpace(think_chunk=3), budget=100, min_thinking=8, max_waits=1)
    assert stats(capped) == {"forced_ends": 0, "waits": 1, "thinking_tokens": 6}


def test_an_extension_cannot_think_past_the_budget():
    events = run(FakeSpace(think_chunk=3), budget=5, min_thinking=50, max_waits=9)
    assert stats(events)["thinking_tokens"] == 5
    assert stats(events)["forced_ends"] == 1


def test_parallel_samples_are_reduced_by_a_majority_vote():
    events = run(FakeSpace(length=1, seed=3), budget=8, n=15)
    cands = events[-1]["candidates"]
    assert len(cands) == 15
    votes = Counter(c["answer"] for c in cands)
    top = max(votes.values())
    assert votes[events[-1]["answer"]] == top
    first_top = next(c["answer"] for c in cands if votes[c["answer"]] == top)
    assert events[-1]["answer"] == first_top


def test_the_trace_view_marks_every_wait_and_forced_end_and_the_answers():
    """ThoughtProgress events: each sample's rounds in order, its tokens never falling; the trace view draws a
    bar per round, a diamond per Wait, a cross per forced end, the budget line and each sample's answer."""
    from ui.figures.thoughts import thoughts_figure
    from ui.fold import fold

    events = run(FakeSpace(think_chunk=3), budget=10, min_thinking=8, max_waits=1, n=2)
    progress = [e for e in events if e["type"] == "ThoughtProgress"]
    by_sample = {}
    for e in progress:
        by_sample.setdefault(e["sample"], []).append((e["tokens"], e["mark"]))
    # each sample: 3 tokens, stop replaced by Wait; 6, stop accepted (max_waits 1); then its answer
    assert by_sample == {0: [(3, "wait"), (6, "end"), (6, "answer")], 1: [(3, "wait"), (6, "end"), (6, "answer")]}
    st = fold([{"type": "RunStarted", "run_id": "r1", "strategy": "budget_forcing",
                "params": {"budget": 10, "n": 2}}] + events)
    fig = thoughts_figure(st)
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 4  # two rounds of two samples
    diamonds = [t for t in fig.data if t.type == "scatter" and t.marker.symbol == "diamond"]
    assert len(diamonds) == 1 and list(diamonds[0].x) == [3, 3]
    assert not [t for t in fig.data if t.type == "scatter" and t.marker.symbol == "x"]
    assert len([a for a in fig.layout.annotations if a.text.startswith(("✓", "✗", "?"))]) == 2
    assert any(s.x0 == 10 for s in fig.layout.shapes)  # the budget line
    forced = run(FakeSpace(think_chunk=10), budget=4, n=3)
    st = fold([{"type": "RunStarted", "run_id": "r2", "strategy": "budget_forcing", "params": {"budget": 4}}]
              + forced)
    crosses = [t for t in thoughts_figure(st).data if t.type == "scatter" and t.marker.symbol == "x"]
    assert len(crosses) == 1 and list(crosses[0].x) == [4, 4, 4]


def test_a_space_without_thinking_is_refused():
    class NoThinking:
        max_steps, seed = 3, 0

    with pytest.raises(ValueError, match="thinking model"):
        list(budget_forcing.search(NoThinking(), budget_forcing.Params()))


def test_old_compute_records_load_with_no_thinking_tokens():
    assert Compute.from_dict({"generated_tokens": 5}).thinking_tokens == 0


# ---- on the real embedded thinking model -----------------------------------------------------------------
def _run(**kw):
    cfg = RunConfig(model="tiny-think", verifier=None, strategy="budget_forcing", problem_id="test:3", **kw)
    events = list(run_events(cfg))
    return events[-1], [e for e in events if e["type"] == "RunFinished"][0]


def test_tiny_think_budget_caps_the_thought_and_still_answers():
    graded, done = _run(budget=6)
    text = graded["extras"]["chosen_text"]
    thought, _, answer = text.partition("</think>")
    assert thought.startswith("<think>\n") and "The answer is" in answer
    assert done["stats"]["forced_ends"] == 1 and done["stats"]["thinking_tokens"] == 6
    totals = graded["totals"]
    assert totals["thinking_tokens"] == 6 and totals["generated_tokens"] > 6


def test_tiny_think_unlimited_thought_ends_on_its_own_and_counts_its_tokens():
    graded, done = _run(budget=4096)
    assert done["stats"]["forced_ends"] == 0
    text = graded["extras"]["chosen_text"]
    assert "</think>" in text and text.count("\n") > 4
    assert 0 < graded["totals"]["thinking_tokens"] < graded["totals"]["generated_tokens"]


def test_tiny_think_wait_makes_it_recheck():
    graded, done = _run(budget=4096, params={"min_thinking": 400, "max_waits": 2})
    assert done["stats"]["waits"] == 2
    thought = graded["extras"]["chosen_text"].split("</think>")[0]
    assert thought.count("Wait, ") >= 2
    # after a forced Wait, the model re-checks a line (an equation), not repeat the end of thinking
    after = thought.rsplit("Wait, ", 1)[1]
    assert " = " in after.split("\n")[0]


def test_budget_over_the_token_cap_is_refused():
    with pytest.raises(ConfigError, match="budget must be a whole number from 1 to 4096"):
        prepare(RunConfig(model="tiny-think", verifier=None, strategy="budget_forcing", budget=5000))


def test_thinking_models_are_marked_in_the_catalog():
    from backends import catalog

    assert catalog.resolve("tiny-think", "policy").thinking == ("<think>", "</think>")
    assert catalog.resolve("tiny-arith-l", "policy").thinking == ()
    for hub in ("Qwen/Qwen3-0.6B", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"):
        assert catalog.thinking_delimiters(hub) == ("<think>", "</think>")
    assert catalog.thinking_delimiters("Qwen/Qwen2.5-1.5B-Instruct") == ()
    assert catalog.resolve("openai:Qwen/Qwen3-8B@http://127.0.0.1:1/v1", "policy").thinking == ("<think>", "</think>")


def test_first_finish_on_tiny_think_races_whole_traces():
    cfg = RunConfig(model="tiny-think", verifier=None, strategy="first_finish", budget=4, problem_id="test:4")
    events = list(run_events(cfg))
    totals = events[-1]["totals"]
    assert 0 < totals["thinking_tokens"] < totals["generated_tokens"]
    pruned = [e for e in events if e["type"] == "NodePruned"]
    assert len(pruned) == 3


def test_budget_forcing_on_a_model_that_does_not_think_is_refused_before_the_run():
    with pytest.raises(ConfigError, match="needs a thinking model"):
        prepare(RunConfig(model="tiny-arith-s", verifier=None, strategy="budget_forcing", budget=16))
