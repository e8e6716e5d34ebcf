"""Free-form math: boxed extraction, math-verify equivalence in worker threads under our timeout, MathTask."""
from __future__ import annotations

import threading
import time

import pytest

from backends.text import math_grading as mg


def test_extract_boxed_takes_the_last_balanced_box():
    assert mg.extract_boxed("so \\boxed{\\frac{1}{2}} and") == "\\frac{1}{2}"
    assert mg.extract_boxed("\\boxed{1} then \\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}") == \
        "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert mg.extract_boxed("\\boxed{unclosed") is None
    assert mg.extract_boxed("no box") is None
    assert mg.extract_boxed("\\fbox{7}") == "7"


@pytest.mark.parametrize("gold,pred,ok", [
    ("\\frac{1}{2}", "0.5", True),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\frac{\\pi}{2})", True),
    ("18", "18.0", True),
    ("1000", "1,000", True),
    ("\\dfrac{3}{4}", "\\frac34", True),
    ("2", "3", False),
    ("2", None, False),
    ("2", "", False),
])
def test_equivalence(gold, pred, ok):
    assert mg.is_equivalent(gold, pred) is ok


def test_grading_works_from_many_threads_at_once():
    results = []

    def grade():
        results.append(mg.is_equivalent("\\frac{2}{4}", "0.5"))

    threads = [threading.Thread(target=grade) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [True] * 6


def test_our_timeout_bounds_a_stuck_grader(monkeypatch):
    monkeypatch.setattr(mg, "_verify", lambda g, p: time.sleep(3) or True)
    started = time.perf_counter()
    assert mg.is_equivalent("x^2", "y", timeout_s=0.2) is False
    assert time.perf_counter() - started < 2


def test_math_task_steps_and_answers():
    p = mg.MathProblem(uid="t:0", text="What is 1/2 + 0?", answer="\\frac{1}{2}")
    task = mg.MathTask(p, "prompt")
    assert task.split("First.\n\nSecond.\n\n") == ["First.", "Second."]  # no empty trailing step
    assert task.split("\n\nA\n\n\n\nB") == ["A", "B"]
    assert task.is_final_step("So the answer is $\\boxed{0.5}$.") and not task.is_final_step("Let x = 1.")
    assert task.extract("The answer is \\boxed{ \\dfrac{1}{2} }.") == "\\frac{1}{2}"
    assert task.grade(task.extract("\\boxed{0.5}")) and not task.grade("0.25")


def test_math_oracle_knows_only_answers():
    p = mg.MathProblem(uid="t:0", text="q", answer="4")
    scores, cost = mg.MathOracle().score_steps(p, "", [["2 + 2", "= \\boxed{4}"], ["\\boxed{5}"]])
    assert scores == [[0.5, 1.0], [0.0]] and cost.verifier_calls == 0
    whole, _ = mg.AnyOracle().score_whole(p, "", [["\\boxed{4}"], ["no answer"]])
    assert whole == [1.0, 0.0]
