"""Free-form math answers: \\boxed{} extraction, equivalence through math-verify, and the MathTask.

math-verify's default timeouts use signals, which only work in the main thread; the UI and the engine grade
from worker threads. So it is called in its thread-safe form (DESIGN.md section 4):
``parse(..., parsing_timeout=None)`` and ``verify(gold, pred, timeout_seconds=None)`` run inside a worker of
a small pool, and our own timeout bounds the wait (``future.result(timeout)``). A grading that times out
counts as not equivalent; its worker finishes in the background (the pool is bounded, so a pathological
expression cannot pile up threads without limit).
"""
from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns on every call that timeouts are ours

MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
STEP_DELIMITER = "\n\n"
GRADE_TIMEOUT_S = 10.0

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="math-verify")


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) with balanced braces, or None."""
    best = None
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            best = text[m.end():i - 1]
    return best.strip() if best is not None else None


# "The answer is 42." / "the final answer is: $x^2$" (the phrase the MATH prompts and the embedded chains use)
_ANSWER_IS = re.compile(r"[Tt]he (?:final )?answer is:?\s*(.+?)\s*\.?\s*$", re.MULTILINE)


def extract_answer(text: str) -> str | None:
    """The final answer a solution states: its last ``\\boxed{}``, else what follows its last "The answer is"
    on that line; None when it states neither."""
    boxed = extract_boxed(text)
    if boxed is not None:
        return boxed
    found = _ANSWER_IS.findall(text)
    return (found[-1].strip() or None) if found else None


def normalize_answer(answer: str | None) -> str | None:
    """A light canonical form for grouping equal answers (votes): spacing, \\left/\\right, text wrappers, ``$``."""
    if answer is None:
        return None
    a = answer.strip().strip("$").strip()
    a = re.sub(r"\\left|\\right|\\!|\\,|\\;|\\ ", "", a)
    a = re.sub(r"\\(?:text|mathrm|textbf)\{([^{}]*)\}", r"\1", a)
    a = re.sub(r"\\[dt]frac", r"\\frac", a)
    a = re.sub(r"\s+", "", a).rstrip(".")
    if re.fullmatch(r"-?[\d,]+(\.\d+)?", a) and "," in a and re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", a):
        a = a.replace(",", "")  # 1,000 -> 1000 (not a tuple like 1,2)
    return a


def _verify(gold: str, pred: str) -> bool:
    from math_verify import parse, verify
    g = parse(_as_latex(gold), parsing_timeout=None)
    p = parse(_as_latex(pred), parsing_timeout=None)
    if not g or not p:
        return False
    return bool(verify(g, p, timeout_seconds=None))


def _as_latex(answer: str) -> str:
    s = answer.strip()
    if "\\boxed" in s or s.startswith("$"):
        return s
    return f"${s}$"


def is_equivalent(gold: str | None, pred: str | None, timeout_s: float = GRADE_TIMEOUT_S) -> bool:
    """math-verify equivalence of two answers, in a worker thread under our own timeout."""
    if gold is None or pred is None or not str(pred).strip():
        return False
    if normalize_answer(gold) == normalize_answer(pred):
        return True
    import math_verify  # noqa: F401 - the first import (sympy, antlr) is slow: never inside the timed wait
    future = _pool.submit(_verify, str(gold), str(pred))
    try:
        return future.result(timeout=timeout_s)
    except FutureTimeout:
        log.warning("math-verify took over %.1f s on %r vs %r; graded as not equivalent", timeout_s, gold, pred)
        return False
    except Exception:  # noqa: BLE001 - a grader crash is a wrong answer, never a failed run
        log.exception("math-verify failed on %r vs %r", gold, pred)
        return False


@dataclass(frozen=True)
class MathProblem:
    """A free-form math problem from a dataset (MATH-500, GSM8K) or typed by the user; a typed question's
    ``answer`` is the one the user expects, None when none was given (then nothing is graded)."""

    uid: str | None
    text: str
    answer: str | None
    solution: str = ""
    difficulty: int | None = None
    subject: str | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict:
        return {"uid": self.uid, "text": self.text, "answer": self.answer, "difficulty": self.difficulty,
                "subject": self.subject, "solution": self.solution}


@dataclass
class MathTask:
    """The reasoning space's view of a math problem: steps split at blank lines, answers in \\boxed{}.

    A step is final when it states an answer (``extract_answer``: a complete ``\\boxed{...}``, else "The answer
    is ..."); ``extract`` reads the last one of a text and normalizes it lightly so equal answers group
    together for voting; ``split`` never makes an empty trailing step (a trailing "\\n\\n" is not a step).
    """

    problem: MathProblem
    prompt: str
    delimiter: str = STEP_DELIMITER
    # pairs already compared: a run's votes and its candidates table ask math-verify about the same pairs
    _same: dict[tuple[str, str], bool] = field(default_factory=dict, init=False, repr=False, compare=False)

    def extract(self, text: str) -> str | None:
        return normalize_answer(extract_answer(text))

    def is_final_step(self, step: str) -> bool:
        return extract_answer(step) is not None

    def split(self, text: str) -> list[str]:
        return [p.strip() for p in text.split(self.delimiter) if p.strip()]

    def grade(self, answer: str | None) -> bool:
        return is_equivalent(self.problem.answer, answer)

    def same_answer(self, a: str, b: str) -> bool:
        """The grader's equivalence (math-verify), so ``\\frac12``, ``\\frac{1}{2}`` and ``0.5`` vote together."""
        if (a, b) not in self._same:
            self._same[(a, b)] = is_equivalent(a, b)
        return self._same[(a, b)]


def math_prompt(policy, problem: MathProblem) -> str:
    """The policy's prompt for a math problem: its chat template with the step-by-step system prompt, or plain."""
    if getattr(policy, "use_chat_template", False):
        return policy.format_prompt(problem.text, system=MATH_SYSTEM)
    return f"{problem.text}\n{MATH_SYSTEM}{policy.delimiter}"


class MathOracle:
    """ORACLE for free-form math: it knows the answer, not which step is right.

    A prefix scores 1.0 once it states the right boxed answer, 0.0 once it states a wrong one, and 0.5 while
    it states none; ``score_whole`` is the final answer's correctness.
    """

    name = "oracle"
    is_oracle = True

    def _value(self, problem: MathProblem, steps: list[str]) -> float:
        answer = extract_answer("\n\n".join(steps))
        if answer is None:
            return 0.5
        return 1.0 if is_equivalent(problem.answer, answer) else 0.0

    def score_steps(self, problem, prompt, step_lists, cancel=None, cache=None):
        from strategies.core import Compute
        return [[self._value(problem, steps[:i]) for i in range(1, len(steps) + 1)] for steps in step_lists], Compute()

    def score_whole(self, problem, prompt, step_lists, cancel=None):
        from strategies.core import Compute
        return [float(self._value(problem, steps) == 1.0) for steps in step_lists], Compute()


class AnyOracle:
    """The catalog's ``oracle``: arithmetic chains through ArithOracle, free-form math through MathOracle."""

    name = "oracle"
    is_oracle = True

    def __init__(self) -> None:
        from backends.text.verifiers import ArithOracle
        self._arith, self._math = ArithOracle(), MathOracle()

    def _pick(self, problem):
        return self._math if isinstance(problem, MathProblem) else self._arith

    def score_steps(self, problem, prompt, step_lists, cancel=None, cache=None):
        return self._pick(problem).score_steps(problem, prompt, step_lists, cancel, cache)

    def score_whole(self, problem, prompt, step_lists, cancel=None):
        return self._pick(problem).score_whole(problem, prompt, step_lists, cancel)

    def critique(self, problem, prompt, step_lists, k, temperature=None, seed=0, cancel=None):
        """The exact critique of arithmetic chains (ArithOracle's), which refuses free-form math by name."""
        return self._arith.critique(problem, prompt, step_lists, k, temperature=temperature, seed=seed, cancel=cancel)
