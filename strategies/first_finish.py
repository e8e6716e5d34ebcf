"""First finish search: launch N samples in parallel and keep the first one to finish.

Follows "First Finish Search: Efficient Test-Time Scaling in Large Language Models": shorter traces are
more often correct, so the first sample to end is returned and the others are stopped, which saves
their remaining tokens. Samples advance one step at a time in one batch; when several finish in the same
step, the one with the fewest generated tokens wins (ties: the earliest). No verifier is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, check, finish
from strategies.core import CancelToken, Event, Node, NodePruned, SearchSpace, StepDone
from strategies.params import param


@dataclass(frozen=True)
class Params:
    n: int = param(16, "N: samples launched in parallel.", lo=1, hi=1024)


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    root = space.initial(1)[0]
    yield from add_nodes([root])
    tokens: dict[str, int] = {root.id: 0}
    live: list[Node] = [root] * params.n
    winner: Node | None = None
    for step in range(1, space.max_steps + 1):
        check(cancel)
        groups = space.extend([root], params.n) if step == 1 else space.extend(live, 1)
        live = [c for g in groups for c in g]
        for c in live:
            tokens[c.id] = tokens[c.parent] + c.cost.generated_tokens
        yield from add_nodes(live)
        done = [c for c in live if c.finished]
        if done:
            winner = min(done, key=lambda c: tokens[c.id])
            for c in live:
                if c is not winner:
                    yield NodePruned(id=c.id, reason=f"stopped at step {step}: another sample finished first")
            yield StepDone(step=step)
            break
        yield StepDone(step=step)
    yield from finish(space, [winner] if winner else [], {}, winner)
