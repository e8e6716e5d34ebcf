"""The arithmetic-chain task: generation, splits, parsing, answer extraction and exact step labels."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.embedded import arith


@given(st.integers(0, 10**7), st.integers(1, 5))
@settings(max_examples=200, deadline=None)
def test_generated_problems_are_consistent(seed, level):
    p = arith.generate(seed, level)
    assert p.difficulty == level
    assert len(p.ops) == arith.LEVELS[level].n_ops
    assert all(0 <= v <= arith.MAX_VALUE for v in p.values)
    assert sum(1 for s, _ in p.ops if s == "*") >= arith.LEVELS[level].min_muls
    # the text parses back to the same chain, and the solution grades as correct step by step
    assert arith.parse_problem(p.text).ops == p.ops
    assert arith.step_labels(p, arith.split_steps(p.solution)) == [1] * len(p.steps)
    assert arith.is_correct(p, arith.extract_answer(p.solution))


def test_generation_is_deterministic_and_splits_are_disjoint():
    assert arith.problem_at("test", 17) == arith.problem_at("test", 17)
    test = {arith.problem_at("test", i).text: arith.problem_at("test", i) for i in range(300)}
    dev = {arith.problem_at("dev", i).text for i in range(300)}
    train = {arith.generate(i).text for i in range(3000)}
    # Seeds are disjoint; only level-1 chains (a small space) can coincide by chance.
    assert all(test[t].difficulty == 1 for t in (set(test) & train) | (set(test) & dev))
    assert [arith.problem_at("test", i).difficulty for i in range(10)] == [1, 2, 3, 4, 5] * 2


def test_difficulty_grows_with_multiplier_size():
    big = [max((b for s, b in arith.generate(i, lvl).ops if s == "*"), default=0)
           for lvl in (2, 5) for i in range(50)]
    assert max(big[:50]) <= 9 < min(big[50:])


def test_trailing_delimiter_makes_no_empty_step():
    assert arith.split_steps("1 + 1 = 2\nThe answer is 2\n") == ["1 + 1 = 2", "The answer is 2"]
    assert arith.split_steps("a\n\nb\n\n") == ["a", "b"]


def test_step_labels_use_first_error_semantics():
    p = arith.parse_problem("Start with 5. Multiply by 3. Add 2.")
    assert arith.step_labels(p, ["5 * 3 = 15", "15 + 2 = 17", "The answer is 17"]) == [1, 1, 1]
    assert arith.step_labels(p, ["5 * 3 = 16", "16 + 2 = 18", "The answer is 18"]) == [0, 0, 0]
    assert arith.step_labels(p, ["5 * 3 = 15", "15 + 2 = 18", "The answer is 17"]) == [1, 0, 0]
    assert arith.step_labels(p, ["5 * 3 = 15", "15 + 2 = 17", "The answer is 17", "extra"]) == [1, 1, 1, 0]


@pytest.mark.parametrize("text, answer", [
    ("The answer is 385", "385"), ("x\nThe answer is 007", "7"), ("The answer is 0", "0"), ("no answer", None)])
def test_extract_answer(text, answer):
    assert arith.extract_answer(text) == answer


@pytest.mark.parametrize("text", ["", "What is 2+2?", "<script>alert(1)</script>", "Start with 5.",
                                  "Start with 5. Divide by 2.", "Start with 99999. Multiply by 99."])
def test_problems_outside_the_grammar_get_a_message_with_an_example(text):
    with pytest.raises(arith.ProblemFormatError, match="Start with|below|non-negative|operations"):
        arith.parse_problem(text)


def test_user_problem_is_normalised_and_graded():
    p = arith.parse_problem("  start with 37.  add 48. MULTIPLY BY 6. subtract 125.")
    assert p.text == "Start with 37. Add 48. Multiply by 6. Subtract 125."
    assert p.answer == 385 and p.difficulty is not None
