"""Pessimistic selection (Heimdall, "Heimdall: test-time scaling on the generative verification", section on
Pessimistic Verification): among best-of-N candidates, the answer whose verification rate is highest after a
penalty for its uncertainty.

Candidates are grouped by canonical answer (``answer_groups``: the domain's ``same_answer``). With N candidates
each verified M times (M critiques), answer a held by n_a candidates gets

    score(a) = r(a) - alpha * ln(N * M) / (n_a * M + 1)

where r(a) is the share of a's n_a * M verifications that call it correct: a lower confidence bound in the
spirit of UCB, which prefers an answer that many verifications support over one that few happen to rate
higher. Choices where the paper is silent or differs: a candidate's M is the number of critiques behind its
score (``verifications``; a scalar verifier's score counts as one verification, so r(a) is then its mean score
over the group), so candidates verified a different number of times weigh by their verifications; candidates
without an answer hold none; ties go to the answer seen first; the representative of the winning answer is its
best-scored candidate. ``alpha`` (default 0.1) is the paper's tunable pessimism weight: 0 is "highest
verification rate". The shared papers.md carries only Heimdall's abstract: the formula above is the paper's
pessimistic-verification rule as written from its text, not checked here against a copy of it.
"""
from __future__ import annotations

import math

from strategies.common import answer_groups, best_scored
from strategies.core import Node, SearchSpace

DEFAULT_ALPHA = 0.1


def pessimistic_scores(space: SearchSpace, nodes: list[Node], scores: dict[str, float],
                       verifications: dict[str, int], alpha: float = DEFAULT_ALPHA) -> dict[str, float]:
    """Each answer's pessimistic score (see the module docstring), keyed by its group's first-seen answer."""
    groups = answer_groups(space, [space.extract(n) for n in nodes])
    passed: dict[str, float] = {}
    count: dict[str, int] = {}
    for n, g in zip(nodes, groups):
        if g is None:
            continue
        m = max(1, verifications.get(n.id, 1))
        passed[g] = passed.get(g, 0.0) + scores.get(n.id, 0.0) * m
        count[g] = count.get(g, 0) + m
    total = sum(max(1, verifications.get(n.id, 1)) for n in nodes)
    return {g: passed[g] / count[g] - alpha * math.log(total) / (count[g] + 1) for g in passed}


def pessimistic_pick(space: SearchSpace, nodes: list[Node], scores: dict[str, float],
                     verifications: dict[str, int], alpha: float = DEFAULT_ALPHA) -> Node | None:
    """The best-scored candidate of the answer with the best pessimistic score (the best-scored candidate of all
    when none has an answer)."""
    table = pessimistic_scores(space, nodes, scores, verifications, alpha)
    if not table:
        return best_scored(nodes, scores) if nodes else None
    top = max(table, key=lambda g: table[g])  # max keeps the first answer on ties
    groups = answer_groups(space, [space.extract(n) for n in nodes])
    return best_scored([n for n, g in zip(nodes, groups) if g == top], scores)
