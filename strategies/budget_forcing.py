"""Budget forcing: cap (and extend) a thinking model's thought at a token budget, then let it answer.

Follows s1's budget forcing as m1 uses it ("m1: Unleash the Potential of Test-Time Scaling for Medical
Reasoning with Large Language Models", after s1, Muennighoff et al. 2025): the budget is the number of
thinking tokens per sample. When the thought reaches the budget, the end-of-thinking delimiter is forced and
the model answers; when the model tries to stop thinking before ``min_thinking`` tokens, its stop is replaced
by "Wait," (s1's extension; m1's "iterative prompts"), at most ``max_waits`` times per sample, after which its
stop is accepted. ``n`` parallel samples, each forced so, are reduced by a majority vote (``n`` = 1 is the
papers' single sample).

What the space must offer (optional ``SearchSpace`` methods, ``strategies/core.py``): ``think``,
``end_thinking``, ``wait`` and ``thinking_tokens``; the answer after the closed thought is ``complete``.

Choices where the papers are silent: the thought is cut at the budget token, mid-line if it falls there (the
delimiter goes on a line of its own); the tokens of an extension count against the same budget, so a "Wait,"
never buys thinking beyond it; the appended "Wait," itself is prompt, not generated, and is not counted; the
answer after the thought has its own limit (the space's), not the budget; the vote counts each answer once per
sample, ties going to the answer seen first; a sample with no answer does not vote.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import add_nodes, check, finish, require_thinking, weighted_vote
from strategies.core import CancelToken, Event, Node, SearchSpace, StepDone, ThoughtProgress
from strategies.params import param


@dataclass(frozen=True)
class Params:
    budget: int = param(256, "Thinking tokens per sample: at this many, the end of thinking is forced.",
                        lo=1, hi=1_000_000)
    min_thinking: int = param(0, "Below this many thinking tokens an attempt to stop is replaced by 'Wait,'.",
                              lo=0, hi=1_000_000)
    max_waits: int = param(2, "At most this many 'Wait,' extensions per sample.", lo=0, hi=64)
    n: int = param(1, "Parallel samples, each forced so; more than one are reduced by a majority vote.",
                   lo=1, hi=1024)


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    require_thinking(space, "budget forcing", ("think", "end_thinking", "wait", "thinking_tokens"))
    root = space.initial(1)[0]
    yield from add_nodes([root])
    open_nodes: list[Node] = [root] * params.n
    waits: dict[int, int] = {}  # sample index -> extensions so far
    slots = list(range(params.n))  # which sample each open node is
    closed: dict[int, Node] = {}
    forced = extended = 0
    rounds = 0
    while open_nodes:
        check(cancel)
        # One batched call per distinct remaining budget (a fresh batch of roots shares its prefill).
        left = [params.budget - space.thinking_tokens(n) for n in open_nodes]
        nxt_nodes, nxt_slots = [], []
        marks: list[tuple[int, Node, str]] = []  # (sample, node, what happened there) for the trace view
        for room in dict.fromkeys(left):
            idx = [i for i, r in enumerate(left) if r == room]
            if room <= 0:
                for i in idx:
                    closed[slots[i]] = space.end_thinking([open_nodes[i]])[0]
                    forced += 1
                    marks.append((slots[i], open_nodes[i], "forced"))
                continue
            results = space.think([open_nodes[i] for i in idx], room)
            yield from add_nodes([c for c, _ in results])
            for i, (child, tried) in zip(idx, results):
                slot = slots[i]
                used = space.thinking_tokens(child)
                if tried and used < params.min_thinking and waits.get(slot, 0) < params.max_waits \
                        and used < params.budget:
                    waits[slot] = waits.get(slot, 0) + 1
                    extended += 1
                    nxt_nodes.append(space.wait([child])[0])
                    nxt_slots.append(slot)
                    marks.append((slot, child, "wait"))
                elif tried:
                    closed[slot] = space.end_thinking([child])[0]
                    marks.append((slot, child, "end"))
                else:  # the budget ran out mid-thought
                    closed[slot] = space.end_thinking([child])[0]
                    forced += 1
                    marks.append((slot, child, "forced"))
        yield from add_nodes(nxt_nodes)
        for slot, node, mark in marks:
            yield ThoughtProgress(sample=slot, id=node.id, tokens=space.thinking_tokens(node), mark=mark)
        rounds += 1
        yield StepDone(step=rounds)
        open_nodes, slots = nxt_nodes, nxt_slots
    thoughts = [closed[s] for s in range(params.n)]
    yield from add_nodes(thoughts)
    check(cancel)
    answers = space.complete(thoughts)
    yield from add_nodes(answers)
    for i, (thought, answer) in enumerate(zip(thoughts, answers)):
        yield ThoughtProgress(sample=i, id=answer.id, tokens=space.thinking_tokens(thought), mark="answer")
    done = [a for a in answers if a.finished]
    chosen = weighted_vote(space, done, None) if done else None
    stats = {"forced_ends": forced, "waits": extended,
             "thinking_tokens": sum(space.thinking_tokens(t) for t in thoughts)}
    yield from finish(space, done, {}, chosen, stats)
