"""The embedded reasoning task: arithmetic chains written as short instructions.

A problem reads ``Start with 37. Add 48. Multiply by 6. Subtract 125.`` and its solution is one
line per operation followed by a final-answer line::

    37 + 48 = 85
    85 * 6 = 510
    510 - 125 = 385
    The answer is 385

Steps are separated by ``STEP_DELIMITER``. Difficulty (1 to 5) grows with the number of operations
and, above all, with the size of the operands of multiplications: a tiny transformer learns long
chains of easy steps almost perfectly, so what it gets wrong is multi-digit multiplication and carries.
Problems are generated from integer seeds; the splits use disjoint seed ranges.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

STEP_DELIMITER = "\n"
ANSWER_PREFIX = "The answer is "
SPLITS = {"train": 0, "dev": 10_000_000, "test": 20_000_000}
MAX_VALUE = 99_999
EXAMPLE_PROBLEM = "Start with 37. Add 48. Multiply by 6. Subtract 125."

_OPS = {"add": "+", "sub": "-", "mul": "*"}
_SYMBOL_FN = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclass(frozen=True)
class Level:
    n_ops: int
    start: tuple[int, int]
    addend: tuple[int, int]
    multiplier: tuple[int, int]
    min_muls: int


LEVELS: dict[int, Level] = {
    1: Level(n_ops=2, start=(2, 20), addend=(1, 20), multiplier=(2, 5), min_muls=0),
    2: Level(n_ops=3, start=(10, 99), addend=(10, 99), multiplier=(2, 9), min_muls=1),
    3: Level(n_ops=3, start=(10, 99), addend=(10, 999), multiplier=(3, 9), min_muls=1),
    4: Level(n_ops=4, start=(10, 99), addend=(10, 999), multiplier=(11, 30), min_muls=1),
    5: Level(n_ops=5, start=(100, 999), addend=(100, 9999), multiplier=(11, 99), min_muls=2),
}


@dataclass(frozen=True)
class Problem:
    """One arithmetic chain. ``ops`` is a tuple of (symbol, operand)."""

    start: int
    ops: tuple[tuple[str, int], ...]
    difficulty: int | None = None
    uid: str | None = None

    @property
    def text(self) -> str:
        words = {"+": "Add {}.", "-": "Subtract {}.", "*": "Multiply by {}."}
        return " ".join([f"Start with {self.start}."] + [words[s].format(b) for s, b in self.ops])

    @property
    def values(self) -> list[int]:
        """The running value after each operation (excluding the start)."""
        out, v = [], self.start
        for sym, b in self.ops:
            v = _SYMBOL_FN[sym](v, b)
            out.append(v)
        return out

    @property
    def answer(self) -> int:
        return self.values[-1] if self.ops else self.start

    @property
    def steps(self) -> list[str]:
        out, v = [], self.start
        for (sym, b), nv in zip(self.ops, self.values):
            out.append(f"{v} {sym} {b} = {nv}")
            v = nv
        return out + [f"{ANSWER_PREFIX}{self.answer}"]

    @property
    def solution(self) -> str:
        return STEP_DELIMITER.join(self.steps)

    def to_dict(self) -> dict:
        return {"uid": self.uid, "text": self.text, "answer": str(self.answer),
                "difficulty": self.difficulty, "steps": self.steps}


def generate(seed: int, difficulty: int | None = None) -> Problem:
    """The problem for ``seed``; the difficulty is drawn from the seed unless given."""
    rng = random.Random(seed)
    level_id = difficulty if difficulty is not None else rng.randint(1, 5)
    level = LEVELS[level_id]
    while True:
        start = rng.randint(*level.start)
        kinds = ["mul"] * level.min_muls + [rng.choice(["add", "sub", "mul"])
                                            for _ in range(level.n_ops - level.min_muls)]
        rng.shuffle(kinds)
        ops, v, ok = [], start, True
        for kind in kinds:
            if kind == "mul":
                b = rng.randint(*level.multiplier)
            elif kind == "sub":
                lo, hi = level.addend
                if v - lo < 0:
                    kind, b = "add", rng.randint(lo, hi)
                else:
                    b = rng.randint(lo, min(hi, v))
            else:
                b = rng.randint(*level.addend)
            v = _SYMBOL_FN[_OPS[kind]](v, b)
            if v > MAX_VALUE:
                ok = False
                break
            ops.append((_OPS[kind], b))
        if ok:
            return Problem(start=start, ops=tuple(ops), difficulty=level_id)


def problem_at(split: str, index: int) -> Problem:
    """Problem ``index`` of a split. Test and dev cycle through difficulties 1..5 so any prefix is balanced."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if index < 0:
        raise ValueError("problem index must be non-negative")
    difficulty = None if split == "train" else index % 5 + 1
    p = generate(SPLITS[split] + index, difficulty)
    return Problem(p.start, p.ops, p.difficulty, uid=f"{split}:{index}")


def random_problem(difficulty: int, rng: random.Random) -> Problem:
    """A fresh problem of a difficulty, drawn from seeds outside every split."""
    seed = 90_000_000 + rng.randrange(9_000_000)
    p = generate(seed, difficulty)
    return Problem(p.start, p.ops, p.difficulty, uid=f"seed:{seed}:{difficulty}")


_PROBLEM_RE = re.compile(r"^\s*start with (\d+)\s*\.((?:\s*(?:add \d+|subtract \d+|multiply by \d+)\s*\.)+)\s*$",
                         re.IGNORECASE)
_OP_RE = re.compile(r"(add|subtract|multiply by) (\d+)", re.IGNORECASE)


class ProblemFormatError(ValueError):
    """A problem text outside the grammar the embedded models understand."""


def parse_problem(text: str) -> Problem:
    """Parse a user's problem text; raises ProblemFormatError with an example when it is not in the grammar."""
    m = _PROBLEM_RE.match(" ".join(text.split()))
    if not m:
        raise ProblemFormatError(
            "The embedded model only understands arithmetic chains such as "
            f"'{EXAMPLE_PROBLEM}' (start with a whole number, then 1 to 5 of Add N. / Subtract N. / "
            "Multiply by N.).")
    sym = {"add": "+", "subtract": "-", "multiply by": "*"}
    ops = tuple((sym[o.lower()], int(b)) for o, b in _OP_RE.findall(m.group(2)))
    if not 1 <= len(ops) <= 6:
        raise ProblemFormatError(f"Use 1 to 6 operations, for example '{EXAMPLE_PROBLEM}'.")
    p = Problem(start=int(m.group(1)), ops=ops)
    if any(abs(v) > MAX_VALUE for v in [p.start, *p.values]):
        raise ProblemFormatError(f"Keep every number below {MAX_VALUE + 1}, for example '{EXAMPLE_PROBLEM}'.")
    if any(v < 0 for v in p.values):
        raise ProblemFormatError("Keep every intermediate value non-negative.")
    return Problem(p.start, p.ops, estimate_difficulty(p), uid=None)


def estimate_difficulty(p: Problem) -> int:
    """The level whose limits a user's problem fits, for per-difficulty breakdowns."""
    for level_id, level in LEVELS.items():
        muls = [b for s, b in p.ops if s == "*"]
        if len(p.ops) <= level.n_ops and all(b <= level.multiplier[1] for b in muls) \
                and all(b <= level.addend[1] for s, b in p.ops if s != "*") and p.start <= level.start[1]:
            return level_id
    return 5


def split_steps(text: str) -> list[str]:
    """Steps of a solution text. A trailing delimiter does not make an empty last step."""
    return [s for s in text.split(STEP_DELIMITER) if s.strip()]


_ANSWER_RE = re.compile(r"The answer is\s*(-?\d+)")


def extract_answer(text: str) -> str | None:
    """The final answer of a solution, or None when it has no final-answer line."""
    m = _ANSWER_RE.search(text)
    return m.group(1).lstrip("0") or "0" if m else None


_VALUE_RE = re.compile(r"=\s*(-?\d+)\s*$")


def step_value(step: str) -> int | None:
    """The running value a solution step reached: the number after its ``=`` (``85 * 6 = 510`` reached 510), or
    the answer of a final-answer line; None when the step has neither."""
    answer = extract_answer(step)
    if answer is not None:
        return int(answer)
    m = _VALUE_RE.search(step)
    return int(m.group(1)) if m else None


def is_correct(problem: Problem, answer: str | None) -> bool:
    return answer is not None and answer.lstrip("-").isdigit() and int(answer) == problem.answer


def step_labels(problem: Problem, steps: list[str]) -> list[int]:
    """Exact per-step labels with first-error semantics: 1 while every step so far is right.

    A step is right when it is the canonical next step of the chain, so a wrong operand copied from
    the problem, a wrong running value or a wrong result all make it wrong, and so does every step
    after it. This is the exact check, which on this task replaces Math-Shepherd's rollouts at no cost.
    """
    truth = problem.steps
    labels, ok = [], True
    for i, step in enumerate(steps):
        ok = ok and i < len(truth) and " ".join(step.split()) == truth[i]
        labels.append(int(ok))
    return labels


CORRECT_VERDICT = "Verdict: correct"
CRITIC_CUE = "Check:"


def critic_prompt(problem_text: str, steps: list[str]) -> str:
    """What the embedded critic reads before it writes ``critique_of``'s form: the problem, the (partial)
    solution one step a line, and the cue line that starts the critique."""
    return problem_text + STEP_DELIMITER + "".join(s + STEP_DELIMITER for s in steps) + CRITIC_CUE + STEP_DELIMITER


def critique_of(problem: Problem, steps: list[str]) -> tuple[str, int | None, list[bool]]:
    """The exact critique of a (partial) solution, in the form the embedded critic is trained to write: one
    check line per step up to the first wrong one (``2: 85 * 6 = 510 ok``, or ``3: 510 - 125 = 395 wrong, 385``
    with the right step after the comma), then ``Verdict: correct`` or ``Verdict: step 3 wrong``. Returns the
    text, the verdict (None: correct; i: the first wrong step, 1-based) and the per-step checks."""
    truth, lines, checks = problem.steps, [], []
    for i, step in enumerate(steps, 1):
        ok = i <= len(truth) and " ".join(step.split()) == truth[i - 1]
        checks.append(ok)
        lines.append(f"{i}: {' '.join(step.split())} " + ("ok" if ok else
                     "wrong, " + (truth[i - 1] if i <= len(truth) else "nothing more")))
        if not ok:
            return "\n".join(lines + [f"Verdict: step {i} wrong"]), i, checks
    return "\n".join(lines + [CORRECT_VERDICT]), None, checks
