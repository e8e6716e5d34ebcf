"""Majority vote (self-consistency): the most frequent canonical answer among N samples, no verifier.

Used as the verifier-free baseline in "Can 1B LLM Surpass 405B LLM? Rethinking Compute-Optimal
Test-Time Scaling". Answers vote together when the domain calls them equal (``same_answer``, as in weighted
best-of-N). Ties go to the answer seen first; no verifier is called, so none is charged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.best_of_n import sample_and_score
from strategies.common import finish, weighted_vote
from strategies.core import CancelToken, Event, SearchSpace
from strategies.params import param


@dataclass(frozen=True)
class Params:
    n: int = param(16, "N: number of complete samples drawn.", lo=1, hi=1024)


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    scores: dict[str, float] = {}
    leaves = yield from sample_and_score(space, params.n, cancel, scores, use_verifier=False)
    finished = [n for n in leaves if n.finished]
    yield from finish(space, finished, scores, weighted_vote(space, finished, None))
