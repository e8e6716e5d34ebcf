"""Diverse verifier tree search (DVTS): N/M independent subtrees, each greedy over M candidates per step.

Follows DVTS as used in "Can 1B LLM Surpass 405B LLM? Rethinking Compute-Optimal Test-Time Scaling"
(search-and-learn). Each subtree starts from its own first step and never exchanges candidates with
another, which keeps the N/M final answers diverse where beam search collapses onto one prefix. Each
step, the first included (search-and-learn's ``_dvts``: every subtree starts at the question), every open
subtree expands its current node into candidates and keeps the best-scored one; a subtree ends when that
child is final.

What the budget buys: N step generations at every step (and N verifier scores), for at most
``max_steps`` steps, like beam search at the same N.

Choices where the paper is silent or that differ from search-and-learn:
- a finished subtree's share goes to the open ones: the open subtrees split the N generations of a step
  (M each while all are open; N // open, the first N % open one more, once some have finished), where
  search-and-learn lets a finished subtree's M generations go unspent; subtrees still never exchange
  candidates, they only draw more of their own;
- the step limit is the domain's: a subtree whose chain reaches it without an answer ends there, answerless,
  and its result competes as such (search-and-learn generates to EOS at its last iteration);
- the answer is the best-scored subtree result (``select=best``) or their weighted vote.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, best_scored, check, finish, score_nodes, spread_extend, weighted_vote
from strategies.core import CancelToken, Event, Node, NodePruned, SearchSpace, StepDone
from strategies.params import param


@dataclass(frozen=True)
class Params:
    n: int = param(16, "N: total candidates per step across all subtrees.", lo=1, hi=1024)
    beam_width: int = param(4, "M: candidates per subtree per step; there are N/M subtrees.", lo=1, hi=64)
    select: str = param("best", "Final pick among subtree results.", choices=("best", "weighted"))

    def check(self) -> None:
        if self.beam_width > self.n:
            raise ValueError(f"beam_width M={self.beam_width} cannot exceed N={self.n}")


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    n_trees = max(1, params.n // params.beam_width)
    scores: dict[str, float] = {}
    root = space.initial(1)[0]
    yield from add_nodes([root])
    # Step 1 as in search-and-learn: every subtree samples its own M first steps from the question and keeps
    # the best, so step 1 costs N like every later step and the subtrees differ from the start.
    check(cancel)
    firsts = space.extend([root], n_trees * params.beam_width)[0]
    yield from add_nodes(firsts)
    yield from score_nodes(space, firsts, scores)
    heads: list[Node] = [root] * n_trees  # one current node per subtree
    m = params.beam_width
    yield from _keep_best(heads, range(n_trees), [firsts[i * m:(i + 1) * m] for i in range(n_trees)], scores)
    yield StepDone(step=1)
    for step in range(2, space.max_steps + 1):
        open_idx = [i for i, h in enumerate(heads) if not h.finished]
        if not open_idx:
            break
        check(cancel)
        groups = spread_extend(space, [heads[i] for i in open_idx], params.n)
        flat = [c for g in groups for c in g]
        yield from add_nodes(flat)
        yield from score_nodes(space, flat, scores)
        yield from _keep_best(heads, open_idx, groups, scores)
        yield StepDone(step=step)
    finished = [h for h in heads if h.finished]
    chosen = weighted_vote(space, finished, scores) if params.select == "weighted" else best_scored(finished, scores)
    yield from finish(space, finished, scores, chosen)


def _keep_best(heads: list[Node], subtrees, groups: list[list[Node]], scores: dict[str, float]) -> Iterator[Event]:
    """Each listed subtree moves its head to the best-scored node of its group; the rest are pruned."""
    for i, group in zip(subtrees, groups):
        heads[i] = best_scored(group, scores)
        for c in group:
            if c is not heads[i]:
                yield NodePruned(id=c.id, reason=f"subtree {i}: not the best of {len(group)}")
