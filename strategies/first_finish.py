"""First finish search: launch N samples in parallel and keep the first one to finish.

Follows "First Finish Search: Efficient Test-Time Scaling in Large Language Models": shorter traces are
more often correct, so the first sample to end is returned and the others are stopped at that moment,
which saves their remaining tokens. The N samples decode in one batch (``space.race``, an optional
``SearchSpace`` method the reasoning domain offers); the batch ends at the token where the first sample
ends, so every other sample has generated exactly as many tokens as the winner. No verifier is used.

What the budget buys: N samples decoded together until the first ends, at most N x the winner's length
in generated tokens; best-of-N at the same N and seed draws the same samples to their ends, so the
difference is what first finish saved. Choices where the paper is silent: when several samples end on
the same token, the first in batch order wins; when none ends before the token limit, every sample is
a finished (answerless or not) roll-out and the shortest wins, as in best-of-N's table; a backend that
cannot stop its other samples (an OpenAI-compatible server, vLLM) generates them to their ends and is
charged so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, check, finish
from strategies.core import CancelToken, Event, NodePruned, SearchSpace, StepDone
from strategies.params import param


@dataclass(frozen=True)
class Params:
    n: int = param(16, "N: samples decoded together until the first one ends.", lo=1, hi=1024)


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    root = space.initial(1)[0]
    yield from add_nodes([root])
    check(cancel)
    samples = space.race([root] * params.n)
    yield from add_nodes(samples)
    done = [s for s in samples if s.finished]
    winner = min(done, key=lambda s: s.cost.generated_tokens) if done else None  # min keeps the first on ties
    for s in samples:
        if s is not winner:
            yield NodePruned(id=s.id, reason="stopped: another sample finished first")
    yield StepDone(step=1)
    yield from finish(space, [winner] if winner else [], {}, winner)
