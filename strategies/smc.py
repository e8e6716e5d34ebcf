"""Sequential Monte Carlo pieces shared by particle filtering (reasoning) and FK steering (diffusion).

Plain Python on lists of floats: log-space normalisation with logsumexp, effective sample size, and
multinomial and systematic resampling that return ancestor indices (the genealogy the lanes view draws).
"""
from __future__ import annotations

import math
import random


def logsumexp(xs: list[float]) -> float:
    """log(sum(exp(x))) without overflow; -inf for an empty list or all -inf."""
    finite = [x for x in xs if x != float("-inf")]
    if not finite:
        return float("-inf")
    top = max(finite)
    if math.isinf(top):  # +inf dominates
        return top
    return top + math.log(sum(math.exp(x - top) for x in finite))


def normalise_log(log_w: list[float]) -> list[float]:
    """Normalised weights from log-weights; uniform when every weight is -inf or a value is NaN."""
    if not log_w:
        return []
    if any(math.isnan(x) for x in log_w):
        return [1.0 / len(log_w)] * len(log_w)
    top = max(log_w)
    if top == float("-inf"):
        return [1.0 / len(log_w)] * len(log_w)
    if top == float("inf"):  # some +inf weights: they share the mass
        tops = [x == float("inf") for x in log_w]
        return [t / sum(tops) for t in tops]
    exps = [math.exp(x - top) for x in log_w]  # the largest is exactly 1: no overflow, no rounding of the total
    total = sum(exps)
    return [e / total for e in exps]


def ess(ws: list[float]) -> float:
    """Effective sample size 1 / sum(w^2) of normalised weights."""
    return 1.0 / sum(w * w for w in ws)


def multinomial(ws: list[float], rng: random.Random) -> list[int]:
    """len(ws) ancestor indices drawn independently with probabilities ws."""
    return rng.choices(range(len(ws)), weights=ws, k=len(ws))


def systematic(ws: list[float], rng: random.Random, n: int | None = None) -> list[int]:
    """Systematic resampling: one uniform offset u, positions (i + u) / n, ancestors in index order.

    Lower variance than multinomial: particle i gets floor(n w_i) or ceil(n w_i) copies.
    """
    n = len(ws) if n is None else n
    u = rng.random()
    out: list[int] = []
    cum = 0.0
    j = 0
    for i in range(n):
        pos = (i + u) / n
        while j < len(ws) - 1 and cum + ws[j] < pos:
            cum += ws[j]
            j += 1
        out.append(j)
    return out
