"""What the critique-driven strategies share (refine, evoscale, solve-detect-verify, thought truncation): critiques
of nodes turned into events and one verdict, the node a revision restarts from, and an answer probed out of an
open thought."""
from __future__ import annotations

from collections import Counter
from typing import Callable, Iterator

from strategies.common import add_nodes, check
from strategies.core import (CancelToken, Critique, Critiqued, Event, Node, NodeScored, SearchSpace, StepDone,
                             ThoughtProgress, critique_score)


def need_critic(space: SearchSpace, method: str) -> None:
    """Refuse a space whose verifier cannot critique before any compute is spent: its ``critique`` of no nodes
    raises the space's own message then (a likelihood PRM's), and a space without ``critique`` this one."""
    if not hasattr(space, "critique"):
        raise ValueError(f"{method} needs a verifier that critiques (tiny-critic, oracle)")
    space.critique([], 1)


def voted_verdict(verdicts: list[int | None]) -> int | None:
    """One verdict from several critiques' (None: correct; i: the first wrong step): correct when more than half
    say so; else the step the flagging critiques name most often, the earliest on ties. An even split counts as
    flagged: a revision costs a few tokens, keeping a wrong answer costs the problem."""
    flags = [v for v in verdicts if v is not None]
    if len(flags) * 2 < len(verdicts) or not flags:
        return None
    counts = Counter(flags)
    top = max(counts.values())
    return min(v for v, c in counts.items() if c == top)


def critique_nodes(space: SearchSpace, nodes: list[Node], k: int, scores: dict[str, float],
                   verdicts: dict[str, int | None]) -> Iterator[Event]:
    """``k`` critiques of each node in one batch: a Critiqued and a NodeScored (the share that call it correct)
    per node, recorded in ``scores`` and, voted, in ``verdicts``."""
    if not nodes:
        return
    for node, cs in zip(nodes, space.critique(nodes, k), strict=True):
        yield from _record(node, cs, scores, verdicts)


def _record(node: Node, cs: list[Critique], scores: dict[str, float],
            verdicts: dict[str, int | None]) -> Iterator[Event]:
    scores[node.id] = critique_score(cs)
    verdicts[node.id] = voted_verdict([c.verdict for c in cs])
    yield Critiqued(id=node.id, verdicts=[c.verdict for c in cs], texts=[c.text for c in cs], score=scores[node.id])
    yield NodeScored(id=node.id, score=scores[node.id], per_step=[])


def flexible_verdict(space: SearchSpace, node: Node, k_fast: int, k_slow: int, scores: dict[str, float],
                     verdicts: dict[str, int | None]) -> Iterator[Event]:
    """FlexiVe's flexible verification budget in miniature: ``k_fast`` critiques; only when they disagree,
    ``k_slow`` more, and the vote is over all of them. Records the node's score and verdict as
    ``critique_nodes`` does (one Critiqued with every critique written)."""
    cs = space.critique([node], k_fast)[0]
    if k_slow and len({c.verdict for c in cs}) > 1:
        cs = cs + space.critique([node], k_slow)[0]
    yield from _record(node, cs, scores, verdicts)


def restart_point(tree: dict[str, Node], node: Node, flagged: int) -> Node:
    """The node a revision of ``node`` grows from: its ancestor holding the steps before step ``flagged`` (the
    critique's first wrong step), the parent of a finished node at the latest (a verdict past its last step
    still regenerates one). ``tree`` holds every node of the chain (``stepping.advance``)."""
    while (node.depth > flagged - 1 or node.finished) and node.parent is not None:
        node = tree[node.parent]
    return node


def probe(space: SearchSpace, node: Node) -> Iterator[Event]:
    """The answer an open thought holds so far: the end of thinking forced on a copy of it and the answer written
    after (Solve-Detect-Verify's and TrimR's intermediate answer; at the end of a thought, its answer). Returns
    the closed copy and the answer node."""
    closed = space.end_thinking([node])[0]
    answer = space.complete([closed])[0]
    yield from add_nodes([closed, answer])
    return closed, answer



def think_and_probe(space: SearchSpace, budget: int, chunk: int, decide: Callable[[Node], Iterator[Event]],
                    stop_mark: str, cancel: CancelToken | None) -> Iterator[Event]:
    """One thought grown ``chunk`` thinking tokens at a time up to ``budget``, its answer probed after every chunk
    and handed to ``decide`` (a generator of events that returns whether the thought stops there, with that
    answer: the mark ``stop_mark`` is drawn there; else "probe"). A thought the model ends itself ("end") or that
    reaches the budget ("forced", as budget forcing) is answered without a probe. Returns the answer node, the
    number of probes and the thinking tokens spent."""
    node = space.initial(1)[0]
    yield from add_nodes([node])
    answer, probes, step = None, 0, 0
    while answer is None:
        check(cancel)
        room = budget - space.thinking_tokens(node)
        if room <= 0:
            yield ThoughtProgress(sample=0, id=node.id, tokens=space.thinking_tokens(node), mark="forced")
            break
        node, tried = space.think([node], min(chunk, room))[0]
        yield from add_nodes([node])
        if tried:
            yield ThoughtProgress(sample=0, id=node.id, tokens=space.thinking_tokens(node), mark="end")
            break
        if space.thinking_tokens(node) >= budget:
            continue  # the end is forced next, and the answer after it is this probe's
        _, candidate = yield from probe(space, node)
        probes += 1
        stop = yield from decide(candidate)
        yield ThoughtProgress(sample=0, id=node.id, tokens=space.thinking_tokens(node),
                              mark=stop_mark if stop else "probe")
        step += 1
        yield StepDone(step=step)
        if stop:
            answer = candidate
    if answer is None:
        _, answer = yield from probe(space, node)
    tokens = space.thinking_tokens(node)
    yield ThoughtProgress(sample=0, id=answer.id, tokens=tokens, mark="answer")
    return answer, probes, tokens
