"""Feynman-Kac steering: interacting diffusion particles resampled by potentials of intermediate rewards.

Follows "A General Framework for Inference-time Scaling and Steering of Diffusion Models" (Singhal et
al., FK steering). N particles denoise in lockstep; at scheduled steps the verifier scores each
particle's predicted clean image x0-hat (r in [0, 1] for our verifiers) and a potential G_t turns the
rewards into weights; the population is resampled by those weights. Choices, as in the paper:

- potentials (``potential``): ``max``: G_t = exp(λ max_{s<=t} r_s); ``sum``: G_t = exp(λ sum_{s<=t} r_s);
  ``diff``: G_t = exp(λ (r_t - r_{t-1})) (r before the first scored step is 0). Only scheduled steps
  are scored, so "s <= t" runs over the scored steps of the particle's lineage;
- final-step correction: after the last step the product of all potentials along a lineage must equal
  exp(λ r(x_0)), the tilted target; the final potential is exp(λ r_0) / prod of the earlier ones
  (a lineage's product is inherited through resampling);
- weights live in log space and are normalised with logsumexp, so extreme rewards or a large λ stay finite;
- resampling happens inside a window of steps (``window_start``..``window_end``, fractions of the
  schedule: early x0-hat is blurry) every ``every`` steps; with ``adaptive`` only when
  ESS < ``ess_threshold`` x N; systematic resampling; resampled copies carry the particle's whole state
  and draw their own noise from then on (``ImageSearchSpace.resample``). A scheduled step that does not
  resample still emits ``Resampled`` with the identity ancestry, so the ESS plot has every point;
- λ must fit the verifier's range: rewards here are probabilities in [0, 1], λ = 10 by default;
- the sampler must be stochastic (DDPM, or DDIM with eta > 0): with eta = 0 copies stay identical;
- the answer is the highest-reward final particle (``select=best``) or one particle drawn from the final
  corrected weights (``select=sample``).

What the budget buys: ``n`` particles, each denoised through the whole schedule once (resampling copies
a state and costs no model evaluation), so n x steps NFE, exactly random search's at N = n. Verifier calls
(n per scheduled step, plus n at the end) are counted apart.
The SMC arithmetic (logsumexp normalisation, ESS, systematic resampling) is ``strategies.smc``, shared
with particle filtering; the events are the same as particle filtering's, so the lanes view serves both.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator

from strategies import smc
from strategies.common import add_nodes, best_scored, check, finish, score_nodes
from strategies.core import CancelToken, Event, Node, NodePruned, Resampled, StepDone
from strategies.params import param


@dataclass(frozen=True)
class Params:
    n: int = param(16, "Particles; each denoises the whole schedule once, so n × steps NFE, as random search "
                       "with N = n.", lo=1, hi=1024)
    potential: str = param("max", "Potential from intermediate rewards.", choices=("max", "diff", "sum"))
    lmbda: float = param(10.0, "λ: potential sharpness; fit it to the verifier's score range.", lo=0.0, hi=1000.0,
                         label="λ (lambda)")
    every: int = param(2, "Resample every this many denoising steps inside the window.", lo=1, hi=1000)
    window_start: float = param(0.2, "Window start, as a fraction of the schedule.", lo=0.0, hi=1.0)
    window_end: float = param(0.9, "Window end, as a fraction of the schedule.", lo=0.0, hi=1.0)
    adaptive: bool = param(True, "Resample only when ESS falls below the threshold.")
    ess_threshold: float = param(0.5, "Adaptive threshold, as a fraction of N.", lo=0.0, hi=1.0)
    select: str = param("best", "Final pick: highest reward, or a draw from the final weights.",
                        choices=("best", "sample"))

    def check(self) -> None:
        if self.window_end < self.window_start:
            raise ValueError("window_end must not be before window_start")


def log_potential(kind: str, lmbda: float, r: float, state: dict) -> tuple[float, dict]:
    """log G_t for reward ``r`` given a lineage's state; returns it and the lineage's new state."""
    if kind == "max":
        acc = r if state.get("acc") is None else max(state["acc"], r)
        return lmbda * acc, {**state, "acc": acc}
    if kind == "sum":
        acc = r + (state.get("acc") or 0.0)
        return lmbda * acc, {**state, "acc": acc}
    if kind == "diff":
        prev = state.get("prev") or 0.0
        return lmbda * (r - prev), {**state, "prev": r}
    raise ValueError(f"unknown potential {kind!r}")


def scheduled_steps(max_steps: int, params: Params) -> list[int]:
    """The denoising steps (1..max_steps-1) at which particles are scored and maybe resampled."""
    lo = max(1, round(params.window_start * max_steps))
    hi = min(max_steps - 1, round(params.window_end * max_steps))
    return list(range(lo, hi + 1, params.every))


def search(space, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    rng = random.Random(space.seed)
    n = params.n
    scores: dict[str, float] = {}
    root = space.initial(1)[0]
    yield from add_nodes([root])
    check(cancel)
    particles: list[Node] = space.extend([root], n)[0]
    yield from add_nodes(particles)
    log_w = [0.0] * n
    log_prod = [0.0] * n           # sum of log potentials applied along each lineage
    states: list[dict] = [{} for _ in range(n)]
    schedule = set(scheduled_steps(space.max_steps, params))
    step = 1
    while True:
        if step in schedule:
            yield from score_nodes(space, [p for p in particles if p.id not in scores], scores)
            for i, p in enumerate(particles):
                g, states[i] = log_potential(params.potential, params.lmbda, scores[p.id], states[i])
                log_w[i] += g
                log_prod[i] += g
            ws = smc.normalise_log(log_w)
            e = smc.ess(ws)
            if not params.adaptive or e < params.ess_threshold * n:
                ancestors = smc.systematic(ws, rng)
                for i, p in enumerate(particles):
                    if i not in ancestors:
                        yield NodePruned(id=p.id, reason=f"not resampled at step {step}")
                yield Resampled(step=step, particles=[particles[a].id for a in ancestors], ancestors=ancestors,
                                weights=ws, ess=e)
                particles = space.resample(particles, ancestors)
                states = [dict(states[a]) for a in ancestors]
                log_prod = [log_prod[a] for a in ancestors]
                log_w = [0.0] * n
            else:
                yield Resampled(step=step, particles=[p.id for p in particles], ancestors=list(range(n)),
                                weights=ws, ess=e)
        yield StepDone(step=step)
        if all(p.finished for p in particles):
            break
        check(cancel)
        grown = space.extend(particles, 1)
        particles = [g[0] for g in grown]
        yield from add_nodes(particles)
        step += 1
    # final rewards and the final-step correction: the lineage's potentials multiply to exp(λ r_0)
    yield from score_nodes(space, [p for p in particles if p.id not in scores], scores)
    ws = final_weights(log_w, log_prod, [scores[p.id] for p in particles], params.lmbda)
    if params.select == "sample":
        chosen = particles[rng.choices(range(n), weights=ws, k=1)[0]]
    else:
        chosen = best_scored(particles, scores)
    yield from finish(space, particles, scores, chosen)


def final_weights(log_w: list[float], log_prod: list[float], rewards: list[float], lmbda: float) -> list[float]:
    """Normalised final weights: each lineage's potentials so far are divided out and exp(λ r_0) put in, so the
    weights are the tilted target's whatever the potential."""
    return smc.normalise_log([lw + lmbda * r - lp for lw, lp, r in zip(log_w, log_prod, rewards)])

