"""EvoScale: a population of candidates evolved by selection on the critic's score and mutation by regeneration.

Satori-SWE's Evolutionary Test-Time Scaling ("Satori-SWE: Evolutionary Test-Time Scaling for Sample-Efficient
Software Engineering", Zeng et al. 2025) samples a population, keeps the outputs a verifier scores best, and
generates the next population conditioned on them, so the output distribution moves toward high scores with
few samples. Satori-SWE trains its model by RL to self-evolve without a verifier at inference; here the
conditioning is explicit and needs no training: a child keeps the steps of a selected parent before the first
step the parent's critique flags and regenerates the rest (the mutation), as ``refine`` revises an attempt.

Choices where the paper is silent: ``n`` (the budget) is the population size; each generation keeps the
``keep`` best by critique score (the share of ``critiques`` that call it correct; ties to the earlier) and
fills the rest of the population with their children, parents taken in rank order round-robin (elitism: a
parent stays in the population, so the best score never falls). A parent the critic accepts (nothing
flagged) is mutated from a step drawn uniformly by the run's seed. Evolution stops after ``generations``
generations, or early once the best candidate is accepted by every critique. The answer is the final
population's best-scored candidate. Total compute: n full solutions, then at most n - keep regenerated suffixes
per later generation (a suffix after the kept steps), each critiqued ``critiques`` times: at most
n + (generations - 1)(n - keep) solutions' worth of tokens, fewer by the steps kept.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, check, finish
from strategies.core import Attempt, CancelToken, Event, Node, SearchSpace, StepDone
from strategies.feedback import critique_nodes, need_critic, restart_point
from strategies.params import param
from strategies.stepping import advance


@dataclass(frozen=True)
class Params:
    n: int = param(8, "Population size: candidates per generation.", lo=2, hi=1024)
    generations: int = param(3, "Generations, the first sampled from scratch.", lo=1, hi=64)
    keep: int = param(2, "Parents kept per generation (the best by critique score); the rest are their children.",
                      lo=1, hi=1023)
    critiques: int = param(1, "Critiques of each candidate: its score is the share that call it correct.",
                           lo=1, hi=64)

    def check(self) -> None:
        if self.keep >= self.n:
            raise ValueError(f"parameter keep must be below the population size n ({self.n}), got {self.keep}")


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    need_critic(space, "evoscale")
    rng = random.Random(space.seed)
    root = space.initial(1)[0]
    yield from add_nodes([root])
    tree: dict[str, Node] = {root.id: root}
    scores: dict[str, float] = {}
    verdicts: dict[str, int | None] = {}
    population = yield from advance(space, [root] * params.n, space.max_steps, cancel, tree)
    for i, c in enumerate(population):
        yield Attempt(chain=i, round=0, id=c.id)
    everyone = list(population)
    yield from critique_nodes(space, population, params.critiques, scores, verdicts)
    yield StepDone(step=1)
    generations = 1
    for g in range(1, params.generations):
        check(cancel)
        ranked = sorted(population, key=lambda c: -scores[c.id])  # stable: ties to the earlier
        if scores[ranked[0].id] == 1.0:
            break
        parents = ranked[:params.keep]
        picks = [parents[j % len(parents)] for j in range(params.n - params.keep)]
        flags = [verdicts[p.id] if verdicts[p.id] is not None else rng.randint(1, max(1, p.depth)) for p in picks]
        starts = [restart_point(tree, p, f) for p, f in zip(picks, flags)]
        children = yield from advance(space, starts, space.max_steps, cancel, tree)
        for j, (p, s, c) in enumerate(zip(picks, starts, children)):
            yield Attempt(chain=params.keep + j, round=g, id=c.id, revises=p.id, kept=s.depth)
        yield from critique_nodes(space, children, params.critiques, scores, verdicts)
        everyone += children
        population = parents + children
        generations += 1
        yield StepDone(step=g + 1)
    best = max(population, key=lambda c: scores[c.id])  # max keeps the first of equals
    stats = {"candidates": len(everyone), "generations": generations}
    yield from finish(space, [c for c in everyone if c.finished], scores, best, stats)
