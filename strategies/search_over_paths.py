"""Search over paths: denoise N paths part way, re-noise each into M branches, keep the best N, repeat.

Follows the search over paths of "Inference-Time Scaling for Diffusion Models beyond Scaling Denoising
Steps" (Ma et al.). N initial noises are denoised to step ``start`` (a fraction of the schedule)
without scoring. Then, until the end of the schedule: every path is taken back ``forward`` steps by
the forward (noising) process into M branches, each with fresh noise; every branch is denoised
``forward + backward`` steps (so a round advances ``backward`` steps net), scored on x0-hat (the
image itself at the end), and the N best branches of all N x M survive (beam search's selection rule:
the top N by verifier score, the rest pruned). The answer is the best-scored final path. Cost per
round: N x M x (forward + backward) NFE, plus N x M verifier calls. The candidates are the last
round's N x M final branches.
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
    n: int = param(4, "N: paths kept after each round.", lo=1, hi=256)
    branches: int = param(2, "M: branches re-noised from each path per round.", lo=1, hi=64)
    start: float = param(0.25, "Denoise to this fraction of the schedule before the first round.", lo=0.0, hi=1.0)
    forward: int = param(2, "Steps taken back by re-noising each round.", lo=0, hi=1000)
    backward: int = param(5, "Net steps advanced each round (denoise forward + backward).", lo=1, hi=1000)


def search(space, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    scores: dict[str, float] = {}
    root = space.initial(1)[0]
    yield from add_nodes([root])
    check(cancel)
    paths: list[Node] = space.extend([root], params.n)[0]
    yield from add_nodes(paths)
    start = min(space.max_steps, max(1, round(params.start * space.max_steps)))
    paths = yield from advance(space, paths, start, cancel)
    yield StepDone(step=0)
    rnd = 0
    pool = paths  # the last round's branches: all of them are finished candidates at the end
    while not all(p.finished for p in paths):
        rnd += 1
        check(cancel)
        depth = paths[0].depth
        back = max(0, depth - params.forward)
        branches = [b for group in space.renoise(paths, back, params.branches) for b in group]
        yield from add_nodes(branches)
        target = min(space.max_steps, depth + params.backward)
        branches = yield from advance(space, branches, target, cancel)
        yield from score_nodes(space, branches, scores)
        pool = branches
        ranked = sorted(branches, key=lambda b: -scores[b.id])
        paths = ranked[:params.n]
        for b in ranked[params.n:]:
            yield NodePruned(id=b.id, reason=f"not in the top {params.n} paths in round {rnd}")
        yield StepDone(step=rnd)
    finished = [p for p in pool if p.finished]
    yield from score_nodes(space, [p for p in finished if p.id not in scores], scores)
    yield from finish(space, finished, scores, best_scored(finished, scores))
