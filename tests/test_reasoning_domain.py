"""The reasoning domain's search space (backends/text/reasoning.py) with a scripted policy: what it appends as a step,
and which answers it calls equal for voting."""
from __future__ import annotations

import pytest

from backends.text import datasets_local
from backends.text.math_grading import MathTask
from backends.text.reasoning import ReasoningSpace, ReasoningTask
from backends.embedded import arith
from tests.test_datasets_local import needs_data
from strategies import majority_vote, weighted_bon
from strategies.core import Compute
from strategies.params import build

StepSample = pytest.importorskip("backends.text.transformers_lm").StepSample


class ScriptedPolicy:
    """Returns the given texts in turn, one per requested sample; records nothing but what it was asked."""

    delimiter = "\n"

    def __init__(self, texts: list[tuple[str, bool]]) -> None:
        self.texts, self.i = texts, 0

    def generate_steps(self, prefixes, k=1, temperature=0.8, top_p=1.0, seed=0, max_new_tokens=48, cancel=None,
                       stop_at_delimiter=True, stop_at_first=False):
        out = []
        for _ in prefixes:
            group = []
            for _ in range(k):
                text, eos = self.texts[self.i % len(self.texts)]
                self.i += 1
                group.append(StepSample(text, eos, 3, 0, Compute(generated_tokens=3, model_calls=1)))
            out.append(group)
        return out


class StepRecorder:
    """A verifier that scores every step 0.5 and keeps the step lists it was given."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def score_steps(self, problem, prompt, step_lists, cancel=None, cache=None):
        self.seen += [list(s) for s in step_lists]
        return [[0.5] * len(s) for s in step_lists], Compute(verifier_tokens=1)


def test_an_empty_step_is_never_appended_and_ends_the_chain():
    problem = arith.problem_at("test", 0)
    verifier = StepRecorder()
    policy = ScriptedPolicy([("12 + 3 = 15", False), ("   ", False), ("", True), ("\t", False), ("", True)])
    space = ReasoningSpace(policy, verifier, ReasoningTask(problem, problem.text + "\n"))
    root = space.initial(1)[0]
    kids = space.extend([root], 3)[0]
    assert [k.payload for k in kids] == [("12 + 3 = 15",), (), ()]
    assert [k.finished for k in kids] == [False, True, True] and kids[1].answer is None
    grand = space.extend([kids[0]], 2)[0]  # blank again: the chain ends on its one real step
    assert [g.payload for g in grand] == [("12 + 3 = 15",)] * 2 and all(g.finished for g in grand)
    space.score(kids + grand)
    assert all(step.strip() for steps in verifier.seen for step in steps)  # "last" never scores an empty step


def test_a_chain_at_the_step_limit_is_finished_without_an_answer():
    problem = arith.problem_at("test", 0)
    space = ReasoningSpace(ScriptedPolicy([("1 + 1 = 2", False)]), None, ReasoningTask(problem, problem.text + "\n"),
                           max_steps=2)
    one = space.extend(space.initial(1), 1)[0][0]
    two = space.extend([one], 1)[0][0]
    assert not one.finished and two.finished and two.depth == 2 and two.answer is None


@needs_data
@pytest.mark.parametrize("module", [majority_vote, weighted_bon])
def test_math_answers_vote_by_the_graders_equivalence(module):
    # MATH-500 "What power of 4 is equal to 8?": three samples write 3/2 three ways, two write a wrong 2/3.
    # By string the wrong answer leads 2 votes to 1; math-verify calls the three forms equal, so 3/2 wins.
    problem = datasets_local.problem_at("math500", 48)
    assert problem.answer == "\\frac{3}{2}"
    finals = ["so $4^{3/2} = 8$: \\boxed{\\frac32}", "\\boxed{\\frac{2}{3}}", "\\boxed{\\frac{3}{2}}",
              "\\boxed{\\frac{2}{3}}", "\\boxed{1.5}"]
    policy = ScriptedPolicy([(t, True) for t in finals])
    policy.delimiter = "\n\n"
    space = ReasoningSpace(policy, StepRecorder(), MathTask(problem, problem.text + "\n\n"))
    events = [e.to_dict() for e in module.search(space, build(module.Params, {"n": 5}))]
    end = events[-1]
    assert space.task.grade(end["answer"]), end["answer"]
    votes = {c["answer"]: c["votes"] for c in end["candidates"]}
    assert votes == {"\\frac32": 3, "\\frac{3}{2}": 3, "1.5": 3, "\\frac{2}{3}": 2}


def test_arithmetic_answers_are_equal_as_integers():
    task = ReasoningTask(arith.problem_at("test", 0), "")
    assert task.same_answer("-05", "-5") and task.same_answer("7", "7") and not task.same_answer("7", "-7")


def test_the_oracle_critiques_each_step_up_to_the_first_wrong_one_and_a_prm_cannot_critique():
    from backends.text.verifiers import ArithOracle
    problem = arith.problem_at("test", 0)  # Start with 2. Multiply by 2. Multiply by 3.
    policy = ScriptedPolicy([("2 * 2 = 4", False), ("4 * 3 = 13", False), ("The answer is 13", True)])
    space = ReasoningSpace(policy, ArithOracle(), ReasoningTask(problem, problem.text + "\n"))
    right = space.extend(space.initial(1), 1)[0][0]  # "2 * 2 = 4": right so far
    node = space.extend(space.extend([right], 1)[0], 1)[0][0]
    assert node.payload == ("2 * 2 = 4", "4 * 3 = 13", "The answer is 13") and node.finished
    [[wrong]], [ok] = space.critique([node], 1), space.critique([right], 3)
    assert wrong.verdict == 2 and wrong.checks == [True, False]
    assert wrong.text.splitlines() == ["1: 2 * 2 = 4 ok", "2: 4 * 3 = 13 wrong, 4 * 3 = 12", "Verdict: step 2 wrong"]
    assert [c.verdict for c in ok] == [None, None, None] and ok[0].text.endswith("Verdict: correct")
    prm = ReasoningSpace(policy, StepRecorder(), ReasoningTask(problem, problem.text + "\n"))
    with pytest.raises(ValueError, match="needs a verifier that critiques"):
        prm.critique([node], 2)
