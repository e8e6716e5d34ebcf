"""REBASE and ETS: the width split, the pruning program's chosen set, finished chains leaving the frontier, the
kept KV cache they report, the reasoning space's clusters, and each once on the embedded models."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.embedded import arith
from backends.text.reasoning import ReasoningSpace, ReasoningTask
from engine.run import RunConfig, run_events
from strategies import ets, rebase
from strategies.core import Compute, Node
from strategies.params import build
from tests.conftest import embedded_models_ready
from tests.fake_space import FakeSpace


def run(module, space, **values):
    return [e.to_dict() for e in module.search(space, build(module.Params, values))]


def of(events, kind):
    return [e for e in events if e["type"] == kind]


# ---- REBASE's split of the width ----------------------------------------------------------------

def test_allocation_is_the_sequential_ceiling_of_softmax_shares():
    # T = 1: weights e^0, e^-0.4, e^-0.8 (mass 2.1196): ceil(16 / 2.1196 = 7.55) = 8, then ceil(8 * 0.6703 /
    # 1.1196 = 4.79) = 5, and the last takes the 3 left
    assert rebase.allocate([0.9, 0.5, 0.1], 16, 1.0) == [8, 5, 3]
    assert rebase.allocate([0.1, 0.9, 0.5], 16, 1.0) == [3, 8, 5]  # shares follow the scores, not the order
    # T = 0.2: weights 1, e^-2, e^-4: ceil(16 / 1.1536 = 13.87) = 14, ceil(2 * 0.1353 / 0.1536 = 1.76) = 2, none left
    assert rebase.allocate([0.9, 0.5, 0.1], 16, 0.2) == [14, 2, 0]
    assert rebase.allocate([0.5, 0.5, 0.5, 0.5], 6, 0.2) == [2, 2, 1, 1]  # ties: the earlier first
    assert rebase.allocate([0.7], 5, 0.2) == [5]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40), st.integers(1, 256),
       st.floats(0.01, 10.0))
def test_allocation_spends_exactly_the_width_and_never_favours_a_worse_score(scores, width, temperature):
    shares = rebase.allocate(scores, width, temperature)
    assert sum(shares) == width and min(shares) >= 0
    for i in range(len(scores)):
        for j in range(len(scores)):
            if scores[i] > scores[j]:
                assert shares[i] >= shares[j]


def _layers(events) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for e in of(events, "NodeAdded"):
        if e["parent"] is not None:
            out.setdefault(e["step"], []).append(e)
    return out


def test_rebase_splits_the_open_chains_width_and_finished_chains_leave_the_frontier():
    # stop digits end chains at different depths, so the width shrinks step by step
    n = 12
    events = run(rebase, FakeSpace(length=6, max_steps=8, seed=2, stop_digits=(0, 7)), n=n, temperature=0.5)
    layers = _layers(events)
    scores = {e["id"]: e["score"] for e in of(events, "NodeScored")}
    pruned = {e["id"] for e in of(events, "NodePruned")}
    finished = 0
    shrank = False
    for step in sorted(layers)[:-1]:
        finished += sum(e["finished"] for e in layers[step])
        open_ = [e for e in layers[step] if not e["finished"]]
        kids = layers[step + 1]
        assert len(kids) == n - finished  # the width is N minus the chains finished so far
        assert {k["parent"] for k in kids} <= {e["id"] for e in open_}  # a finished chain is never expanded
        expected = rebase.allocate([scores[e["id"]] for e in open_], n - finished, 0.5)
        got = [sum(1 for k in kids if k["parent"] == e["id"]) for e in open_]
        assert got == expected
        assert {e["id"] for e, k in zip(open_, got) if k == 0} == pruned & {e["id"] for e in open_}
        shrank |= 0 < finished
    assert shrank
    cands = of(events, "RunFinished")[0]["candidates"]
    assert len(cands) == n  # every chain ends as one candidate


def test_kept_kv_is_the_tokens_of_the_expanded_nodes_and_their_ancestors():
    events = run(rebase, FakeSpace(length=4, max_steps=6, seed=5), n=8)
    added = {e["id"]: e for e in of(events, "NodeAdded")}
    kept = of(events, "KVCacheKept")
    layers = _layers(events)
    assert [k["step"] for k in kept] == sorted(layers)
    for k in kept:
        parents = {e["parent"] for e in layers[k["step"]]}
        seen: set[str] = set()
        for p in parents:
            while p is not None and p not in seen:
                seen.add(p)
                p = added[p]["parent"]
        assert k["tokens"] == sum(added[i]["node_cost"]["generated_tokens"] for i in seen)
    stats = events[-1]["stats"]
    assert stats["kept_kv_tokens_peak"] == max(k["tokens"] for k in kept)
    assert stats["kept_kv_tokens_mean"] == pytest.approx(sum(k["tokens"] for k in kept) / len(kept))


# ---- ETS's pruning program ----------------------------------------------------------------------

def _node(nid: str, parent: str | None, tokens: int) -> Node:
    return Node(id=nid, parent=parent, depth=0 if parent is None else 1, preview=nid,
                cost=Compute(generated_tokens=tokens))


def _frontier():
    """root (0 tokens) -> a (10), b (10); a -> a1, a2; b -> b1 (5 tokens each)."""
    tree = {n.id: n for n in [_node("r", None, 0), _node("a", "r", 10), _node("b", "r", 10)]}
    leaves = [_node("a1", "a", 5), _node("a2", "a", 5), _node("b1", "b", 5)]
    for n in leaves:
        n.depth = 2
        tree[n.id] = n
    return leaves, tree


def _kept(clusters, cost="tokens", lambda_b=1.0, lambda_s=1.5):
    leaves, tree = _frontier()
    keep = ets.ilp_keep(leaves, [0.5, 0.25, 0.25], tree, clusters, lambda_b, lambda_s, cost)
    return [n.id for n, k in zip(leaves, keep) if k]


def test_the_program_keeps_shared_prefixes_and_covers_every_cluster():
    # Costs are tokens over the tree's 35: a path through a costs its leaves and a's 10, one through b b's 10 more.
    # a1 and b1 say the same (one cluster): {a1, a2} scores 0.75 - 20/35 + 2 * 0.75 = 1.68, all three
    # 1.0 - 35/35 + 1.5 = 1.5, so b1 and its prefix go.
    assert _kept([0, 1, 0]) == ["a1", "a2"]
    # b1 alone says something new: all three 1.5 beat {a1, a2} 0.75 - 20/35 + 0.75 = 0.93.
    assert _kept([0, 0, 1]) == ["a1", "a2", "b1"]
    # no clusters, no coverage term: shares against KV cost alone, {a1, a2} 0.18 beats all three (0) and {a1} 0.07
    assert _kept(None) == ["a1", "a2"]
    # a KV cost that dwarfs the shares leaves the one path the program must keep: the best share's
    assert _kept([0, 1, 2], lambda_b=20.0) == ["a1"]


def test_the_reference_cost_counts_nodes_not_tokens():
    leaves, tree = _frontier()
    tree["a"].cost = Compute(generated_tokens=60)  # a long prefix: by tokens, a path through it is dear
    outcome = [0.4, 0.3, 0.3]
    # tokens (a 60, b 10, the leaves 5 each: 85): {b1} 0.3 - 15/85 = 0.12 beats {a1} 0.4 - 65/85 < 0,
    # {a1, a2} 0.7 - 70/85 = -0.12 and all three 1 - 85/85 = 0
    keep = ets.ilp_keep(leaves, outcome, tree, None, 1.0, 0.0, "tokens")
    assert [n.id for n, k in zip(leaves, keep) if k] == ["b1"]
    # nodes (1/6 each of 3 leaves and 3 ancestors): {a1, a2} 0.7 - 4/6 = 0.03 beats {b1} 0.3 - 3/6 and all 1 - 1
    keep = ets.ilp_keep(leaves, outcome, tree, None, 1.0, 0.0, "nodes")
    assert [n.id for n, k in zip(leaves, keep) if k] == ["a1", "a2"]


class ClusteredSpace(FakeSpace):
    """The fake space with clusters: candidates whose last digits agree mod 3 say the same thing."""

    def clusters(self, nodes: list[Node]) -> list[int]:
        labels: dict[int, int] = {}
        return [labels.setdefault(n.payload[-1] % 3 if n.payload else -1, len(labels)) for n in nodes]


def test_ets_prunes_before_rebase_and_still_spends_the_whole_width():
    n = 12
    space = ClusteredSpace(length=5, max_steps=6, seed=3)
    events = run(ets, space, n=n)
    layers = _layers(events)
    dropped = [e for e in of(events, "NodePruned") if "ETS" in e["reason"]]
    assert dropped, "the fixed seed must make the program drop something"
    finished = 0
    for step in sorted(layers)[:-1]:
        finished += sum(e["finished"] for e in layers[step])
        assert len(layers[step + 1]) == n - finished
        assert not {e["id"] for e in dropped} & {k["parent"] for k in layers[step + 1]}
    assert len(of(events, "RunFinished")[0]["candidates"]) == n
    reb = run(rebase, ClusteredSpace(length=5, max_steps=6, seed=3), n=n)
    assert events[-1]["stats"]["kept_kv_tokens_mean"] < reb[-1]["stats"]["kept_kv_tokens_mean"]


# ---- the reasoning space's clusters ------------------------------------------------------------

def _reasoning_node(steps: tuple[str, ...]) -> Node:
    return Node(id="x", parent=None, depth=len(steps), preview="", payload=steps)


def test_arithmetic_partial_solutions_cluster_by_running_value():
    problem = arith.parse_problem("Start with 37. Add 48. Multiply by 6.")
    space = ReasoningSpace(policy=None, verifier=None, task=ReasoningTask(problem, problem.text + "\n"))
    nodes = [_reasoning_node(s) for s in [("37 + 48 = 85",), ("37+48 =  85",), ("37 + 48 = 84",),
                                           ("37 + 48 = 84", "84 * 6 = 510"), ("37 + 48 = 85", "85 * 6 = 510"),
                                           ("gibberish",), ("gibberish",), ("37 + 48 = 85", "The answer is 85")]]
    assert space.clusters(nodes) == [0, 0, 1, 2, 2, 3, 3, 0]


def test_other_tasks_cluster_by_the_exact_last_step():
    space = ReasoningSpace(policy=None, verifier=None, task=SimpleNamespace(prompt="q"))
    nodes = [_reasoning_node(s) for s in [("We expand.",), ("We  expand. ",), ("We factor.",), ("x", "We factor.")]]
    assert space.clusters(nodes) == [0, 0, 1, 1]


def test_step_value_reads_the_running_value():
    assert [arith.step_value(s) for s in ("85 * 6 = 510", "The answer is 385", "510 - 125 =", "")] == \
        [510, 385, None, None]


# ---- on the embedded models ---------------------------------------------------------------------

ready, why = embedded_models_ready()


@pytest.mark.skipif(not ready, reason=why)
@pytest.mark.usefixtures("one_torch_thread")
def test_on_the_embedded_models_ets_keeps_a_smaller_kv_cache_than_rebase():
    def go(strategy: str) -> list[dict]:
        return list(run_events(RunConfig(model="tiny-arith-s", verifier="tiny-prm", strategy=strategy, budget=16,
                                         problem_id="test:17", seed=0)))

    out = {s: go(s) for s in ("rebase", "ets")}
    for s, events in out.items():
        fin = of(events, "RunFinished")[0]
        assert events[-1]["correct"] is True, s  # test:17 (difficulty 3): both find 505
        assert len(fin["candidates"]) == 16 and fin["answer"] == "505"
        assert len(of(events, "KVCacheKept")) == len(of(events, "StepDone")) >= 3
        layers = _layers(events)
        assert all(len(layers[k]) <= 16 for k in layers)
    kv = {s: of(e, "RunFinished")[0]["stats"] for s, e in out.items()}
    assert kv["ets"]["kept_kv_tokens_mean"] < kv["rebase"]["kept_kv_tokens_mean"]
    assert kv["ets"]["kept_kv_tokens_peak"] <= kv["rebase"]["kept_kv_tokens_peak"]
    assert any("ETS" in e["reason"] for e in of(out["ets"], "NodePruned"))
    # both generate as many steps: ETS saves cache, not generations
    gen = {s: sum(1 for e in of(ev, "NodeAdded") if e["parent"] is not None) for s, ev in out.items()}
    assert gen["ets"] == gen["rebase"]
    assert math.isfinite(kv["ets"]["kept_kv_tokens_mean"])


def test_the_kept_kv_cache_reaches_the_status_line_and_compares_side_by_side():
    from tests.test_ui_views import run_events as ui_events
    from ui.figures.tables import metrics_rows, status_html
    from ui.fold import fold

    a, b = ui_events("rebase", n=8), ui_events("beam_search", n=8, beam_width=2)
    kept = [(e["step"], e["tokens"]) for e in of(a, "KVCacheKept")]
    state = fold(a)
    assert state.kv_kept == kept and len(kept) >= 2
    assert f"kept KV cache {kept[-1][1]} tokens at step {kept[-1][0]} (peak {max(t for _, t in kept)})" \
        in status_html(state)
    stats = of(a, "RunFinished")[0]["stats"]
    _, rows = metrics_rows([state, fold(b)], ["rebase", "beam"])
    row = next(r for r in rows if r[0] == "kept KV tokens, mean / peak")
    assert row[1:] == [f"{stats['kept_kv_tokens_mean']:.0f} / {stats['kept_kv_tokens_peak']}", ""]
    # the step slider folds the counts so far
    assert fold(a, upto_step=1).kv_kept == kept[:1]


def test_a_sweep_cell_reports_the_mean_kept_kv_of_its_runs_fresh_or_resumed(tmp_path, random_lm_path):
    from engine.limits import Limits
    from engine.sweep import SweepConfig, run_sweep
    from storage import RunStore

    cfg = SweepConfig(model=str(random_lm_path), verifier="oracle", strategies=["rebase", "best_of_n"],
                      budgets=[3], problems=2, seeds=[0])
    store = RunStore(tmp_path / "k.db")
    try:
        fresh = run_sweep(cfg, store, limits=Limits())
        cfg.resume = True
        again = run_sweep(cfg, store, limits=Limits())
        runs = [store.get_run(r["id"]) for r in store.list_runs() if r["strategy"] == "rebase"]
    finally:
        store.close()
    per_run = [r["result"]["stats"]["kept_kv_tokens_mean"] for r in runs[:2]]
    for result in (fresh, again):
        cells = {c["strategy"]: c for c in result["results"]}
        assert cells["rebase"]["stats"]["kept_kv_tokens_mean"] == pytest.approx(sum(per_run) / 2)
        assert cells["best_of_n"]["stats"] == {}
    assert sum(per_run) > 0
