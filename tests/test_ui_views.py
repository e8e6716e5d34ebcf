"""The pure view functions: events in, figures / rows / HTML out (no gradio, no models).

Event streams come from the real strategies run over a small deterministic fake search space, so the
views are tested against the events the engine really emits, plus hand-made streams for edge cases.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import time

import pytest

from strategies.core import Compute, Critique, Node, Score
from strategies.registry import STRATEGIES
from strategies import params as params_mod
from ui.figures.curves import score_vs_compute_figure
from ui.figures.attempts import attempts_figure
from ui.figures.confidence import confidence_figure
from ui.figures.thoughts import thoughts_figure
from ui.figures.particles import particle_figure
from ui.figures.style import PRUNED
from ui.figures.sweeps import compute_optimal_table, scaling_figure
from ui.figures.tables import candidates_rows, compute_meter_html, metrics_rows, status_html
from ui.figures.tree import tree_figure
from ui.fold import ViewState, fold, step_count

TRUTH = "42"


class FakeSpace:
    """Deterministic arithmetic-free search space: answers are 42 or a wrong number, scores from a hash."""

    max_steps = 4

    def __init__(self, seed: int = 0, preview: str | None = None) -> None:
        self.seed = seed
        self._ids = itertools.count()
        self.preview = preview
        self._lps: dict[str, list[list[float]]] = {}
        self._thought: dict[str, int] = {}  # node id -> thinking tokens

    def _h(self, *parts: object) -> float:
        d = hashlib.sha256(repr(parts).encode()).digest()
        return int.from_bytes(d[:4], "big") / 2**32

    def _node(self, parent: Node | None, steps: tuple, finished: bool) -> Node:
        nid = f"n{next(self._ids)}"
        answer = None
        if finished:
            answer = TRUTH if self._h(nid, "ans") < 0.5 else str(int(self._h(nid, "w") * 100))
        preview = self.preview if self.preview is not None else (steps[-1] if steps else "prompt")
        return Node(id=nid, parent=parent.id if parent else None, depth=len(steps), preview=preview,
                    finished=finished, answer=answer, payload=steps,
                    cost=Compute(generated_tokens=5, prompt_tokens=10, model_calls=1))

    def initial(self, n: int) -> list[Node]:
        return [self._node(None, (), False) for _ in range(n)]

    def extend(self, nodes: list[Node], k: int, temperature: float | None = None) -> list[list[Node]]:
        out = []
        for n in nodes:
            kids = []
            for _ in range(k):
                steps = n.payload + (f"step {len(n.payload) + 1} of {n.id}",)
                fin = len(steps) >= self.max_steps or self._h(n.id, len(kids), "f") < 0.15
                kids.append(self._node(n, steps, fin))
            out.append(kids)
        return out

    def complete(self, nodes: list[Node]) -> list[Node]:
        out = []
        for n in nodes:
            steps = n.payload + tuple(f"rollout {i}" for i in range(self.max_steps - len(n.payload)))
            out.append(self._node(n, steps or ("done",), True))
        return out

    def race(self, nodes: list[Node]) -> list[Node]:
        """The roll-outs of one batch cut when the first ends: the first is finished, the others are not."""
        out = self.complete(nodes)
        for n in out[1:]:
            n.finished, n.answer = False, None
        return out

    def complete_with_logprobs(self, nodes: list[Node], top_k: int, stop=None) -> list[Node]:
        """Roll-outs of 12 tokens each with hashed top-k log-probabilities, cut where ``stop`` holds."""
        out = []
        for n in self.complete(nodes):
            lps = []
            for t in range(12):
                lps.append([-self._h(n.id, t, j) * (j + 1) for j in range(top_k)])
                if stop is not None and stop(lps):
                    n.finished, n.answer = False, None
                    break
            self._lps[n.id] = lps
            out.append(n)
        return out

    def token_logprobs(self, node: Node) -> list[list[float]]:
        return self._lps.get(node.id, [])

    # a thinking model whose thought runs 3 tokens per call, then tries to stop (budget forcing)
    def think(self, nodes: list[Node], max_tokens: int) -> list[tuple[Node, bool]]:
        out = []
        for n in nodes:
            child = self._node(n, n.payload or ("<think>",), False)
            self._thought[child.id] = self.thinking_tokens(n) + min(3, max_tokens)
            out.append((child, max_tokens >= 3))
        return out

    def end_thinking(self, nodes: list[Node]) -> list[Node]:
        return [self._moved(n, "</think>") for n in nodes]

    def wait(self, nodes: list[Node]) -> list[Node]:
        return [self._moved(n, "Wait,") for n in nodes]

    def _moved(self, n: Node, text: str) -> Node:
        child = self._node(n, ((n.payload or ("<think>",))[0] + text,), False)
        self._thought[child.id] = self.thinking_tokens(n)
        return child

    def thinking_tokens(self, node: Node) -> int:
        return self._thought.get(node.id, 0)

    def score(self, nodes: list[Node]) -> list[Score]:
        return [Score(self._h(n.id, "s"), [self._h(n.id, i) for i in range(max(1, n.depth))]) for n in nodes]

    # a critic: a node hashing high is called correct, else its last step is flagged (refine, evoscale, SDV)
    def critique(self, nodes: list[Node], k: int, temperature: float | None = None) -> list[list[Critique]]:
        return [[Critique(None if self._h(n.id, "c", j) > 0.5 else max(1, n.depth), text=f"<b>{n.id}</b> checked")
                 for j in range(k)] for n in nodes]

    def extract(self, node: Node) -> str | None:
        return node.answer


def run_events(strategy: str, n: int = 8, problem_text: str = "Start with 40. Add 2.", preview: str | None = None,
               **extra) -> list[dict]:
    """The event dicts a strategy emits on the fake space, shaped like the engine's (RunStarted ... RunEnded)."""
    info = STRATEGIES[strategy]
    values = {info.budget_param: n} if strategy != "greedy" else {}
    values.update(extra)
    p = params_mod.build(info.params_cls, values)
    space = FakeSpace(preview=preview)
    events = [{"type": "RunStarted", "run_id": "rtest", "strategy": strategy, "params": dict(p.__dict__),
               "problem": {"uid": "t:0", "text": problem_text, "answer": TRUTH, "difficulty": 2}, "prompt": "x"}]
    tokens = 0
    for ev in info.search(space, p, None):
        d = ev.to_dict()
        tokens += 15
        d["cost"] = {"generated_tokens": 5}
        d["totals"] = {"prompt_tokens": tokens // 3 * 2, "generated_tokens": tokens // 3, "verifier_tokens": 0,
                       "model_calls": tokens // 15, "verifier_calls": 0, "nfe": 0, "flops": tokens * 1e6,
                       "kv_bytes_peak": 2**20, "wall_s": 0.01 * tokens, "tokens": tokens}
        events.append(d)
    fin = next((e for e in events if e["type"] == "RunFinished"), None)
    events.append({"type": "RunEnded", "run_id": "rtest", "status": "finished", "answer": fin and fin["answer"],
                   "correct": (fin["answer"] == TRUTH) if fin else None, "score": fin and fin["score"],
                   "compute": events[-1]["totals"], "error": None})
    return events


def trace(fig, name):
    return [t for t in fig.data if t.name == name]


REASONING = [n for n, i in STRATEGIES.items() if "reasoning" in i.domains]


@pytest.mark.parametrize("strategy", REASONING)
def test_every_strategy_folds_and_draws(strategy):
    events = run_events(strategy, n=4 if strategy != "mcts" else 6)
    st = fold(events)
    assert st.status == "finished" and st.run_id == "rtest" and st.nodes
    fig = tree_figure(st)
    json.loads(fig.to_json())  # serialisable, as gradio sends it
    assert fig.layout.uirevision == "tree-rtest"
    particle_figure(st).to_json()
    confidence_figure(st).to_json()
    thoughts_figure(st).to_json()
    attempts_figure(st).to_json()
    candidates_rows(st)
    compute_meter_html(st.totals)
    status_html(st)


def test_one_edge_trace_float32_and_chosen_path():
    events = run_events("beam_search", n=8, beam_width=2)
    st = fold(events)
    fig = tree_figure(st)
    edges = trace(fig, "edges")
    assert len(edges) == 1
    n_edges = sum(1 for n in st.nodes.values() if n.parent is not None)
    assert len(edges[0].x) == 3 * n_edges
    assert edges[0].x.dtype.name == "float32"
    assert '"dtype":"f4"' in fig.to_json()  # typed arrays travel as base64, not as JSON number lists
    path = st.chosen_path()
    assert path and path[-1] == st.selected and st.nodes[path[0]].parent is None
    chosen = trace(fig, "chosen path")
    assert len(chosen) == 1 and len(chosen[0].x) == len(path)
    # every node of the chosen path sits at its step depth
    assert list(chosen[0].x) == [float(st.nodes[p].step) for p in path]


def test_pruned_nodes_are_grey_and_scored_nodes_have_a_colour_bar():
    st = fold(run_events("beam_search", n=8, beam_width=2))
    pruned = [n for n in st.nodes.values() if n.pruned]
    assert pruned
    fig = tree_figure(st)
    (pt,) = trace(fig, "pruned")
    assert pt.marker.color == PRUNED and len(pt.x) == len(pruned)
    (scored,) = trace(fig, "scored")
    assert scored.marker.colorbar.title.text.startswith("verifier")
    assert scored.marker.cmin == 0 and scored.marker.cmax == 1


def test_finished_marked_correct_and_wrong_from_the_problem_answer():
    st = fold(run_events("best_of_n", n=16))
    fin = [n for n in st.nodes.values() if n.finished]
    good = [n for n in fin if n.answer == TRUTH]
    bad = [n for n in fin if n.answer != TRUTH]
    assert good and bad
    assert all(n.correct is True for n in good) and all(n.correct is False for n in bad)
    fig = tree_figure(st)
    assert len(trace(fig, "correct answer")[0].x) == len(good)
    assert len(trace(fig, "wrong answer")[0].x) == len(bad)
    rows = candidates_rows(st)
    assert len(rows) == len(fin)
    assert {r[4] for r in rows} == {"✔", "✘"}
    assert sum(1 for r in rows if r[5] == "★") == 1
    scores = [r[2] for r in rows]
    assert scores == sorted(scores, reverse=True)


def test_hover_and_html_escape_model_and_user_text():
    evil = '<script>window.__pwned=1</script><img src=x onerror="alert(1)">${alert(2)}`'
    events = run_events("beam_search", n=4, beam_width=2, problem_text=evil, preview=evil)
    st = fold(events)
    fig = tree_figure(st)
    hover = " ".join(h for t in fig.data if t.hovertext is not None for h in t.hovertext)
    assert "<script>" not in hover and "<img" not in hover and "${" not in hover
    assert "&lt;script&gt;" in hover
    page = status_html(st)
    assert "<script>" not in page and "<img" not in page and "${" not in page and "`" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    st.error = evil
    assert "<script>" not in status_html(st)
    meter = compute_meter_html({"prompt_tokens": "<b>1</b>"})
    assert "<b>1</b>" not in meter


def test_fold_upto_step_replays_prefixes():
    events = run_events("beam_search", n=8, beam_width=2)
    total = step_count(events)
    assert total >= 2
    sizes = [len(fold(events, upto_step=k).nodes) for k in range(total + 1)]
    assert sizes == sorted(sizes) and sizes[0] == 1 and sizes[-1] == len(fold(events).nodes)
    assert fold(events, upto_step=1).selected is None
    assert fold(events, upto_step=total).selected is not None
    assert fold(events, upto_step=total).status == "finished"
    assert fold(events, upto_step=1).status == "running"


def test_incremental_fold_matches_full_fold():
    events = run_events("particle_filtering", n=6)
    st = ViewState()
    for i in range(0, len(events), 7):
        fold(events[i:i + 7], state=st)
    full = fold(events)
    assert st.nodes.keys() == full.nodes.keys() and len(st.particle_steps) == len(full.particle_steps)


def test_particle_lanes_ancestry_and_extinct_lineages():
    events = run_events("particle_filtering", n=8, temperature=0.3)
    st = fold(events)
    steps = st.particle_steps
    assert steps and all(len(ps.weights) == 8 for ps in steps)
    fig = particle_figure(st)
    (dots,) = trace(fig, "particle (size = weight)")
    assert len(dots.x) == 8 * len(steps)
    (live,) = trace(fig, "surviving lineage")
    (dead,) = trace(fig, "extinct lineage")
    # one ancestry line per new particle per resampling, split between surviving and extinct
    assert (len(live.x) + len(dead.x)) // 3 == 8 * len(steps)
    resampled_ids = {pid for ps in steps for pid in ps.particles}
    extinct = [n for n in st.nodes.values() if n.pruned and "not resampled" in n.prune_reason]
    assert not (resampled_ids & {n.id for n in extinct})
    grey = [c for c in dots.marker.color if c != "#3b6fd6"]
    assert len(grey) >= len([i for ps in steps[:-1] for i in range(8) if i not in ps.parent])
    (ess,) = trace(fig, "ESS")
    assert list(ess.y) == pytest.approx([ps.ess for ps in steps])
    (thr,) = trace(fig, "N/2 (adaptive-resampling threshold)")
    assert set(thr.y) == {4.0}


def test_particle_lineage_by_hand():
    """Three particles, two resamplings: particle 2 of the first population leaves no descendant."""
    ev = [{"type": "RunStarted", "run_id": "r", "strategy": "particle_filtering", "params": {"n": 3},
           "problem": {"answer": "1"}},
          {"type": "NodeAdded", "id": "root", "parent": None, "step": 0, "preview": "", "finished": False}]
    ev += [{"type": "NodeAdded", "id": f"a{i}", "parent": "root", "step": 1, "preview": "", "finished": False}
           for i in range(3)]
    ev += [{"type": "Resampled", "step": 1, "particles": ["a0", "a0", "a1"], "ancestors": [0, 0, 1],
            "weights": [0.6, 0.3, 0.1], "ess": 2.17}]
    ev += [{"type": "NodeAdded", "id": f"b{i}", "parent": p, "step": 2, "preview": "", "finished": False}
           for i, p in enumerate(["a0", "a0", "a1"])]
    ev += [{"type": "Resampled", "step": 2, "particles": ["b1", "b1", "b1"], "ancestors": [1, 1, 1],
            "weights": [0.1, 0.8, 0.1], "ess": 1.5}]
    st = fold(ev)
    fig = particle_figure(st)
    (dots,) = trace(fig, "particle (size = weight)")
    alive = [c == "#3b6fd6" for c in dots.marker.color]
    # step 1: particle 0 is the ancestor of b1 (lane 1 at step 2); particles 1 and 2 died out
    assert alive[:3] == [True, False, False]
    assert alive[3:] == [False, True, False]


def test_500_node_tree_builds_fast(capsys):
    """A 500-node tree: fold + figure + JSON (what gradio sends). Prints the time; no wall-clock assert."""
    ev = [{"type": "RunStarted", "run_id": "big", "strategy": "beam_search", "params": {},
           "problem": {"text": "p", "answer": "7"}}]
    ev.append({"type": "NodeAdded", "id": "n0", "parent": None, "step": 0, "preview": "root", "finished": False,
               "node_cost": {"generated_tokens": 0}})
    frontier = ["n0"]
    count = 1
    depth = 0
    while count < 500:
        depth += 1
        new = []
        for p in frontier:
            for _ in range(4):
                if count >= 500:
                    break
                nid = f"n{count}"
                count += 1
                fin = depth >= 5 and count % 3 == 0
                ev.append({"type": "NodeAdded", "id": nid, "parent": p, "step": depth,
                           "preview": f"{count} * 7 = {count * 7} <b>", "finished": fin,
                           "answer": str(count % 9) if fin else None,
                           "node_cost": {"generated_tokens": 7, "prompt_tokens": 30}})
                ev.append({"type": "NodeScored", "id": nid, "score": (count % 97) / 97,
                           "per_step": [0.5] * depth})
                new.append(nid)
        for nid in new[len(new) // 4:]:
            ev.append({"type": "NodePruned", "id": nid, "reason": "not in top"})
        frontier = new[: max(1, len(new) // 4)]
        ev.append({"type": "StepDone", "step": depth})
    ev.append({"type": "Selected", "id": frontier[0], "answer": "1", "score": 0.9})
    t0 = time.perf_counter()
    st = fold(ev)
    t1 = time.perf_counter()
    fig = tree_figure(st)
    t2 = time.perf_counter()
    payload = fig.to_json()
    t3 = time.perf_counter()
    assert len(st.nodes) == 500
    with capsys.disabled():
        print(f"\n[500-node tree] fold {1e3 * (t1 - t0):.1f} ms, figure {1e3 * (t2 - t1):.1f} ms, "
              f"to_json {1e3 * (t3 - t2):.1f} ms, total {1e3 * (t3 - t0):.1f} ms, JSON {len(payload) / 1024:.0f} KiB")


def test_meter_and_candidates_live_votes():
    events = run_events("majority_vote", n=8)
    cut = [e for e in events if e["type"] not in ("RunFinished", "Selected", "RunEnded")]
    st = fold(cut)
    rows = candidates_rows(st)
    assert rows and all(r[3] >= 1 for r in rows)
    by_answer: dict = {}
    for r in rows:
        by_answer[r[1]] = by_answer.get(r[1], 0) + 1
    assert all(r[3] == by_answer[r[1]] for r in rows)
    html = compute_meter_html({"prompt_tokens": 1234, "generated_tokens": 2_500_000, "flops": 3.2e12,
                                     "kv_bytes_peak": 3 * 2**20, "wall_s": 1.5, "model_calls": 3})
    for text in ("1.23 k", "2.50 M", "3.20 T", "3.00 MiB", "1.50 s"):
        assert text in html


SWEEP = {
    "config": {"strategies": ["greedy", "best_of_n", "beam_search"], "budgets": [1, 4, 16]},
    "results": [
        {"strategy": "greedy", "budget": 1, "accuracy": 0.4, "n_problems": 10,
         "by_difficulty": {"1": 0.8, "2": 0.4, "3": 0.0}, "compute": {"tokens": 100, "flops": 1e8}, "wall_s": 1},
        {"strategy": "best_of_n", "budget": 4, "accuracy": 0.5, "n_problems": 10,
         "by_difficulty": {"1": 0.9, "2": 0.5, "3": 0.1}, "compute": {"tokens": 400, "flops": 4e8}, "wall_s": 1},
        {"strategy": "best_of_n", "budget": 16, "accuracy": 0.6, "n_problems": 10,
         "by_difficulty": {"1": 1.0, "2": 0.6, "3": 0.2}, "compute": {"tokens": 1600, "flops": 1.6e9}, "wall_s": 1},
        {"strategy": "beam_search", "budget": 4, "accuracy": 0.55, "n_problems": 10,
         "by_difficulty": {"1": 0.8, "2": 0.7, "3": 0.1}, "compute": {"tokens": 500, "flops": 5e8}, "wall_s": 1},
        {"strategy": "beam_search", "budget": 16, "accuracy": 0.7, "n_problems": 10,
         "by_difficulty": {"1": 0.9, "2": 0.8, "3": 0.4}, "compute": {"tokens": 2000, "flops": 2e9}, "wall_s": 1},
    ],
    "oracle": {"pass@k": {"1": 0.4, "4": 0.7, "16": 0.9}, "source": "best_of_n", "estimated": ["1"]},
}
CEILING = "oracle pass@N of best_of_n's samples (ceiling)"


def test_scaling_figure_and_compute_optimal_table():
    fig = scaling_figure(SWEEP)
    json.loads(fig.to_json())
    names = {t.name for t in fig.data}
    assert {"greedy", "best_of_n", "beam_search", CEILING} <= names
    assert fig.layout.xaxis.type == "log"
    assert list(trace(fig, CEILING)[0].y) == [0.7, 0.9]
    # pass@1 did not come from a best-of-N run at N = 1: drawn apart as an estimate, at greedy's compute
    guess = next(t for t in fig.data if (t.name or "").startswith("pass@N estimated from best_of_n at N=16"))
    assert list(guess.y) == [0.4] and list(guess.x) == [100]
    table = compute_optimal_table(SWEEP)
    by = {(r[0], r[1]): r[2] for r in table}
    assert by[("all", 16)] == "beam_search"
    assert by[("1", 16)] == "best_of_n"
    assert by[("3", 4)] == "tie: best_of_n, beam_search"  # tied at 0.1: no winner, the cheaper named first
    assert by[("3", 1)] == "none: all at 0%"
    assert scaling_figure(None).layout.annotations


IMAGE_SWEEP = {
    "config": {"domain": "image", "strategies": ["random_search"], "budgets": [1, 4]},
    "results": [
        {"strategy": "random_search", "budget": b, "accuracy": acc, "n_problems": 4, "by_difficulty": {},
         "compute": {"nfe": 20.0 * b}, "verifier_score": score, "wall_s": 1}
        for b, acc, score in ((1, 0.5, 0.4), (4, 0.5, 0.9))  # the verifier's score climbs, the judge's does not
    ],
    "oracle": {"pass@k": {"1": 0.5, "4": 0.75}, "source": "random_search", "estimated": []},
}


def test_an_image_sweep_draws_the_judges_accuracy_beside_the_search_verifiers_score():
    fig = scaling_figure(IMAGE_SWEEP, x="nfe")
    judge = trace(fig, "random_search · judge accuracy")[0]
    score = trace(fig, "random_search · search-verifier score")[0]
    assert list(judge.y) == [0.5, 0.5] and list(score.y) == [0.4, 0.9] and list(score.x) == [20.0, 80.0]
    assert score.line.dash == "dash" and judge.line.dash is None
    assert [a.text for a in fig.layout.annotations] == ["all problems"]  # the digits have no difficulty labels
    assert "judge accuracy" in fig.layout.yaxis.title.text
    blank = scaling_figure(IMAGE_SWEEP, x="tokens").layout.annotations[0].text.replace("<br>", " ")
    assert "an image sweep counts NFE" in blank
    assert [r[2] for r in compute_optimal_table(IMAGE_SWEEP, x="nfe")] == ["random_search", "random_search"]


def _batched_image_run(batches: list[int], nfe_each: float) -> ViewState:
    """An image run whose scores come in batches, each after its NFE are spent (a Cost event first)."""
    events = [{"type": "RunStarted", "run_id": "r", "strategy": "random_search", "config": {"domain": "image"}},
              {"type": "NodeAdded", "id": "root", "parent": None, "step": 0, "preview": "digit 3"}]
    nfe, k = 0.0, 0
    for size in batches:
        nfe += nfe_each * size
        events.append({"type": "Cost", "totals": {"nfe": nfe}, "delta": {"nfe": nfe_each * size}})
        for _ in range(size):
            events += [{"type": "NodeAdded", "id": f"n{k}", "parent": "root", "step": 1, "preview": "x"},
                       {"type": "NodeScored", "id": f"n{k}", "score": (k * 7 % 5) / 5}]
            k += 1
    return fold(events)


def test_a_batch_of_scores_is_spread_over_the_nfe_it_cost():
    """Random search scores its N samples at once, after all their NFE: the curve spreads them in candidate order
    (the best after each candidate), not one vertical line; batches after the first start where the last ended."""
    from ui.figures.curves import best_score_curve, score_points
    xs, best = best_score_curve(_batched_image_run([8], 20.0), "nfe")
    assert xs == [20.0 * (i + 1) for i in range(8)]
    assert best == list(itertools.accumulate([(k * 7 % 5) / 5 for k in range(8)], max))
    xs, scores = score_points(_batched_image_run([4, 4], 10.0), "nfe")
    assert xs == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0]
    fig = score_vs_compute_figure([_batched_image_run([8], 20.0)], ["rs"], x="nfe", each=True)
    assert [t.name for t in fig.data] == ["rs", "each scored candidate"]
    assert len(set(fig.data[0].x)) == 8


def test_a_parameter_named_around_a_keyword_shows_its_label():
    from ui.registry import param_fields
    fk = {f.spec.name: f.spec for f in param_fields() if f.strategy == "fk_steering"}
    assert fk["lmbda"].title == "λ (lambda)" and fk["ess_threshold"].title == "ess threshold"


def test_score_vs_compute_and_metrics():
    a, b = run_events("best_of_n", n=8), run_events("beam_search", n=8, beam_width=2)
    fig = score_vs_compute_figure([a, b], ["bon", "beam"])
    assert [t.name for t in fig.data] == ["bon", "beam"]
    for t in fig.data:
        assert list(t.y) == sorted(t.y)  # best so far never decreases
    headers, rows = metrics_rows([fold(a), fold(b)], ["bon", "beam"])
    assert headers == ["metric", "bon", "beam"]
    assert any(r[0] == "tokens" for r in rows)


def test_empty_states():
    st = fold([])
    assert tree_figure(st).layout.annotations
    assert particle_figure(st).layout.annotations
    assert candidates_rows(st) == []
    assert math.isfinite(len(status_html(st)))


def test_the_sweep_progress_says_the_clocks_estimate_and_nothing_before_one():
    from ui.scaling import progress_html
    assert "about 42 s left" in progress_html(3, 10, 42.4)
    assert "left" not in progress_html(3, 10, None)  # no run measured yet: no guess
    assert "left" not in progress_html(10, 10, 0.0, "done")
