"""ETS: REBASE's tree search with a pruning step that keeps the KV cache small and the frontier diverse.

Follows "ETS: Efficient Tree Search for Inference-Time Scaling" (Hooper et al., 2025) as its reference code runs
it (github SqueezeAILab/ETS, ``rebase.py``, ``select_method: softmax_costmodel``). Each step, before REBASE
splits the expansion width over the frontier (strategies/rebase.py), an integer program chooses which frontier
candidates to keep:

    maximise   sum_i O_i x_i  -  lambda_b (sum_i c_i x_i + sum_j c_j y_j)  +  (lambda_s / K) sum_k z_k
    subject to y_j >= x_i       for every candidate i below ancestor j   (a kept path keeps its prefix)
               y_j <= sum x_i   over the candidates below j               (an ancestor of nothing is freed)
               z_k <= sum x_i   over the candidates of cluster k          (cluster k is covered)
               sum_i x_i >= 1,  all variables binary

x_i keeps candidate i, y_j an ancestor (the tree's nodes above the frontier, the root included), z_k marks
semantic cluster k (of K) as covered. O_i is i's REBASE share of the width over the whole frontier, divided by
the width. The kept candidates then share the whole width by REBASE's rule again, so a step still generates as
many steps as REBASE's, spread over fewer, more shared prefixes. Solved with ``scipy.optimize.milp`` (HiGHS).

What the budget buys: N chains, exactly as REBASE (the first step samples N, every later step N minus the chains
finished so far).

Choices where the paper is silent or that differ from its code:
- the cost c of a node is its share of the tokens of the candidate tree (its ``cost.generated_tokens`` over
  those of all candidates and ancestors, so the costs sum to 1 and the kept cost is the kept KV cache, as a
  fraction): ``cost=tokens``, the default, is the KV cache the paper means to minimise; ``cost=nodes`` is the
  reference code's uniform 1 / (candidates + ancestors) per node, its proxy for it;
- lambda_b = 1 and lambda_s = 1.5 are the reference's settings at width 16 (1.4 at 64, 1.45 at 256);
- clusters come from the search space (``clusters``, optional on ``SearchSpace``): the reference clusters the
  new step's text by a math sentence encoder. Where a space offers no clusters the coverage term is dropped, as
  the reference does with lambda_s = 0, and the program trades shares against KV cost alone;
- T, the rounding, the step limit and the final pick are REBASE's (strategies/rebase.py); a frontier of one
  candidate is not pruned;
- the KV cache the kept tree needs is reported as REBASE's is (``KVCacheKept`` each step, mean and peak in
  ``RunFinished.stats``), so the two compare directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from strategies.core import CancelToken, Event, Node, SearchSpace
from strategies.params import param
from strategies.rebase import tree_search

INF = float("inf")


@dataclass(frozen=True)
class Params:
    n: int = param(16, "N: chains; the first step samples N, each later step N minus the chains finished so far "
                       "(and as many verifier scores), as REBASE.", lo=1, hi=1024)
    temperature: float = param(0.2, "T in REBASE's softmax(score/T) split of each step's expansions.", lo=0.01,
                               hi=100.0)
    lambda_b: float = param(1.0, "Weight of the kept tree's KV cost in the pruning program (the paper's lambda_b).",
                            lo=0.0, hi=100.0)
    lambda_s: float = param(1.5, "Weight of covering the frontier's semantic clusters (the paper's lambda_s).",
                            lo=0.0, hi=100.0)
    cost: str = param("tokens", "A node's cost: its tokens (the KV cache) or 1 per node (the reference code).",
                      choices=("tokens", "nodes"))
    select: str = param("weighted", "Final pick: weighted vote over the finished chains, or the best-scored.",
                        choices=("weighted", "best"))


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    clusters = getattr(space, "clusters", None)

    def prune(ranked: list[Node], shares: list[int], tree: dict[str, Node]) -> tuple[list[Node], str]:
        labels = clusters(ranked) if clusters is not None and params.lambda_s > 0 else None
        width = sum(shares)
        keep = ilp_keep(ranked, [s / width for s in shares], tree, labels, params.lambda_b, params.lambda_s,
                        params.cost)
        return [c for c, k in zip(ranked, keep) if k], "dropped by ETS's program (KV cost against coverage)"

    yield from tree_search(space, params, cancel, prune)


def ilp_keep(frontier: list[Node], outcome: list[float], tree: dict[str, Node], clusters: list[int] | None,
             lambda_b: float, lambda_s: float, cost: str) -> list[bool]:
    """Which frontier candidates ETS's integer program keeps (see the module docstring): ``outcome`` is O_i,
    ``clusters`` a label per candidate (None: no coverage term), ``tree`` maps every node id to its node."""
    n = len(frontier)
    below: dict[str, list[int]] = {}  # ancestor id -> the candidates under it
    for i, node in enumerate(frontier):
        pid = node.parent
        while pid is not None:
            below.setdefault(pid, []).append(i)
            pid = tree[pid].parent
    ancestors = list(below)
    m = len(ancestors)
    groups = sorted(set(clusters)) if clusters is not None else []
    k = len(groups)
    tokens = [float(c.cost.generated_tokens) for c in frontier] + [float(tree[a].cost.generated_tokens)
                                                                    for a in ancestors]
    total = sum(tokens)
    unit = [t / total for t in tokens] if cost == "tokens" and total > 0 else [1.0 / (n + m)] * (n + m)
    objective = ([-outcome[i] + lambda_b * unit[i] for i in range(n)]  # milp minimises: the negated objective
                 + [lambda_b * unit[n + j] for j in range(m)] + ([-lambda_s / k] * k if k else []))
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []

    def constraint(terms: list[tuple[int, float]], low: float, high: float) -> None:
        for col, val in terms:
            rows.append(len(lo))
            cols.append(col)
            vals.append(val)
        lo.append(low)
        hi.append(high)

    for j, a in enumerate(ancestors):
        for i in below[a]:
            constraint([(n + j, 1.0), (i, -1.0)], 0.0, INF)
        constraint([(n + j, 1.0)] + [(i, -1.0) for i in below[a]], -INF, 0.0)
    for g, label in enumerate(groups):
        constraint([(n + m + g, 1.0)] + [(i, -1.0) for i in range(n) if clusters[i] == label], -INF, 0.0)
    constraint([(i, 1.0) for i in range(n)], 1.0, INF)
    size = n + m + k
    a_matrix = coo_array((vals, (rows, cols)), shape=(len(lo), size))
    res = milp(objective, constraints=[LinearConstraint(a_matrix, lo, hi)], integrality=[1] * size,
               bounds=Bounds(0, 1))
    if not res.success:
        raise RuntimeError(f"ETS's pruning program was not solved: {res.message}")
    return [bool(res.x[i] > 0.5) for i in range(n)]
