"""Monte Carlo tree search over reasoning steps with PUCT selection and the PRM as value.

Follows the MCTS of "Enhancing Test-Time Scaling of Large Language Models with Hierarchical
Retrieval-Augmented MCTS" without the retrieval: select by PUCT, expand ``width`` children, evaluate,
back up.

What the budget buys: ``iterations`` expansions, each one batched generation of ``width`` next steps (plus,
with ``rollout=true``, one roll-out to the end) and their verifier scores. Every counted iteration generates:
selection never descends into a subtree whose nodes are all finished, so no iteration is spent re-selecting a
finished leaf, and the search ends early (with fewer iterations) once the whole tree is finished.

Choices where the paper is silent:
- priors are uniform over a node's children (the policy's step probabilities are not exposed by every
  backend); an unvisited child's Q is its PRM score, so the first visits follow the verifier;
- PUCT chooses among the children that still have an unfinished node below them; a finished leaf's value
  reaches its ancestors once, in the backup of the expansion that made it;
- evaluation scores the new children with the PRM and, with ``rollout=true``, rolls the best new child
  out to the end and uses the final answer's score as the value; rollouts are counted in the compute
  like every other generation, and their final answers join the candidate pool;
- the answer is the best-scored finished candidate (tree leaves and rollouts). MCTS often does not beat
  best-of-N at equal compute: the app shows that as it is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, best_scored, check, finish, score_nodes
from strategies.core import CancelToken, Event, Node, NodeStats, SearchSpace, StepDone
from strategies.params import param


@dataclass(frozen=True)
class Params:
    iterations: int = param(16, "Iterations: expansions (select, expand width children, evaluate, back up).",
                            lo=1, hi=1024)
    width: int = param(3, "Children generated when a leaf is expanded.", lo=1, hi=32)
    c_puct: float = param(1.0, "Exploration weight in PUCT.", lo=0.0, hi=100.0)
    rollout: bool = param(True, "Roll the best new child out to the end and back up its final score.")


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    scores: dict[str, float] = {}
    visits: dict[str, int] = {}
    value_sum: dict[str, float] = {}
    children: dict[str, list[Node]] = {}
    exhausted: set[str] = set()  # finished nodes, and nodes whose children are all exhausted
    candidates: list[Node] = []
    root = space.initial(1)[0]
    yield from add_nodes([root])

    def q(n: Node) -> float:
        return value_sum[n.id] / visits[n.id] if visits.get(n.id) else scores.get(n.id, 0.0)

    def puct(parent: Node, child: Node) -> float:
        prior = 1.0 / len(children[parent.id])
        return q(child) + params.c_puct * prior * math.sqrt(visits.get(parent.id, 0) + 1) / (1 + visits.get(child.id, 0))

    for it in range(1, params.iterations + 1):
        if root.id in exhausted:
            break
        check(cancel)
        path = [root]
        node = root
        while node.id in children:
            node = max((c for c in children[node.id] if c.id not in exhausted), key=lambda c: puct(path[-1], c))
            path.append(node)
        kids = space.extend([node], params.width)[0]
        children[node.id] = kids
        yield from add_nodes(kids)
        yield from score_nodes(space, kids, scores)
        candidates += [k for k in kids if k.finished]
        exhausted.update(k.id for k in kids if k.finished)
        for n in reversed(path):
            if n.id in children and all(c.id in exhausted for c in children[n.id]):
                exhausted.add(n.id)
        best = best_scored(kids, scores)
        path.append(best)
        value = scores[best.id]
        if params.rollout and not best.finished:
            check(cancel)
            final = space.complete([best])
            yield from add_nodes(final)
            yield from score_nodes(space, final, scores)
            candidates += [f for f in final if f.finished]
            value = scores[final[0].id]
        for n in path:
            visits[n.id] = visits.get(n.id, 0) + 1
            value_sum[n.id] = value_sum.get(n.id, 0.0) + value
            yield NodeStats(id=n.id, visits=visits[n.id], value=value_sum[n.id] / visits[n.id])
        yield StepDone(step=it)
    yield from finish(space, candidates, scores, best_scored(candidates, scores))
