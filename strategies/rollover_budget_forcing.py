"""Rollover budget forcing (RBF): a particle search along the denoising trajectory that moves on as soon as
a step finds a better particle and rolls the unused budget of that step over to the next.

Follows "Inference-Time Scaling for Flow Models via Stochastic Generation and Rollover Budget Forcing"
(Kim et al.). The NFE budget is split evenly over the denoising steps; at each step the chain draws
candidates x_{t-Δt} from its current x_t one at a time (each costs one NFE, the evaluation that gives its
x0-hat), scores x0-hat with the verifier, and as soon as a candidate beats the best reward seen so far it
takes that candidate and carries the step's leftover NFE into the next step's quota. When a step's quota runs
out with no improvement, the chain takes the step's best candidate. The candidates must differ, so the
sampler must be stochastic: the paper's point is the SDE conversion of a flow model (``flow_sde``); with an
ODE sampler every candidate of a step is the same point.

Choices, as in the paper's code where the paper is silent:

- ``chains`` independent chains share the budget (the paper's batch of 2), each with its own quota and
  leftover; the answer is the best final image over the chains;
- a chain starts from the best of ``init_share`` of its budget spent on initial noises, each scored on its
  own x0-hat (the code's "init particles"); that reward is the first one to beat;
- "better" is strictly greater than the best reward accepted so far along the chain; a step that runs out
  takes its best candidate without lowering that bar;
- the last step that has candidates to choose from spends everything left, keeping its best candidate; the
  final step to the clean image is deterministic (x0-hat itself) and costs nothing.

Our choices where neither says: the budget ``n`` counts full trajectories, so RBF spends n × steps
evaluations, exactly what random search with N = n and FK steering with n particles spend (its verifier
calls, one per initial noise and per candidate, are about n × steps too, counted apart); a chain gets at
least one full trajectory (``chains`` is capped at ``n``); per-step quotas are whole numbers and the
remainder of the division goes to the last search step. Every step's quota is at least one candidate, so a
chain always reaches the end.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from strategies.common import add_nodes, best_scored, check, finish, score_nodes
from strategies.core import CancelToken, Event, Node, NodePruned, StepDone
from strategies.params import param


@dataclass(frozen=True)
class Params:
    n: int = param(16, "Budget in full trajectories: n × steps model evaluations, as random search with N = n.",
                   lo=1, hi=1024)
    chains: int = param(2, "Independent chains sharing the budget (the paper uses 2).", lo=1, hi=64)
    init_share: float = param(0.1, "Share of a chain's budget spent on initial noises (the best one starts).",
                              lo=0.0, hi=0.9)


@dataclass
class Chain:
    """One chain's state: its budget plan, current particle, the reward to beat and its leftover."""

    init: int
    quotas: list[int]
    current: Node | None = None
    best: float = float("-inf")
    carry: int = 0
    used: int = 0
    step_nodes: list[Node] = field(default_factory=list)


def plan(budget: int, steps: int, init_share: float) -> tuple[int, list[int]]:
    """(initial noises, quota of each search step 1..steps-1) for a chain with ``budget`` >= ``steps`` NFE."""
    searches = steps - 1
    init = max(1, min(round(init_share * budget), budget - searches))
    if searches == 0:
        return budget, []
    rest = budget - init
    quotas = [rest // searches] * searches
    quotas[-1] += rest % searches
    return init, quotas


def budgets(n: int, steps: int, chains: int) -> list[int]:
    """Each chain's NFE budget: n × steps split over min(chains, n) chains, the remainder to the first ones."""
    k = min(chains, n)
    total = n * steps
    return [total // k + (1 if c < total % k else 0) for c in range(k)]


def search(space, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    steps = space.max_steps
    scores: dict[str, float] = {}
    root = space.initial(1)[0]
    yield from add_nodes([root])
    chains = []
    for b in budgets(params.n, steps, params.chains):
        init, quotas = plan(b, steps, params.init_share)
        chains.append(Chain(init, quotas))

    # initial noises, each scored on its own x0-hat; the best one starts the chain
    check(cancel)
    pools = [space.noises(root, c.init) for c in chains]
    yield from add_nodes([x for pool in pools for x in pool])
    yield from score_nodes(space, [x for pool in pools for x in pool], scores)
    for c, pool in zip(chains, pools):
        c.current = best_scored(pool, scores)
        c.best = scores[c.current.id]
        for x in pool:
            if x is not c.current:
                yield NodePruned(id=x.id, reason="not the best initial noise")
    yield StepDone(step=0)

    for d in range(1, steps):
        last = d == steps - 1
        for c in chains:
            c.used, c.step_nodes = 0, []
        quota = [c.quotas[d - 1] + c.carry for c in chains]
        active = list(range(len(chains)))
        while active:
            check(cancel)
            grown = space.extend([chains[i].current for i in active], 1)
            cands = [g[0] for g in grown]
            yield from add_nodes(cands)
            yield from score_nodes(space, cands, scores)
            still = []
            for i, cand in zip(active, cands):
                c = chains[i]
                c.used += 1
                c.step_nodes.append(cand)
                if not last and scores[cand.id] > c.best:      # better: move on, roll the rest over
                    c.best, c.carry = scores[cand.id], quota[i] - c.used
                    yield from _take(c, cand, f"did not beat the best reward at step {d}")
                elif c.used >= quota[i]:                      # quota spent: the step's best candidate
                    c.carry = 0
                    yield from _take(c, best_scored(c.step_nodes, scores), f"not the best candidate at step {d}")
                else:
                    still.append(i)
            active = still
        yield StepDone(step=d)

    # the last step to the clean image: deterministic for the flow samplers, one child each
    check(cancel)
    finals = [g[0] for g in space.extend([c.current for c in chains], 1)]
    yield from add_nodes(finals)
    yield from score_nodes(space, finals, scores)
    yield StepDone(step=steps)
    yield from finish(space, finals, scores, best_scored(finals, scores))


def _take(chain: Chain, node: Node, reason: str) -> Iterator[Event]:
    """Make ``node`` the chain's particle; the step's other candidates are pruned."""
    chain.current = node
    for x in chain.step_nodes:
        if x is not node:
            yield NodePruned(id=x.id, reason=reason)
