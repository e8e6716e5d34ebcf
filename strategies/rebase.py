"""REBASE: reward-balanced tree search.

The method of Wu et al., "Inference Scaling Laws: An Empirical Analysis of Compute-Optimal Inference for
Problem-Solving with Language Models" (2024), as its reference code runs it (github thu-wyz/inference_scaling,
``rebase.py``). That paper is not among the seed papers (the registry says so); ETS, a seed paper, is built on
its code and uses it as its baseline.

Every step, the open candidates of the last step are the frontier, and the expansion width W is split over them
in proportion to softmax(score / T): a well-scored partial solution gets many children, a poor one few or none
(none: it is pruned). Nothing is kept aside, so the tree stays as wide as the budget (unlike beam search's N/M).

What the budget buys: N chains. The first step samples N children of the question; after that W is N minus the
chains finished so far (the reference's ``remaining_width``: a chain that finishes leaves the frontier and takes
its slot with it), so every step generates W steps (and W verifier scores), and the run ends with N finished
chains, or at the step limit.

Choices where the paper is silent (the reference's where it has one):
- rounding, the reference's: candidates in score order each take ceil(W_left * w_i / S_left) children, W_left
  and S_left being the width and the softmax mass not yet handed out; the last one takes what is left, so the
  shares add up to exactly W, favour the best-scored candidates, and a poor candidate gets 0 once W is spent;
  ties in score keep the order the candidates were generated in;
- T defaults to the reference's 0.2; the score is the space's aggregation of the PRM's step scores ("last" as
  the reference by default);
- the step limit is the domain's: a chain that reaches it without an answer is finished there, answerless, and
  competes as such (the reference stops at 25 steps or its token limit);
- the answer is the weighted vote over the finished chains (``select=weighted``, the paper's weighted majority
  vote) or the best-scored one (``select=best``);
- the KV cache the kept tree needs is reported at every step (``KVCacheKept``: the tokens of the candidates given
  a share and of their ancestors, shared prefixes once; step 1 keeps only the prompt, which counts 0), and its
  mean and peak over the steps in ``RunFinished.stats``, to set against ETS's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

from strategies.common import (add_nodes, best_scored, check, extend_shares, finish, kept_kv_tokens, score_nodes,
                               weighted_vote)
from strategies.core import CancelToken, Event, KVCacheKept, Node, NodePruned, SearchSpace, StepDone
from strategies.params import param

# (frontier best first, its REBASE shares, every node by id) -> (the candidates kept, why the others were dropped)
Prune = Callable[[list[Node], list[int], dict[str, Node]], tuple[list[Node], str]]


class TreeParams(Protocol):
    """What the loop reads of a strategy's parameters: REBASE's and ETS's both have these."""

    n: int
    temperature: float
    select: str


@dataclass(frozen=True)
class Params:
    n: int = param(16, "N: chains; the first step samples N, each later step N minus the chains finished so far "
                       "(and as many verifier scores).", lo=1, hi=1024)
    temperature: float = param(0.2, "T in softmax(score/T): a candidate's share of the step's expansions; lower T "
                                    "gives the best-scored more.", lo=0.01, hi=100.0)
    select: str = param("weighted", "Final pick: weighted vote over the finished chains, or the best-scored.",
                        choices=("weighted", "best"))


def allocate(scores: list[float], width: int, temperature: float) -> list[int]:
    """Children per candidate, in the order of ``scores``: ``width`` split in proportion to softmax(score / T) by
    the reference's sequential ceiling in score order (see the module docstring); the shares add up to ``width``."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: ties keep their order
    top = max(scores, default=0.0)
    weight = {i: math.exp((scores[i] - top) / temperature) for i in order}
    mass = sum(weight.values())
    left = width
    shares = [0] * len(scores)
    for pos, i in enumerate(order):
        if pos == len(order) - 1:
            share = left
        else:
            # the epsilon keeps float error from lifting an exact quotient (8.000000001) to the next integer
            share = min(left, math.ceil(left * weight[i] / mass - 1e-9)) if mass > 0 else 0
        shares[i] = share
        left -= share
        mass -= weight[i]
    return shares


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    yield from tree_search(space, params, cancel)


def tree_search(space: SearchSpace, params: TreeParams, cancel: CancelToken | None,
                prune: Prune | None = None) -> Iterator[Event]:
    """REBASE's loop; ``prune`` (ETS) drops frontier candidates before the width is split over the rest."""
    scores: dict[str, float] = {}
    root = space.initial(1)[0]
    yield from add_nodes([root])
    tree: dict[str, Node] = {root.id: root}
    frontier: list[Node] = [root]
    finished: list[Node] = []
    kept_kv: list[int] = []
    for step in range(1, space.max_steps + 1):
        check(cancel)
        width = params.n - len(finished)
        ranked = sorted(frontier, key=lambda c: -scores.get(c.id, 0.0))  # the root is never scored
        shares = allocate([scores.get(c.id, 0.0) for c in ranked], width, params.temperature)
        if prune is not None and len(ranked) > 1:
            kept, reason = prune(ranked, shares, tree)
            for c in ranked:
                if c not in kept:
                    yield NodePruned(id=c.id, reason=f"{reason} at step {step}")
            ranked = kept
            shares = allocate([scores[c.id] for c in ranked], width, params.temperature)
        for c, k in zip(ranked, shares):
            if k == 0:
                yield NodePruned(id=c.id, reason=f"no share of the {width} expansions at step {step}")
        parents = [c for c, k in zip(ranked, shares) if k > 0]
        kept_kv.append(kept_kv_tokens(parents, tree))
        yield KVCacheKept(step=step, tokens=kept_kv[-1])
        children = [c for group in extend_shares(space, parents, [k for k in shares if k > 0]) for c in group]
        tree.update((c.id, c) for c in children)
        yield from add_nodes(children)
        yield from score_nodes(space, children, scores)
        finished += [c for c in children if c.finished]
        frontier = [c for c in children if not c.finished]
        yield StepDone(step=step)
        if not frontier:
            break
    chosen = weighted_vote(space, finished, scores) if params.select == "weighted" else best_scored(finished, scores)
    stats = {"kept_kv_tokens_mean": sum(kept_kv) / len(kept_kv), "kept_kv_tokens_peak": max(kept_kv)}
    yield from finish(space, finished, scores, chosen, stats)
