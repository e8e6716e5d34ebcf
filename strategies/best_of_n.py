"""Best-of-N: sample N complete solutions, keep the one the verifier scores highest.

Follows the best-of-N baseline of "Can 1B LLM Surpass 405B LLM? Rethinking Compute-Optimal Test-Time
Scaling". Samples are drawn in one batched rollout; with an ORM/PRM the score is the space's recorded
aggregation of per-step scores. Ties go to the earliest sample. On the image side the same algorithm is
random search over initial noises. ``select=pessimistic`` picks instead by Heimdall's pessimistic score
(``strategies/pessimistic.py``): the answer with the best verification rate penalised by its uncertainty.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, best_scored, check, finish, score_nodes
from strategies.core import CancelToken, Event, SearchSpace, StepDone
from strategies.params import param
from strategies.pessimistic import DEFAULT_ALPHA, pessimistic_pick


@dataclass(frozen=True)
class Params:
    n: int = param(16, "N: complete samples drawn (on images: N full samplings, N × steps NFE).",
                   lo=1, hi=1024)
    select: str = param("best", "Final pick: the best-scored sample, or Heimdall's pessimistic score per answer.",
                        choices=("best", "pessimistic"))
    alpha: float = param(DEFAULT_ALPHA, "Pessimism weight of select=pessimistic (0: highest verification rate).",
                         lo=0.0, hi=10.0)


def sample_and_score(space: SearchSpace, n: int, cancel: CancelToken | None, scores: dict[str, float],
                     use_verifier: bool = True, verifications: dict[str, int] | None = None) -> Iterator[Event]:
    """Shared by the best-of-N family: N samples from the root, scored in one batch; yields events, returns leaves."""
    root = space.initial(1)[0]
    yield from add_nodes([root])
    check(cancel)
    leaves = space.complete([root] * n)
    yield from add_nodes(leaves)
    if use_verifier:
        check(cancel)
        yield from score_nodes(space, leaves, scores, verifications)
    yield StepDone(step=1)
    return leaves


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    scores: dict[str, float] = {}
    verifications: dict[str, int] = {}
    leaves = yield from sample_and_score(space, params.n, cancel, scores, verifications=verifications)
    finished = [n for n in leaves if n.finished]
    chosen = (pessimistic_pick(space, finished, scores, verifications, params.alpha)
              if params.select == "pessimistic" else best_scored(finished, scores))
    yield from finish(space, finished, scores, chosen)
