"""Sequential refinement with feedback: solve, critique, revise from the first step the critique flags.

"Inference-Time Scaling for Complex Tasks: Where We Stand and What Lies Ahead" (Balachandran et al. 2025)
evaluates models called sequentially with feedback on their previous attempt, with a perfect verifier as the
upper bound. Here the feedback is a critique (``SearchSpace.critique``): with the embedded critic it is a
learned verifier's, with ``--verifier oracle`` the exact one (the paper's perfect verifier).

The paper's revision is in context: the model reads its attempt and the feedback and writes a new one. A
450k-parameter policy trained only on solutions cannot read a critique, so here a revision keeps the steps
before the flagged one and regenerates the rest from there (the chain's node at that step, rolled out again);
this needs no revision training, and it is what the feedback says in this world: where the first error is.
The issue allowed training an in-context reviser; this is the honest miniature without one.

Choices where the paper is silent: every attempt is grown one step at a time, so each step is a node a revision
can restart from (the same tokens as one roll-out); ``critiques`` critiques of an attempt are voted
(``feedback.voted_verdict``): more than half saying correct stops the chain, otherwise the revision restarts at
the step most flagging critiques name. A chain stops at its first accepted attempt or after ``rounds`` attempts.
``chains`` run in parallel, each revising on its own; each contributes its accepted attempt, else its best-scored
one (the latest on ties), and a vote weighted by the critique scores picks among them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, best_scored, check, finish, weighted_vote
from strategies.core import Attempt, CancelToken, Event, Node, SearchSpace, StepDone
from strategies.feedback import critique_nodes, need_critic, restart_point
from strategies.params import param
from strategies.stepping import advance


@dataclass(frozen=True)
class Params:
    rounds: int = param(4, "Attempts per chain: the first solve and up to rounds - 1 revisions, each from the first "
                           "step the critique flags.", lo=1, hi=64)
    chains: int = param(1, "Parallel refinement chains, reduced by a vote weighted by the critique scores.",
                        lo=1, hi=64)
    critiques: int = param(1, "Critiques of each attempt, voted (more than half saying correct stops the chain).",
                           lo=1, hi=64)


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    need_critic(space, "refine")
    root = space.initial(1)[0]
    yield from add_nodes([root])
    tree: dict[str, Node] = {root.id: root}
    scores: dict[str, float] = {}
    verdicts: dict[str, int | None] = {}
    first = yield from advance(space, [root] * params.chains, space.max_steps, cancel, tree)
    history = [[a] for a in first]
    for c, a in enumerate(first):
        yield Attempt(chain=c, round=0, id=a.id)
    live = list(range(params.chains))
    for r in range(params.rounds):
        check(cancel)
        yield from critique_nodes(space, [history[c][-1] for c in live], params.critiques, scores, verdicts)
        yield StepDone(step=r + 1)
        live = [c for c in live if verdicts[history[c][-1].id] is not None]
        if not live or r == params.rounds - 1:
            break
        starts = [restart_point(tree, history[c][-1], verdicts[history[c][-1].id]) for c in live]
        revised = yield from advance(space, starts, space.max_steps, cancel, tree)
        for c, start, new in zip(live, starts, revised):
            yield Attempt(chain=c, round=len(history[c]), id=new.id, revises=history[c][-1].id, kept=start.depth)
            history[c].append(new)
    picks = [next((a for a in h if verdicts[a.id] is None), None) or best_scored(h[::-1], scores)
             for h in history]
    chosen = weighted_vote(space, picks, scores)
    attempts = [a for h in history for a in h]
    stats = {"attempts": len(attempts), "accepted": sum(verdicts[a.id] is None for a in attempts)}
    yield from finish(space, [a for a in attempts if a.finished], scores, chosen, stats)
