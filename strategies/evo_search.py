"""Evolutionary search over initial noises and intermediate latents.

Follows "Scaling Image and Video Generation via Test-Time Evolutionary Search" (EvoSearch). A
population of ``population`` initial noises is denoised and scored (fitness = the verifier on the final
image). Each later generation keeps the ``elites`` fittest individuals unchanged and fills the rest with
children: a parent picked by tournament (the fittest of ``tournament`` individuals drawn at random) is
mutated and denoised again. Mutation preserves the norm: the child is a point on the sphere of the
parent's latent at cosine sqrt(1 - β²) to it, β = ``mutation`` (the same neighbour operation as
zero-order search, ``ImageSearchSpace.perturb``). As in EvoSearch, the evolution moves down the
denoising trajectory: generation g >= 1 mutates the parent's latent at step
min((g - 1) x ``stride``, ``latest``) x the schedule length, so early generations mutate initial noises
and later ones mutate intermediate latents x_t, which keeps more of the parent and costs fewer steps.
The answer is the fittest individual ever evaluated.

What the budget buys: ``n`` counts full denoising runs (random search's N), n x steps NFE. Generations
are added while their NFE fits, the last one with fewer children if only part of it fits; a child
costs the steps from its mutation point to the end, so what is left unspent is less than one child's
cost: the run spends more than (n - 1) x steps and at most n x steps. Verifier calls (one per
individual evaluated) are counted apart.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, best_scored, check, finish, score_nodes
from strategies.core import CancelToken, Event, Node, NodePruned, StepDone
from strategies.params import param
from strategies.stepping import advance


@dataclass(frozen=True)
class Params:
    n: int = param(16, "Budget in full denoising runs: at most n × steps NFE, and less than one run short of it "
                       "(as random search with N = n).", lo=1, hi=1024)
    population: int = param(6, "Individuals per generation.", lo=1, hi=256)
    elites: int = param(2, "Fittest individuals carried over unchanged.", lo=0, hi=256)
    tournament: int = param(3, "Tournament size for picking a parent.", lo=1, hi=64)
    mutation: float = param(0.5, "β: mutation strength; the child sits at cosine sqrt(1-β²) to the parent.",
                            lo=0.0, hi=1.0)
    stride: float = param(0.25, "How far (fraction of the schedule) each generation moves the mutation down.",
                          lo=0.0, hi=1.0)
    latest: float = param(0.5, "Latest point (fraction of the schedule) at which latents are mutated.",
                          lo=0.0, hi=1.0)

    def check(self) -> None:
        if self.elites >= self.population:
            raise ValueError(f"elites ({self.elites}) must be fewer than the population ({self.population})")


@dataclass
class Individual:
    leaf: Node
    checkpoints: dict[int, Node]  # the latent at each step a later generation may mutate


def search(space, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    rng = random.Random(space.seed)
    steps = space.max_steps
    budget = params.n * steps
    scores: dict[str, float] = {}
    pop_size = min(params.population, params.n)

    def restart_step(g: int) -> int:
        return min(round((g - 1) * params.stride * steps), round(params.latest * steps), steps - 1)

    marks = sorted({0} | {restart_step(g) for g in range(1, 64)})

    def rollout(starts: list[Node]) -> Iterator[Event]:
        """Denoise ``starts`` to the end, keeping each one's latent at every mutation step on the way."""
        cps: list[dict[int, Node]] = [{s.depth: s} for s in starts]
        nodes = list(starts)
        for m in marks:
            if m > nodes[0].depth:
                nodes = yield from advance(space, nodes, m, cancel)
                for c, nd in zip(cps, nodes):
                    c[m] = nd
        nodes = yield from advance(space, nodes, steps, cancel)
        yield from score_nodes(space, nodes, scores)
        return [Individual(leaf, c) for leaf, c in zip(nodes, cps)]

    root = space.initial(1)[0]
    yield from add_nodes([root])
    check(cancel)
    first = space.noises(root, pop_size)
    yield from add_nodes(first)
    population = yield from rollout(first)
    spent = pop_size * steps
    evaluated = [ind.leaf for ind in population]
    yield StepDone(step=0)
    g = 0
    while True:
        g += 1
        k = restart_step(g)
        per_child = steps - k
        children_n = min(pop_size - min(params.elites, pop_size - 1), (budget - spent) // per_child)
        if children_n < 1:
            break
        check(cancel)
        ranked = sorted(population, key=lambda ind: -scores[ind.leaf.id])
        elites = ranked[:min(params.elites, len(ranked) - 1)] if len(ranked) > 1 else ranked
        parents = []
        for _ in range(children_n):
            entrants = rng.sample(population, min(params.tournament, len(population)))
            parents.append(max(entrants, key=lambda ind: scores[ind.leaf.id]))
        cosine = math.sqrt(max(0.0, 1.0 - params.mutation ** 2))
        starts = [space.perturb([p.checkpoints[k]], cosine, 1)[0][0] for p in parents]
        yield from add_nodes(starts)
        children = yield from rollout(starts)
        spent += children_n * per_child
        evaluated += [c.leaf for c in children]
        survivors = elites + children
        for ind in ranked[len(elites):]:
            if ind not in survivors:
                yield NodePruned(id=ind.leaf.id, reason=f"not an elite at generation {g}")
        population = survivors
        yield StepDone(step=g)
    yield from finish(space, evaluated, scores, best_scored(evaluated, scores))
