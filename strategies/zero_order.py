"""Zero-order search over initial noises: move a pivot noise to its best neighbour while that helps.

Follows the zero-order search of "Inference-Time Scaling for Diffusion Models beyond Scaling Denoising
Steps" (Ma et al.). A random pivot noise is denoised and scored; each round draws K neighbours of the
pivot on the sphere of the pivot's norm at cosine ``cosine`` to it (about 0.95: close enough to keep
what is good about the pivot, far enough to change the image), denoises and scores them, and moves the
pivot to the best neighbour if it beats the pivot; a round without improvement is rejected (the pivot
stays, its neighbours are marked pruned). The answer is the final pivot's image (the best scored of
all, since the pivot only moves up).

What the budget buys: ``n`` full denoising runs, the same unit as random search's N, so both spend
n x steps NFE: one run for the pivot and K per round (the last round takes what is left, so it may
have fewer neighbours); n verifier calls, counted apart.

The sampler must be deterministic, as in the paper (and tt-scale-flux): DDIM with eta 0, or the flow
ODE. Then the image is a smooth function of the initial noise and a neighbour at cosine 0.95 gives an
image near the pivot's; with a stochastic sampler (DDIM eta 1, DDPM, the flow SDE) each step adds
fresh noise and a neighbour's image is as far from the pivot's as an independent noise's, which makes
this random search with extra rejections. The strategy cannot see the sampler; the image domain
enforces it (``backends.image.diffusion.DETERMINISTIC_STRATEGIES``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, best_scored, check, finish, score_nodes
from strategies.core import CancelToken, Event, NodePruned, StepDone
from strategies.params import param


@dataclass(frozen=True)
class Params:
    n: int = param(16, "Budget in full denoising runs (n × steps NFE, as random search with N = n): 1 for the "
                       "pivot, K per round; needs a deterministic sampler (DDIM eta 0 or flow_ode).", lo=1, hi=1024)
    neighbours: int = param(4, "K: neighbours drawn around the pivot each round.", lo=1, hi=256)
    cosine: float = param(0.95, "Cosine between a neighbour and the pivot (same norm).", lo=-1.0, hi=1.0)


def search(space, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    scores: dict[str, float] = {}
    root = space.initial(1)[0]
    yield from add_nodes([root])
    check(cancel)
    pivot_noise = space.noises(root, 1)[0]
    yield from add_nodes([pivot_noise])
    pivot = space.complete([pivot_noise])[0]
    yield from add_nodes([pivot])
    yield from score_nodes(space, [pivot], scores)
    leaves = [pivot]
    spent, rnd = 1, 0
    yield StepDone(step=0)
    while spent < params.n:
        rnd += 1
        check(cancel)
        k = min(params.neighbours, params.n - spent)  # the last round may be smaller, so NFE matches exactly
        noises = space.perturb([pivot_noise], params.cosine, k)[0]
        yield from add_nodes(noises)
        outs = space.complete(noises)
        yield from add_nodes(outs)
        yield from score_nodes(space, outs, scores)
        leaves += outs
        spent += k
        best = best_scored(outs, scores)
        if scores[best.id] > scores[pivot.id]:
            for o in outs:
                if o is not best:
                    yield NodePruned(id=o.id, reason=f"not the best neighbour in round {rnd}")
            yield NodePruned(id=pivot.id, reason=f"pivot replaced in round {rnd}")
            pivot, pivot_noise = best, noises[outs.index(best)]
        else:
            for o in outs:
                yield NodePruned(id=o.id, reason=f"round {rnd} rejected: no neighbour beat the pivot")
        yield StepDone(step=rnd)
    yield from finish(space, leaves, scores, pivot)
