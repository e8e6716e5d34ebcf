"""Particle filtering over reasoning steps.

Follows "A Probabilistic Inference Approach to Inference-Time Scaling of LLMs using Particle-Based Monte
Carlo Methods" (Puri et al.): N particles advance one step at a time; the PRM's score r of each partial
solution sets its weight w = softmax(logit(r) / T) over the population (not softmax(r), which is nearly
flat for scores in [0, 1]); the population is resampled (multinomial) at every step. Choices where the
paper is silent or offers options:
- ``finished=compete`` keeps finished particles in the population with their final weight, so a good
  finished answer can take over; ``finished=freeze`` sets them aside and resamples only the open ones;
- copies of a finished particle stay finished; copies of an open particle each draw their own next step;
- a particle is pruned at a step when no copy of it survives that step's resampling (a finished particle can
  sit in the population several times; it is pruned once, and only if every copy was left out);
- the step limit is the domain's: a particle whose chain reaches it without an answer is finished there,
  answerless, and stays in the population as such (weighted by its score) instead of being rolled out;
- the answer is the best-scored finished particle (``select=best``) or the weighted vote.
The parent index of every particle at every resampling is recorded in ``Resampled.ancestors``.

What the budget buys: N particles, so at most N step generations per step (fewer once particles finish:
finished copies generate nothing) and a verifier score for every new step, for at most ``max_steps`` steps.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Iterator

from strategies import smc
from strategies.common import add_nodes, best_scored, check, finish, score_nodes, weighted_vote
from strategies.core import CancelToken, Event, Node, NodePruned, Resampled, SearchSpace, StepDone
from strategies.params import param


@dataclass(frozen=True)
class Params:
    n: int = param(16, "N: particles, so at most N step generations (and verifier scores) per step.", lo=1,
                   hi=1024)
    temperature: float = param(1.0, "T in softmax(logit(r)/T): lower T resamples more greedily.", lo=0.01, hi=100.0)
    finished: str = param("compete", "Finished particles stay in resampling (compete) or are set aside (freeze).",
                          choices=("compete", "freeze"))
    select: str = param("best", "Final pick among finished particles.", choices=("best", "weighted"))


def weights(rewards: list[float], temperature: float) -> list[float]:
    """softmax(logit(r)/T), computed stably; rewards are clipped away from 0 and 1."""
    logits = []
    for r in rewards:
        r = min(max(r, 1e-6), 1 - 1e-6)
        logits.append(math.log(r / (1 - r)) / temperature)
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


ess = smc.ess  # shared with FK steering (strategies/smc.py)


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    rng = random.Random(space.seed)
    scores: dict[str, float] = {}
    root = space.initial(1)[0]
    yield from add_nodes([root])
    check(cancel)
    population: list[Node] = space.extend([root], params.n)[0]
    aside: list[Node] = []
    yield from add_nodes(population)
    for step in range(1, space.max_steps + 1):
        yield from score_nodes(space, [p for p in population if p.id not in scores], scores)
        if params.finished == "freeze":
            aside += [p for p in population if p.finished and all(p is not a for a in aside)]
            population = [p for p in population if not p.finished]
        if not population:
            yield StepDone(step=step)
            break
        ws = weights([scores[p.id] for p in population], params.temperature)
        ancestors = smc.multinomial(ws, rng)
        resampled = [population[a] for a in ancestors]
        survivors = {p.id for p in resampled}
        # by id, not index: copies of one finished particle share a node, which survives if any copy is drawn
        for pid in dict.fromkeys(p.id for p in population if p.id not in survivors):
            yield NodePruned(id=pid, reason=f"not resampled at step {step}")
        yield Resampled(step=step, particles=[p.id for p in resampled], ancestors=ancestors, weights=ws, ess=ess(ws))
        yield StepDone(step=step)
        population = resampled
        open_idx = [i for i, p in enumerate(population) if not p.finished]
        if not open_idx:
            break
        check(cancel)
        grown = [g[0] for g in space.extend([population[i] for i in open_idx], 1)]
        yield from add_nodes(grown)
        for i, child in zip(open_idx, grown):
            population[i] = child
    finished = {p.id: p for p in aside + population if p.finished}
    pool = list(finished.values())
    chosen = weighted_vote(space, pool, scores) if params.select == "weighted" else best_scored(pool, scores)
    yield from finish(space, pool, scores, chosen)
