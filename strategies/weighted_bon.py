"""Weighted best-of-N: sum verifier scores per canonical answer and return the answer with the largest sum.

Follows the weighted majority of "Can 1B LLM Surpass 405B LLM? Rethinking Compute-Optimal Test-Time
Scaling". Answers are compared after the domain's canonicalisation (``space.extract``), so "044" and
"44" pool their scores, and by the domain's ``same_answer`` where it has one (math-verify on free-form math:
``\\frac12`` and ``0.5`` pool too); candidates without an answer cast no vote. The representative node of the winning
answer is its best-scored candidate. ``select=pessimistic`` ranks the answers instead by Heimdall's
pessimistic score (``strategies/pessimistic.py``): verification rate minus an uncertainty penalty, not a sum.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.best_of_n import sample_and_score
from strategies.common import finish, weighted_vote
from strategies.core import CancelToken, Event, SearchSpace
from strategies.params import param
from strategies.pessimistic import DEFAULT_ALPHA, pessimistic_pick


@dataclass(frozen=True)
class Params:
    n: int = param(16, "N: number of complete samples drawn.", lo=1, hi=1024)
    select: str = param("sum", "Answer ranking: summed scores, or Heimdall's pessimistic score.",
                        choices=("sum", "pessimistic"))
    alpha: float = param(DEFAULT_ALPHA, "Pessimism weight of select=pessimistic (0: highest verification rate).",
                         lo=0.0, hi=10.0)


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    scores: dict[str, float] = {}
    verifications: dict[str, int] = {}
    leaves = yield from sample_and_score(space, params.n, cancel, scores, verifications=verifications)
    finished = [n for n in leaves if n.finished]
    chosen = (pessimistic_pick(space, finished, scores, verifications, params.alpha)
              if params.select == "pessimistic" else weighted_vote(space, finished, scores))
    yield from finish(space, finished, scores, chosen)
