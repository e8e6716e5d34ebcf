"""A guided lesson's experiment: a few arms (a model, a strategy, a budget) run on the same small problem set,
summed up per arm and per difficulty, and the lesson's claim checked against those numbers.

The Learn tab plays the stored version (``ui/examples.db``, written by ``python -m ui.examples``) and can run
the same arms live; both go through :func:`summarize` and :func:`check`, so the verdict a student reads is
computed from the runs on show, never written in advance.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterator

from engine.run import RunConfig, execute
from strategies.core import CancelToken

log = logging.getLogger(__name__)

TAG_PREFIX = "lesson:"


@dataclass(frozen=True)
class Arm:
    """One column of the experiment: RunConfig fields other than the problem."""

    key: str
    label: str
    config: dict


@dataclass(frozen=True)
class Claim:
    """What the lesson says the numbers show: ``better`` beats ``worse`` on ``metric`` ("accuracy": the share
    judged correct; "score": the search verifier's mean score of the chosen answer), over all problems or only
    those of ``difficulties``."""

    better: str
    worse: str
    metric: str = "accuracy"
    difficulties: tuple[int, ...] = ()


@dataclass(frozen=True)
class Row:
    """One finished run of an arm on a problem."""

    arm: str
    problem: str
    difficulty: int | None
    correct: bool
    score: float | None
    flops: float
    tokens: float
    run_id: str


@dataclass
class ArmSummary:
    arm: Arm
    rows: list[Row] = field(default_factory=list)

    def subset(self, difficulties: tuple[int, ...] = ()) -> list[Row]:
        return [r for r in self.rows if not difficulties or r.difficulty in difficulties]

    def accuracy(self, difficulties: tuple[int, ...] = ()) -> float | None:
        rows = self.subset(difficulties)
        return sum(r.correct for r in rows) / len(rows) if rows else None

    def score(self, difficulties: tuple[int, ...] = ()) -> float | None:
        scores = [r.score for r in self.subset(difficulties) if r.score is not None]
        return sum(scores) / len(scores) if scores else None

    def mean_flops(self) -> float:
        return sum(r.flops for r in self.rows) / len(self.rows) if self.rows else 0.0

    def mean_tokens(self) -> float:
        return sum(r.tokens for r in self.rows) / len(self.rows) if self.rows else 0.0

    def metric(self, name: str, difficulties: tuple[int, ...] = ()) -> float | None:
        return self.accuracy(difficulties) if name == "accuracy" else self.score(difficulties)


def tag(arm: str) -> str:
    """The ``sweep_id`` a lesson's run is stored under. Arm keys are shared across lessons (an arm with the
    same key has the same config everywhere), so two lessons that compare against the same arm share its
    stored runs."""
    return f"{TAG_PREFIX}{arm}"


def row_of(arm: str, run: dict) -> Row:
    """A stored run row (``RunStore.get_run`` / ``list_runs``) as a lesson row."""
    totals = run.get("totals") or {}
    return Row(arm=arm, problem=str(run.get("problem_uid")), difficulty=run.get("difficulty"),
               correct=bool(run.get("correct")), score=run.get("score"), flops=float(totals.get("flops") or 0),
               tokens=float(totals.get("generated_tokens") or 0), run_id=str(run.get("id")))


def stored_rows(store, arms: list[Arm], problems: tuple[str, ...]) -> list[Row]:
    """The finished stored runs of ``arms`` on ``problems``."""
    wanted = set(problems)
    out = []
    for arm in arms:
        for run in store.list_runs(sweep_id=tag(arm.key), status="finished", limit=10_000):
            if run.get("problem_uid") in wanted:
                out.append(row_of(arm.key, run))
    return out


def run_lesson(arms: list[Arm], problems: list[str], store, cancel: CancelToken | None = None,
               limits=None) -> Iterator[Row]:
    """Run every arm on every problem (problem by problem, so a stopped run still compares the arms on the same
    problems) and yield each finished run's row. ConfigError from a refused arm propagates before any run."""
    from engine.run import prepare
    cancel = cancel or CancelToken()
    for arm in arms:  # refuse a budget over the caps before spending anything
        prepare(RunConfig(**arm.config, problem_id=problems[0]), limits)
    for problem in problems:
        for arm in arms:
            cancel.check()
            last: dict = {}
            for last in execute(RunConfig(**arm.config, problem_id=problem, sweep_id=tag(arm.key)), store,
                                cancel, limits):
                pass
            cancel.check()  # a run stopped half way is not a result
            run = store.get_run(last["run_id"]) or {}
            log.debug("lesson arm %s on %s: run %s, %s", arm.key, problem, run.get("id"),
                      "right" if run.get("correct") else "wrong")
            yield row_of(arm.key, run)


def summarize(arms: list[Arm], rows: list[Row]) -> dict[str, ArmSummary]:
    """Arm key -> its rows, in the lessons' arm order, over the problems every arm has finished (a live run
    stopped half way compares like with like)."""
    done: dict[str, set[str]] = {a.key: set() for a in arms}
    for r in rows:
        if r.arm in done:
            done[r.arm].add(r.problem)
    common = set.intersection(*done.values()) if done else set()
    out = {a.key: ArmSummary(a) for a in arms}
    for r in rows:
        if r.arm in out and r.problem in common:
            out[r.arm].rows.append(r)
    return out


def check(claim: Claim, summaries: dict[str, ArmSummary]) -> tuple[bool | None, str]:
    """Whether the numbers on show bear the claim out (None: no runs yet), with one plain sentence saying so."""
    better, worse = summaries[claim.better], summaries[claim.worse]
    a, b = better.metric(claim.metric, claim.difficulties), worse.metric(claim.metric, claim.difficulties)
    if a is None or b is None:
        return None, "No runs to judge the claim on yet."
    where = f" on difficulty {', '.join(map(str, claim.difficulties))}" if claim.difficulties else ""
    what = "right" if claim.metric == "accuracy" else "scored"
    fmt = (lambda x: f"{x:.0%}") if claim.metric == "accuracy" else (lambda x: f"{x:.3f}")
    n = len(better.subset(claim.difficulties))
    numbers = f"{better.arm.label} {what} {fmt(a)}, {worse.arm.label} {fmt(b)} ({n} problems{where})"
    if a > b:
        return True, f"The claim holds here: {numbers}."
    if a == b:
        return False, f"A tie here, so the claim is not shown: {numbers}."
    return False, f"The claim does not hold here: {numbers}."
