"""Small pieces several strategies share: scoring with events, picking the final answer."""
from __future__ import annotations

from typing import Iterator

from strategies.core import (CancelToken, Critiqued, Event, Node, NodeFinished, NodeScored, RunFinished, SearchSpace,
                             Selected, added, candidates_table)


def add_nodes(nodes: list[Node]) -> Iterator[Event]:
    for n in nodes:
        yield added(n)
        if n.finished:
            yield NodeFinished(id=n.id, answer=n.answer)


def score_nodes(space: SearchSpace, nodes: list[Node], scores: dict[str, float],
                verifications: dict[str, int] | None = None) -> Iterator[Event]:
    """Score ``nodes`` in one batch, record the values in ``scores`` and emit one NodeScored each, and one
    Critiqued each where a generative critic scored them (the critiques its vote kept). ``verifications``, where
    given, records how many verifications each score stands for (its critiques; 1 for a scalar score)."""
    if not nodes:
        return
    for node, s in zip(nodes, space.score(nodes), strict=True):
        scores[node.id] = s.value
        if verifications is not None:
            verifications[node.id] = max(1, len(s.critiques))
        yield NodeScored(id=node.id, score=s.value, per_step=list(s.per_step))
        if s.critiques:
            yield Critiqued(id=node.id, verdicts=[c.verdict for c in s.critiques],
                            texts=[c.text for c in s.critiques], score=s.value)


def finish(space: SearchSpace, finished: list[Node], scores: dict[str, float], chosen: Node | None,
           stats: dict | None = None) -> Iterator[Event]:
    """Emit Selected and RunFinished with the whole population of finished candidates (and the strategy's
    run-level ``stats``, if it reports any)."""
    answers = {n.id: space.extract(n) for n in finished}
    groups = dict(zip(answers, answer_groups(space, list(answers.values()))))
    if chosen is not None:
        yield Selected(id=chosen.id, answer=space.extract(chosen), score=scores.get(chosen.id))
    yield RunFinished(answer=space.extract(chosen) if chosen else None, node_id=chosen.id if chosen else None,
                      score=scores.get(chosen.id) if chosen else None,
                      candidates=candidates_table(finished, scores, answers, groups), stats=dict(stats or {}))


def best_scored(nodes: list[Node], scores: dict[str, float]) -> Node | None:
    """The highest-scoring node; ties go to the earliest, so results do not depend on dict order."""
    best = None
    for n in nodes:
        if best is None or scores.get(n.id, float("-inf")) > scores.get(best.id, float("-inf")):
            best = n
    return best


def answer_groups(space: SearchSpace, answers: list[str | None]) -> list[str | None]:
    """For each answer, the first answer seen that the domain calls the same (``space.same_answer`` where the
    domain offers one, exact equality otherwise), so equal answers written differently vote together.
    None (no answer) stays None and joins no group."""
    same = getattr(space, "same_answer", None) or (lambda a, b: a == b)
    reps: list[str] = []
    out: list[str | None] = []
    for a in answers:
        if a is None:
            out.append(None)
            continue
        rep = next((r for r in reps if r == a or same(r, a)), None)
        if rep is None:
            reps.append(a)
            rep = a
        out.append(rep)
    return out


def weighted_vote(space: SearchSpace, nodes: list[Node], scores: dict[str, float] | None) -> Node | None:
    """Sum scores (or count votes, without scores) per group of equal answers; return the best node of the top
    group."""
    groups = answer_groups(space, [space.extract(n) for n in nodes])
    totals: dict[str, float] = {}
    for n, g in zip(nodes, groups):
        if g is not None:
            totals[g] = totals.get(g, 0.0) + (scores[n.id] if scores is not None else 1.0)
    if not totals:
        return best_scored(nodes, scores or {}) if nodes else None
    top = max(totals, key=lambda a: totals[a])  # max keeps the first answer on ties
    group = [n for n, g in zip(nodes, groups) if g == top]
    return best_scored(group, scores) if scores is not None else group[0]


def spread_extend(space: SearchSpace, nodes: list[Node], n: int) -> list[list[Node]]:
    """Children of ``nodes`` (at most ``n`` of them) sharing ``n`` new step generations: n // len(nodes) each,
    and one more for each of the first n % len(nodes) nodes (callers list their best first). Equal shares are
    one batched ``extend``; unequal ones two, so no prefix is prefilled twice."""
    base, extra = divmod(n, len(nodes))
    return extend_shares(space, nodes, [base + 1] * extra + [base] * (len(nodes) - extra))


def extend_shares(space: SearchSpace, nodes: list[Node], shares: list[int]) -> list[list[Node]]:
    """Children of each node, ``shares[i]`` of them: one batched ``extend`` per distinct share (in the order the
    shares first appear), so a prefix is prefilled once; the groups come back in the nodes' order."""
    out: dict[int, list[Node]] = {}
    for k in dict.fromkeys(shares):
        idx = [i for i, s in enumerate(shares) if s == k]
        out.update(zip(idx, space.extend([nodes[i] for i in idx], k)))
    return [out[i] for i in range(len(nodes))]


def kept_kv_tokens(kept: list[Node], tree: dict[str, Node]) -> int:
    """The KV cache a kept tree needs: the generated tokens of the ``kept`` nodes and of all their ancestors
    (``tree`` maps ids to nodes), each node counted once however many kept paths share it. A node's own tokens
    are its ``cost.generated_tokens``, so the prompt at the root counts 0: it is the same for every strategy on
    a problem."""
    seen: set[str] = set()
    total = 0
    for node in kept:
        nid: str | None = node.id
        while nid is not None and nid not in seen:
            seen.add(nid)
            total += tree[nid].cost.generated_tokens
            nid = tree[nid].parent
    return total


def require_thinking(space: SearchSpace, method: str,
                     needs: tuple[str, ...] = ("think", "end_thinking", "thinking_tokens")) -> None:
    """Refuse a space that has no thought to work on (a model without thinking delimiters)."""
    if any(not hasattr(space, m) for m in needs) or not getattr(space, "thinking", True):
        raise ValueError(f"{method} needs a thinking model (one whose catalog entry has thinking delimiters, "
                         "such as tiny-think)")


def check(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.check()
