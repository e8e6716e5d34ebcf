"""More denoising steps: the plain baseline that spends the budget on a longer schedule, not on search.

From "Inference-Time Scaling for Diffusion Models beyond Scaling Denoising Steps" (Ma et al.), whose
starting point is that adding denoising steps stops paying off after a few dozen. One image is sampled
from one initial noise with N x steps denoising steps (capped at the model's training timesteps), so at
budget N it spends the NFE of random search at N. No verifier is used; the image is the answer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, check, finish
from strategies.core import CancelToken, Event, StepDone
from strategies.params import param


@dataclass(frozen=True)
class Params:
    n: int = param(1, "N: the schedule is N times the default number of steps.", lo=1, hi=1024)


def search(space, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    root = space.initial(1)[0]
    yield from add_nodes([root])
    check(cancel)
    steps = min(params.n * space.max_steps, space.max_schedule)
    noise = space.noises(root, 1, steps=steps)[0]
    yield from add_nodes([noise])
    image = space.complete([noise])[0]
    yield from add_nodes([image])
    yield StepDone(step=1)
    yield from finish(space, [image], {}, image)
