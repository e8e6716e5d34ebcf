"""Greedy decoding (temperature 0): the baseline every test-time method is measured against.

One chain, one step at a time, no verifier. It is the "budget 1" point of every scaling curve.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, check, finish
from strategies.core import CancelToken, Event, SearchSpace, StepDone
from strategies.params import param


@dataclass(frozen=True)
class Params:
    n: int = param(1, "Ignored: greedy decoding produces one chain.", lo=1, hi=1)


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    node = space.initial(1)[0]
    yield from add_nodes([node])
    for step in range(1, space.max_steps + 1):
        check(cancel)
        node = space.extend([node], 1, temperature=0.0)[0][0]
        yield from add_nodes([node])
        yield StepDone(step=step)
        if node.finished:
            break
    yield from finish(space, [node] if node.finished else [], {}, node if node.finished else None)
