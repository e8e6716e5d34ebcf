"""Pure display functions: event dicts in, plotly figures / table rows / HTML out.

Nothing here imports gradio or knows about models: a live run, a stored replay, a Compare column and
a Learn example all fold the same event dicts (``Event.to_dict()`` plus the engine's ``cost`` and
``totals``) through ``fold`` and draw the folded ``ViewState``.

Every string that came from a model or a user (step text, answers, problem text, error messages) is
escaped with :func:`esc` before it goes into HTML or into plotly hover text.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

log = logging.getLogger(__name__)


# ---- folding events into a view state -----------------------------------------------------------

@dataclass
class NodeView:
    id: str
    parent: str | None
    step: int
    preview: str
    order: int
    finished: bool = False
    answer: str | None = None
    node_cost: dict = field(default_factory=dict)
    score: float | None = None
    per_step: list[float] = field(default_factory=list)
    pruned: bool = False
    prune_reason: str = ""
    visits: int | None = None
    value: float | None = None
    correct: bool | None = None  # set by the engine when it grades a candidate, else by answer match


@dataclass
class ParticleStep:
    """One resampling: the population before it (weights) and which earlier particle each new one copies.

    ``parent[i]`` is the index, in this step's population, of the particle that new particle ``i`` copies;
    ``next_index[i]`` is where new particle ``i`` sits in the next resampling's population (None when it
    left the population, e.g. finished particles set aside) - filled in when that resampling arrives.
    """

    step: int
    weights: list[float]
    parent: list[int]
    ess: float
    particles: list[str]
    next_index: list[int | None] | None = None


@dataclass
class ViewState:
    run_id: str | None = None
    strategy: str | None = None
    params: dict = field(default_factory=dict)
    problem: dict = field(default_factory=dict)
    prompt: str | None = None
    config: dict = field(default_factory=dict)
    nodes: dict[str, NodeView] = field(default_factory=dict)
    children: dict[str | None, list[str]] = field(default_factory=dict)
    selected: str | None = None
    answer: str | None = None
    score: float | None = None
    candidates: list[dict] | None = None
    particle_steps: list[ParticleStep] = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    steps_done: int = 0
    last_step: int | None = None
    status: str = "running"
    correct: bool | None = None
    error: str | None = None
    n_events: int = 0
    domain: str = "reasoning"
    # image runs: the judge's verdict per candidate id (from the run's extras once it ends)
    judged: dict[str, dict] = field(default_factory=dict)
    # thinking-budget runs: per sample, its thought's marks in order (node id, tokens so far, mark)
    thoughts: dict[int, list[dict]] = field(default_factory=dict)
    # generative critics: per node id, the critiques its score was voted from (verdicts, texts, score)
    critiques: dict[str, dict] = field(default_factory=dict)
    # refinement methods (refine, evoscale): per chain, its attempts in order (node id, round, revised id, kept)
    attempts: dict[int, list[dict]] = field(default_factory=dict)
    # DeepConf: per trace id, its group confidences, confidence, threshold, cut position and warm-up flag
    confidence: dict[str, dict] = field(default_factory=dict)
    # (tokens, FLOPs, NFE, score, eFLOPs at one FLOP per byte: FLOPs + memory bytes, NaN where the memory was not
    # counted) at every NodeScored, in order: the best-score-vs-compute curves
    score_trace: list[tuple[float, float, float, float, float]] = field(default_factory=list)
    # (step, tokens) of every KVCacheKept: the KV cache the kept tree needs (tree searches that report it)
    kv_kept: list[tuple[int, int]] = field(default_factory=list)
    # particle bookkeeping while folding: children added since the last resampling, per parent id
    _pf_children: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @property
    def is_image(self) -> bool:
        """Every domain but reasoning searches images (digits, text-to-image): nodes with PNG previews."""
        return self.domain != "reasoning"

    @property
    def truth(self) -> str | None:
        a = (self.problem or {}).get("answer")
        return None if a is None else str(a)

    def chosen_path(self) -> list[str]:
        """Node ids from the root to the selected node (empty when nothing is selected yet)."""
        return self.path_to(self.selected)

    def path_to(self, nid: str | None) -> list[str]:
        """Node ids from the root to node ``nid`` (those that arrived; empty for None)."""
        path, seen = [], set()
        while nid is not None and nid in self.nodes and nid not in seen:
            seen.add(nid)
            path.append(nid)
            nid = self.nodes[nid].parent
        return path[::-1]


def normalise_answer(a: Any) -> str | None:
    """A light canonical form for matching answers in the display (the engine grades the chosen one)."""
    if a is None:
        return None
    s = str(a).strip().strip("$").replace(",", "").replace(" ", "")
    s = re.sub(r"^\\boxed\{(.*)\}$", r"\1", s)
    if re.fullmatch(r"-?\d+\.0+", s):
        s = s.split(".")[0]
    if re.fullmatch(r"-?0*\d+", s):
        neg = s.startswith("-")
        s = ("-" if neg else "") + (s.lstrip("-").lstrip("0") or "0")
    return s


def run_verdict(state: "ViewState") -> bool | None:
    """Whether the run's answer is right: the engine's grade once known; before that the answer against
    the truth for text, unknown for an image (only the judge can tell)."""
    if state.correct is not None or state.is_image:
        return state.correct
    return is_correct(state.answer, state.truth)


def is_correct(answer: Any, truth: str | None) -> bool | None:
    if truth is None or answer is None:
        return None
    return normalise_answer(answer) == normalise_answer(truth)


def step_count(events: list[dict]) -> int:
    """How many StepDone events a run has: the step slider goes from 0 to this."""
    return sum(1 for e in events if e.get("type") == "StepDone")


def fold(events: Iterable[dict], upto_step: int | None = None, state: ViewState | None = None) -> ViewState:
    """Fold events into a view state.

    ``upto_step`` counts StepDone events: ``k`` folds everything up to and including the k-th StepDone
    (0 = the problem and the root nodes only). When ``k`` is at least the number of steps the
    run has, the trailing events (Selected, RunFinished, RunEnded) are folded too, so the slider's last
    position is the finished run. ``state`` continues an earlier fold (the live view folds incrementally).
    """
    st = state or ViewState()
    events = list(events)
    total_steps = step_count(events) if upto_step is not None else 0
    for ev in events:
        if upto_step is not None and upto_step <= 0 and total_steps > 0 and (
                ev.get("type") == "StepDone" or (ev.get("type") == "NodeAdded" and ev.get("parent") is not None)):
            break  # position 0: the problem and the root(s) only
        _apply(st, ev)
        if ev.get("type") == "StepDone" and upto_step is not None and st.steps_done >= upto_step \
                and st.steps_done < total_steps:
            break
    return st


def _apply(st: ViewState, ev: dict) -> None:
    kind = ev.get("type")
    st.n_events += 1
    if isinstance(ev.get("totals"), dict):
        st.totals = ev["totals"]
    if kind == "RunStarted":
        st.status = "running"
        st.run_id = ev.get("run_id")
        st.strategy = ev.get("strategy")
        st.params = ev.get("params") or {}
        st.problem = ev.get("problem") or {}
        st.prompt = ev.get("prompt")
        st.config = ev.get("config") or {}
        st.domain = str(st.config.get("domain") or "reasoning")
    elif kind == "NodeAdded":
        nid = str(ev["id"])
        parent = ev.get("parent")
        parent = None if parent is None else str(parent)
        node = NodeView(id=nid, parent=parent, step=int(ev.get("step") or 0), preview=ev.get("preview") or "",
                        order=len(st.nodes), finished=bool(ev.get("finished")), answer=ev.get("answer"),
                        node_cost=ev.get("node_cost") or {})
        if nid not in st.nodes:
            st.children.setdefault(parent, []).append(nid)
        st.nodes[nid] = node
        if node.finished:
            node.correct = ev.get("correct", _node_verdict(st, node))
        if parent is not None:
            st._pf_children.setdefault(parent, []).append(nid)
    elif kind == "NodeScored":
        node = st.nodes.get(str(ev.get("id")))
        if node is not None:
            node.score = num(ev.get("score"))
            node.per_step = [float(x) for x in (ev.get("per_step") or []) if num(x) is not None]
        if num(ev.get("score")) is not None:
            t = st.totals or {}
            flops, mem = float(num(t.get("flops")) or 0.0), num(t.get("mem_bytes"))
            st.score_trace.append((tokens_of(t), flops, float(num(t.get("nfe")) or 0.0), float(ev["score"]),
                                   float("nan") if mem is None else mem))
    elif kind == "NodePruned":
        node = st.nodes.get(str(ev.get("id")))
        if node is not None:
            node.pruned = True
            node.prune_reason = str(ev.get("reason") or "")
    elif kind == "NodeFinished":
        node = st.nodes.get(str(ev.get("id")))
        if node is not None:
            node.finished = True
            node.answer = ev.get("answer", node.answer)
            node.correct = ev.get("correct", _node_verdict(st, node))
    elif kind == "NodeStats":
        node = st.nodes.get(str(ev.get("id")))
        if node is not None:
            node.visits = ev.get("visits")
            node.value = num(ev.get("value"))
    elif kind == "Resampled":
        _apply_resampled(st, ev)
    elif kind == "ThoughtProgress":
        st.thoughts.setdefault(int(ev.get("sample") or 0), []).append(
            {"id": str(ev.get("id")), "tokens": int(ev.get("tokens") or 0), "mark": str(ev.get("mark") or "")})
    elif kind == "Critiqued":
        st.critiques[str(ev.get("id"))] = {
            "verdicts": [None if v is None else int(v) for v in ev.get("verdicts") or []],
            "texts": [str(t) for t in ev.get("texts") or []], "score": num(ev.get("score"))}
    elif kind == "Attempt":
        st.attempts.setdefault(int(ev.get("chain") or 0), []).append(
            {"id": str(ev.get("id")), "round": int(ev.get("round") or 0),
             "revises": None if ev.get("revises") is None else str(ev["revises"]), "kept": int(ev.get("kept") or 0)})
    elif kind == "TraceConfidence":
        st.confidence[str(ev.get("id"))] = {
            "group": [float(x) for x in ev.get("group") or [] if num(x) is not None],
            "confidence": num(ev.get("confidence")), "threshold": num(ev.get("threshold")),
            "tokens": int(ev.get("tokens") or 0), "stopped_at": ev.get("stopped_at"), "warmup": bool(ev.get("warmup"))}
    elif kind == "Selected":
        st.selected = None if ev.get("id") is None else str(ev["id"])
        st.answer = ev.get("answer")
        st.score = num(ev.get("score"))
    elif kind == "KVCacheKept":
        st.kv_kept.append((int(ev.get("step") or 0), int(num(ev.get("tokens")) or 0)))
    elif kind == "StepDone":
        st.steps_done += 1
        st.last_step = ev.get("step")
    elif kind == "RunFinished":
        st.answer = ev.get("answer")
        st.score = num(ev.get("score"))
        if ev.get("node_id") is not None:
            st.selected = str(ev["node_id"])
        st.candidates = list(ev.get("candidates") or [])
    elif kind == "RunEnded":
        st.status = str(ev.get("status") or "finished")
        st.correct = ev.get("correct")
        st.error = ev.get("error")
        if ev.get("answer") is not None:
            st.answer = ev.get("answer")
        if isinstance(ev.get("compute"), dict):
            st.totals = ev["compute"]
        if ev.get("candidates") and st.candidates is None:
            st.candidates = list(ev["candidates"])
        _apply_judged(st, (ev.get("extras") or {}).get("candidates_judged"))


def _node_verdict(st: ViewState, node: NodeView) -> bool | None:
    """A finished node's correctness before the engine grades it: the answer against the truth for text;
    unknown for an image (its answer is the asked class by construction; the judge decides at the end)."""
    if st.is_image:
        return None
    return is_correct(node.answer, st.truth)


def _apply_judged(st: ViewState, judged: Any) -> None:
    """The held-out judge's verdicts on an image run's candidates (``candidates_judged`` of its extras)."""
    if not isinstance(judged, list):
        return
    for j in judged:
        if not isinstance(j, dict) or j.get("id") is None:
            continue
        nid = str(j["id"])
        st.judged[nid] = j
        node = st.nodes.get(nid)
        if node is not None and isinstance(j.get("judge_correct"), bool):
            node.correct = j["judge_correct"]


def tokens_of(t: dict) -> float:
    """All tokens of a totals dict (its ``tokens`` when present, else prompt + generated + verifier)."""
    return float(num(t.get("tokens")) or sum(num(t.get(k)) or 0.0 for k in (
        "prompt_tokens", "generated_tokens", "verifier_tokens")))


def num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _apply_resampled(st: ViewState, ev: dict) -> None:
    weights = [float(w) for w in ev.get("weights") or []]
    parent = [int(a) for a in ev.get("ancestors") or []]
    particles = [str(p) for p in ev.get("particles") or []]
    ps = ParticleStep(step=int(ev.get("step") or len(st.particle_steps) + 1), weights=weights, parent=parent,
                      ess=float(ev.get("ess") or 0.0), particles=particles)
    if st.particle_steps:
        prev = st.particle_steps[-1]
        prev.next_index = _link_populations(st, prev, len(weights))
    st.particle_steps.append(ps)
    st._pf_children = {}


def _link_populations(st: ViewState, prev: ParticleStep, n_now: int) -> list[int | None]:
    """Where each particle after ``prev``'s resampling sits in the next population.

    Open particles each grew one child since (added in population order); finished ones stay as they
    are. With ``finished=freeze`` finished particles leave the population, so indices shift; we rebuild
    the next population the way the strategy does and fall back to the identity when sizes disagree.
    """
    queues = {k: list(v) for k, v in st._pf_children.items()}
    grown: list[str] = []
    for pid in prev.particles:
        node = st.nodes.get(pid)
        if node is not None and not node.finished and queues.get(pid):
            grown.append(queues[pid].pop(0))
        else:
            grown.append(pid)
    freeze = str(st.params.get("finished", "")) == "freeze"
    out: list[int | None] = []
    k = 0
    for nid in grown:
        node = st.nodes.get(nid)
        if freeze and node is not None and node.finished:
            out.append(None)
        else:
            out.append(k)
            k += 1
    if k != n_now:
        return [i if i < n_now else None for i in range(len(prev.particles))]
    return out
