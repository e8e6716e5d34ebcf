"""PRM-guided beam search with search-and-learn semantics.

Follows the beam search of "Can 1B LLM Surpass 405B LLM? Rethinking Compute-Optimal Test-Time
Scaling" (as implemented in Hugging Face's search-and-learn): N candidates per step; the verifier keeps
the top N/M unfinished ones; each survivor expands M children at the next step.

What the budget buys: N step generations at every step (and N verifier scores), for at most
``max_steps`` steps. When fewer than N/M unfinished candidates survive a step (the others finished), the
survivors share the N generations, as search-and-learn duplicates its surviving beams back up to N.

Choices where the paper is silent:
- a candidate that finishes (writes its final answer) leaves the beam and joins the finished pool;
  the search stops once N candidates have finished, no beam is left, or the step limit is reached;
- when N is not a multiple of the survivors, the best-scored survivors get one child more than the rest
  (search-and-learn cycles through its beams in list order);
- the step limit is the domain's: a chain that reaches it without an answer is finished there, answerless,
  and competes as such (search-and-learn instead generates to EOS at its last iteration);
- the answer is the best-scored finished candidate (``select=best``) or the weighted vote over the
  finished pool (``select=weighted``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, best_scored, check, finish, score_nodes, spread_extend, weighted_vote
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
    frontier: list[Node] = [root]  # best-scored first, so spread_extend gives any extra children to the best
    finished: list[Node] = []
    for step in range(1, space.max_steps + 1):
        check(cancel)
        children = [c for group in spread_extend(space, frontier, params.n) for c in group]
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
    chosen = weighted_vote(space, finished, scores) if params.select == "weighted" else best_scored(finished, scores)
    yield from finish(space, finished, scores, chosen)
