"""The LLM judge: verdict parsing, k-sample aggregation rules, caching, cost, and any causal LM folder."""
from __future__ import annotations

import pytest

from backends.text.judge import LLMJudge, aggregate_judgments, load_judge, parse_verdict
from backends.text.transformers_lm import StepSample
from strategies.core import Compute


@pytest.mark.parametrize("text,value", [
    ("The steps check out.\nVerdict: correct", 1.0),
    ("Step 2 drops a sign.\nVerdict: incorrect", 0.0),
    ("verdict:**Incorrect**", 0.0),
    ("Verdict: wrong.", 0.0),
    ("Verdict: not correct", 0.0),
    ("Looks fine. Score: 7/10", 0.7),
    ("score: 10 out of 10", 1.0),
    ("Final: \\boxed{correct}", 1.0),
    ("First Verdict: correct, but on reflection...\nVerdict: incorrect", 0.0),
    ("I am not sure what to say.", None),
    ("Score: 42", None),
])
def test_parse_verdict(text, value):
    assert parse_verdict(text) == value


def test_aggregation_rules():
    values = [1.0, 0.0, 1.0, None]
    assert aggregate_judgments(values, "vote") == pytest.approx(2 / 3)
    assert aggregate_judgments([0.9, 0.6, 0.3], "mean") == pytest.approx(0.6)
    assert aggregate_judgments([0.9, 0.6, 0.3], "min") == pytest.approx(0.3)
    assert aggregate_judgments([None, None], "mean") == 0.5
    assert aggregate_judgments([None], "min", abstain_score=0.0) == 0.0
    with pytest.raises(ValueError):
        aggregate_judgments([1.0], "median")


class CannedPolicy:
    """Returns the given judgment texts in turn; counts every prompt it saw."""

    use_chat_template = False
    delimiter = "\n"

    def __init__(self, texts):
        self.texts, self.prompts, self.i = texts, [], 0

    def generate_steps(self, prefixes, k=1, temperature=0.8, top_p=1.0, seed=0, max_new_tokens=48, cancel=None,
                       stop_at_delimiter=True, stop_at_first=False):
        out = []
        for p in prefixes:
            self.prompts.append(p)
            group = []
            for _ in range(k):
                t = self.texts[self.i % len(self.texts)]
                self.i += 1
                group.append(StepSample(t, True, 5, 0, Compute(prompt_tokens=10, generated_tokens=5, model_calls=1,
                                                                flops=100.0)))
            out.append(group)
        return out


def test_k_judgments_aggregate_and_cost_is_counted():
    policy = CannedPolicy(["Verdict: correct", "Verdict: incorrect", "Score: 8/10", "no verdict here"])
    judge = LLMJudge(policy, k=4, rule="vote")
    scores, cost = judge.score_whole(None, "What is 1+1?", [["1 + 1 = 2", "The answer is 2"]])
    assert scores == [pytest.approx(2 / 3)]
    assert cost.verifier_tokens == 4 * 15 and cost.verifier_calls == 4 and cost.flops == 400.0
    assert cost.prompt_tokens == 0 and cost.generated_tokens == 0  # the judge's tokens are verifier tokens
    assert "Problem:\nWhat is 1+1?" in policy.prompts[0] and "1 + 1 = 2\n\nThe answer is 2" in policy.prompts[0]
    assert [j.value for j in judge.last_judgments["1 + 1 = 2\n\nThe answer is 2"]] == [1.0, 0.0, 0.8, None]
    # a solution is judged once per run (the run's cache), and in full again by another run
    run_cache: dict = {}
    _, first = judge.score_steps(None, "What is 1+1?", [["1 + 1 = 2", "The answer is 2"]], cache=run_cache)
    _, again = judge.score_steps(None, "What is 1+1?", [["1 + 1 = 2", "The answer is 2"]], cache=run_cache)
    _, other = judge.score_steps(None, "What is 1+1?", [["1 + 1 = 2", "The answer is 2"]], cache={})
    assert first.verifier_calls == 4 and again.verifier_calls == 0 and other.verifier_calls == 4


def test_pessimistic_rule_and_per_step_modes():
    texts = ["Score: 9", "Score: 4"]
    judge = LLMJudge(CannedPolicy(texts), k=2, rule="min")
    (per_step,), _ = judge.score_steps(None, "q", [["a", "b", "c"]])
    assert per_step == [pytest.approx(0.4)] * 3  # repeat: the whole solution's score for every step
    prefix_judge = LLMJudge(CannedPolicy(texts), k=2, rule="mean", per_step="prefix")
    (per_prefix,), cost = prefix_judge.score_steps(None, "q", [["a", "b"]])
    assert len(per_prefix) == 2 and cost.verifier_calls == 4  # 2 prefixes x k=2
    with pytest.raises(ValueError):
        LLMJudge(CannedPolicy(texts), rule="best")


def test_judge_runs_on_any_causal_lm_folder(random_lm_path):
    judge = load_judge(str(random_lm_path), k=3, max_new_tokens=12, rule="mean")
    scores, cost = judge.score_whole(None, "Start with 2. Add 3.", [["2 + 3 = 5", "The answer is 5"], ["x"]])
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
    # a random model writes no verdict: every judgment abstains, the score carries no information
    assert scores == [0.5, 0.5]
    assert cost.verifier_tokens > 0 and cost.verifier_calls > 0 and cost.flops > 0
    assert all(len(js) == 3 for js in judge.last_judgments.values())
