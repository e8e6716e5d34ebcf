"""PRM-guided beam search with search-and-learn semantics.

Follows the beam search of "Can 1B LLM Surpass 405B LLM? Rethinking Compute-Optimal Test-Time
Scaling" (as implemented in Hugging Face's search-and-learn): N candidates per step; the verifier keeps
the top N/M unfinished ones; each survivor expands M children at the next step, so every step costs N
step generations. Choices where the paper is silent:
- a candidate that finishes (writes its final answer) leaves the beam and joins the finished pool;
  the search stops once N candidates have finished, no beam is left, or the step limit is reached;
- at the step limit, the surviving unfinished beams are rolled out to the end (search-and-learn's last
  iteration generates to EOS) and scored, so they compete with the finished ones;
- the answer is the best-scored finished candidate (``select=best``) or the weighted vote over the
  finished pool (``select=weighted``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, best_scored, check, finish, score_nodes, weighted_vote
from strategies.core import CancelToken, Event, Node, NodePruned, SearchSpace, StepDone
from strategies.params import param


@dataclass(frozen=True)
class Params:
    n: int = param(16, "N: candidates generated at every step (the beam budget).", lo=1, hi=1024)
    beam_width: int = param(4, "M: children per surviving beam; N/M beams survive each step.", lo=1, hi=64)
    select: str = param("best", "Final pick: best-scored finished candidate, or weighted vote.",
                        choices=("best", "weighted"))

    def check(self) -> None:
        if self.beam_width > self.n:
            raise ValueError(f"beam_width M={self.beam_width} cannot exceed N={self.n}")


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    keep = max(1, params.n // params.beam_width)
    scores: dict[str, float] = {}
    root = space.initial(1)[0]
    yield from add_nodes([root])
    frontier: list[Node] = [root]
    finished: list[Node] = []
    for step in range(1, space.max_steps + 1):
        check(cancel)
        k = params.n if step == 1 else params.beam_width
        children = [c for group in space.extend(frontier, k) for c in group]
        yield from add_nodes(children)
        yield from score_nodes(space, children, scores)
        finished += [c for c in children if c.finished]
        open_ = sorted((c for c in children if not c.finished), key=lambda c: -scores[c.id])
        frontier = open_[:keep]
        for c in open_[keep:]:
            yield NodePruned(id=c.id, reason=f"not in top {keep} at step {step}")
        yield StepDone(step=step)
        if len(finished) >= params.n or not frontier:
            break
    else:
        check(cancel)
        rolled = space.complete(frontier)
        yield from add_nodes(rolled)
        yield from score_nodes(space, rolled, scores)
        finished += [n for n in rolled if n.finished]
        yield StepDone(step=space.max_steps + 1)
    chosen = weighted_vote(space, finished, scores) if params.select == "weighted" else best_scored(finished, scores)
    yield from finish(space, finished, scores, chosen)
