"""Search over paths: denoise P paths part way, re-noise each into M branches, keep the best P, repeat.

Follows the search over paths of "Inference-Time Scaling for Diffusion Models beyond Scaling Denoising
Steps" (Ma et al.). P initial noises are denoised to step ``start`` (a fraction of the schedule)
without scoring. Then, until the end of the schedule: every path is taken back ``forward`` steps by
the forward (noising) process into M branches, each with fresh noise; every branch is denoised
``forward + backward`` steps (so a round advances ``backward`` steps net), scored on x0-hat (the
image itself at the end), and the P best branches of all P x M survive (beam search's selection rule:
the top P by verifier score, the rest pruned). The answer is the best-scored final path. The
candidates are the last round's P x M final branches.

What the budget buys: the paper sets P, M and the schedule by hand and compares methods at equal NFE;
here the budget ``n`` is the NFE of n full samplings (n x steps, random search's N = n), and P is
derived from it. One path costs ``start`` steps, then M x (forward + backward) steps per round (the last
round is cut at the end of the schedule), so P = round(n x steps / that cost), at least 1: the run
spends within half a path's cost of n x steps. At the defaults on 20 steps a path costs 47 steps, so a
run is within 10% of n x steps from n = 9 on; below that the rounding shows (at n = 1 the one path
costs 2.35 samplings), and the backend's NFE counter shows what was spent. Verifier calls (P x M per
round) are counted apart. On the flow samplers x0-hat at a point costs an evaluation of its own, one
more per path at ``start`` and per branch in every round but the last than the plan counts (364 NFE
instead of 329 at budget 16 on the digits' 20 steps).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, best_scored, check, finish, score_nodes
from strategies.core import CancelToken, Event, Node, NodePruned, StepDone
from strategies.params import param
from strategies.stepping import advance


@dataclass(frozen=True)
class Params:
    n: int = param(16, "Budget: the NFE of n full samplings (n × steps); the number of paths P is derived from it.",
                   lo=1, hi=1024)
    branches: int = param(2, "M: branches re-noised from each path per round.", lo=1, hi=64)
    start: float = param(0.25, "Denoise to this fraction of the schedule before the first round.", lo=0.0, hi=1.0)
    forward: int = param(2, "Steps taken back by re-noising each round.", lo=0, hi=1000)
    backward: int = param(5, "Net steps advanced each round (denoise forward + backward).", lo=1, hi=1000)


@dataclass(frozen=True)
class Plan:
    """The schedule of one run: how many paths, where they start, and each round's (re-noise to, denoise to)."""

    paths: int
    start: int
    rounds: list[tuple[int, int]]
    branches: int

    @property
    def steps_per_path(self) -> int:
        """Denoising steps one path and its branches take: the unit P is sized by."""
        return self.start + sum(self.branches * (to - back) for back, to in self.rounds)


def plan(n: int, steps: int, params: Params) -> Plan:
    """P paths and the rounds, sized so that P x steps_per_path is as close as it gets to n x steps."""
    start = min(steps, max(1, round(params.start * steps)))
    rounds = []
    depth = start
    while depth < steps:
        back, depth = max(0, depth - params.forward), min(steps, depth + params.backward)
        rounds.append((back, depth))
    per_path = Plan(1, start, rounds, params.branches).steps_per_path
    return Plan(max(1, round(n * steps / per_path)), start, rounds, params.branches)


def search(space, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    scores: dict[str, float] = {}
    p = plan(params.n, space.max_steps, params)
    root = space.initial(1)[0]
    yield from add_nodes([root])
    check(cancel)
    paths: list[Node] = space.extend([root], p.paths)[0]
    yield from add_nodes(paths)
    paths = yield from advance(space, paths, p.start, cancel)
    yield StepDone(step=0)
    pool = paths  # the last round's branches: all of them are finished candidates at the end
    for rnd, (back, target) in enumerate(p.rounds, start=1):
        check(cancel)
        branches = [b for group in space.renoise(paths, back, p.branches) for b in group]
        yield from add_nodes(branches)
        branches = yield from advance(space, branches, target, cancel)
        yield from score_nodes(space, branches, scores)
        pool = branches
        ranked = sorted(branches, key=lambda b: -scores[b.id])
        paths = ranked[:p.paths]
        for b in ranked[p.paths:]:
            yield NodePruned(id=b.id, reason=f"not in the top {p.paths} paths in round {rnd}")
        yield StepDone(step=rnd)
    finished = [x for x in pool if x.finished]
    yield from score_nodes(space, [x for x in finished if x.id not in scores], scores)
    yield from finish(space, finished, scores, best_scored(finished, scores))
