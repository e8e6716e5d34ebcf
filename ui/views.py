"""Pure display functions: event dicts in, plotly figures / table rows / HTML out.

Nothing here imports gradio or knows about models: a live run, a stored replay, a Compare column and
a Learn example all fold the same event dicts (``Event.to_dict()`` plus the engine's ``cost`` and
``totals``) through ``fold`` and draw the folded ``ViewState``.

Every string that came from a model or a user (step text, answers, problem text, error messages) is
escaped with :func:`esc` before it goes into HTML or into plotly hover text.
"""
from __future__ import annotations

import html
import logging
import math
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

log = logging.getLogger(__name__)

# An empty template: plotly's default one adds ~7 kB of JSON to every streamed figure.
_TEMPLATE = go.layout.Template(layout={"font": {"family": "system-ui, sans-serif", "size": 12},
                                       "paper_bgcolor": "white", "plot_bgcolor": "#fbfbfd",
                                       "hoverlabel": {"align": "left"}})
SCORE_SCALE = "Viridis"
PRUNED = "#c8c8cc"
CHOSEN = "#f5a400"
CORRECT = "#1a9e3f"
WRONG = "#d62728"
UNKNOWN = "#444444"
HOVER_WIDTH = 64
PREVIEW_CHARS = 400


def esc(text: Any) -> str:
    """HTML-escape untrusted text, and also the characters a JS template literal would act on.

    ``html.escape`` covers tags and attributes; ``$``, backtick, braces and backslash are escaped too so
    that the text stays inert even if some future component evaluates it as a template string.
    """
    s = html.escape("" if text is None else str(text), quote=True)
    return (s.replace("$", "&#36;").replace("`", "&#96;").replace("{", "&#123;").replace("}", "&#125;")
            .replace("\\", "&#92;"))


def _hover_text(text: str | None) -> str:
    """Untrusted multi-line text as escaped, wrapped plotly hover lines."""
    text = "" if text is None else str(text)
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS] + "…"
    lines: list[str] = []
    for raw in text.split("\n") or [""]:
        lines += textwrap.wrap(raw, HOVER_WIDTH, replace_whitespace=False, drop_whitespace=False) or [""]
    return "<br>".join(esc(line) for line in lines)


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
    # (tokens, FLOPs, NFE, score) at every NodeScored, in order: the best-score-vs-compute curves
    score_trace: list[tuple[float, float, float, float]] = field(default_factory=list)
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
        path, seen = [], set()
        nid = self.selected
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
    return _is_correct(state.answer, state.truth)


def _is_correct(answer: Any, truth: str | None) -> bool | None:
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
            node.score = _num(ev.get("score"))
            node.per_step = [float(x) for x in (ev.get("per_step") or []) if _num(x) is not None]
        if _num(ev.get("score")) is not None:
            t = st.totals or {}
            st.score_trace.append((_tokens(t), float(_num(t.get("flops")) or 0.0), float(_num(t.get("nfe")) or 0.0),
                                   float(ev["score"])))
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
            node.value = _num(ev.get("value"))
    elif kind == "Resampled":
        _apply_resampled(st, ev)
    elif kind == "Selected":
        st.selected = None if ev.get("id") is None else str(ev["id"])
        st.answer = ev.get("answer")
        st.score = _num(ev.get("score"))
    elif kind == "StepDone":
        st.steps_done += 1
        st.last_step = ev.get("step")
    elif kind == "RunFinished":
        st.answer = ev.get("answer")
        st.score = _num(ev.get("score"))
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
    return _is_correct(node.answer, st.truth)


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


def _tokens(t: dict) -> float:
    """All tokens of a totals dict (its ``tokens`` when present, else prompt + generated + verifier)."""
    return float(_num(t.get("tokens")) or sum(_num(t.get(k)) or 0.0 for k in (
        "prompt_tokens", "generated_tokens", "verifier_tokens")))


def _num(x: Any) -> float | None:
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


# ---- the tree -----------------------------------------------------------------------------------

def layout_tree(state: ViewState) -> dict[str, tuple[float, float]]:
    """x = step depth, y = leaf order (depth-first, children in insertion order), parents centred."""
    pos: dict[str, tuple[float, float]] = {}
    next_leaf = 0.0
    roots = list(state.children.get(None, []))
    # parents that never arrived (a replay cut mid-way) still get drawn: treat them as roots
    roots += [nid for nid, n in state.nodes.items() if n.parent is not None and n.parent not in state.nodes]
    for root in roots:
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            nid, done = stack.pop()
            kids = state.children.get(nid, [])
            if not kids:
                pos[nid] = (float(state.nodes[nid].step), next_leaf)
                next_leaf += 1.0
            elif done:
                ys = [pos[k][1] for k in kids if k in pos]
                pos[nid] = (float(state.nodes[nid].step), sum(ys) / len(ys) if ys else next_leaf)
            else:
                stack.append((nid, True))
                for k in reversed(kids):
                    if k not in pos:
                        stack.append((k, False))
    return pos


def _fmt(x: Any, digits: int = 3) -> str:
    v = _num(x)
    return "–" if v is None else f"{v:.{digits}f}"


def _node_hover(n: NodeView, chosen: bool, judged: dict | None = None, image: bool = False) -> str:
    parts = [f"<b>{esc(n.id)}</b> · step {n.step}" + (" · <b>chosen</b>" if chosen else "")]
    if image and n.parent is not None:  # a file path: the picture itself is in the gallery and the strips
        parts.append("final image" if n.finished else "latent (x_t and its x0-hat in the strips)")
    else:
        parts.append(_hover_text(n.preview))
    if n.score is not None:
        parts.append(f"verifier score (aggregated): <b>{_fmt(n.score)}</b>")
    if n.per_step:
        shown = ", ".join(_fmt(s, 2) for s in n.per_step[-12:])
        parts.append(f"per-step PRM scores: [{'…, ' if len(n.per_step) > 12 else ''}{shown}]")
    if n.visits is not None:
        parts.append(f"MCTS visits {n.visits}, mean value {_fmt(n.value)}")
    c = n.node_cost or {}
    gen, pre = c.get("generated_tokens"), c.get("prompt_tokens")
    if gen is not None or pre is not None:
        parts.append(f"cost of this step: {int(gen or 0)} generated + {int(pre or 0)} prompt tokens")
    if n.finished and image:
        verdict = {True: "✓ correct", False: "✗ wrong", None: "not judged"}[n.correct]
        seen = f"sees <b>{esc(judged.get('judge_predicted'))}</b>, " if judged else ""
        parts.append(f"held-out judge: {seen}{verdict}")
    elif n.finished:
        verdict = {True: "✓ correct", False: "✗ wrong", None: ""}[n.correct]
        parts.append(f"final answer: <b>{esc(n.answer)}</b> {verdict}")
    if n.pruned:
        parts.append(f"pruned: {esc(n.prune_reason)}")
    return "<br>".join(parts)


def _f32(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def empty_figure(message: str, height: int = 420) -> go.Figure:
    fig = go.Figure(layout={"template": _TEMPLATE, "height": height, "margin": dict(l=20, r=20, t=30, b=20),
                            "xaxis": {"visible": False}, "yaxis": {"visible": False}})
    fig.add_annotation(text="<br>".join(esc(line) for line in textwrap.wrap(message, 56)), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 14, "color": "#666"})
    return fig


def tree_figure(state: ViewState, height: int = 460, title: str | None = None, legend: bool = True) -> go.Figure:
    """The search tree: nodes at their step, coloured by verifier score; chosen path highlighted."""
    if not state.nodes:
        return empty_figure("Press Run: the search tree grows here step by step.", height)
    pos = layout_tree(state)
    chosen = set(state.chosen_path())

    ex: list[float] = []
    ey: list[float] = []
    for nid, n in state.nodes.items():  # one trace for every edge: NaN breaks the line between edges
        if n.parent is not None and n.parent in pos and nid in pos:
            (x0, y0), (x1, y1) = pos[n.parent], pos[nid]
            ex += [x0, x1, math.nan]
            ey += [y0, y1, math.nan]
    traces: list[go.Scatter] = [go.Scatter(x=_f32(ex), y=_f32(ey), mode="lines", hoverinfo="skip",
                                           line={"color": "#b9bcc6", "width": 1}, showlegend=False,
                                           name="edges")]
    path = [p for p in state.chosen_path() if p in pos]
    if len(path) > 1:
        traces.append(go.Scatter(x=_f32([pos[p][0] for p in path]), y=_f32([pos[p][1] for p in path]),
                                 mode="lines", hoverinfo="skip", line={"color": CHOSEN, "width": 5},
                                 name="chosen path", opacity=0.8))

    groups: dict[str, list[NodeView]] = {"scored": [], "unscored": [], "pruned": []}
    for n in state.nodes.values():
        if n.id not in pos:
            continue
        if n.pruned:
            groups["pruned"].append(n)
        elif n.score is None:
            groups["unscored"].append(n)
        else:
            groups["scored"].append(n)

    def xs(ns: list[NodeView]) -> np.ndarray:
        return _f32([pos[n.id][0] for n in ns])

    def ys(ns: list[NodeView]) -> np.ndarray:
        return _f32([pos[n.id][1] for n in ns])

    def hovers(ns: list[NodeView]) -> list[str]:
        return [_node_hover(n, n.id in chosen, state.judged.get(n.id), state.is_image) for n in ns]

    size = 11 if len(state.nodes) < 200 else 8
    if groups["pruned"]:
        ns = groups["pruned"]
        traces.append(go.Scatter(x=xs(ns), y=ys(ns), mode="markers", name="pruned", hovertext=hovers(ns),
                                 hovertemplate="%{hovertext}<extra></extra>", opacity=0.6,
                                 marker={"color": PRUNED, "size": size - 2, "line": {"color": "#9a9aa0", "width": 1}}))
    if groups["unscored"]:
        ns = groups["unscored"]
        traces.append(go.Scatter(x=xs(ns), y=ys(ns), mode="markers", name="not scored",
                                 hovertext=hovers(ns), hovertemplate="%{hovertext}<extra></extra>",
                                 marker={"color": "white", "size": size, "line": {"color": "#666", "width": 1.5}}))
    scores = [n.score for n in groups["scored"]]
    if groups["scored"]:
        ns = groups["scored"]
        lo, hi = (0.0, 1.0) if all(0.0 <= s <= 1.0 for s in scores) else (min(scores), max(scores) or 1.0)
        traces.append(go.Scatter(
            x=xs(ns), y=ys(ns), mode="markers", name="scored", showlegend=False, hovertext=hovers(ns),
            hovertemplate="%{hovertext}<extra></extra>",
            marker={"color": _f32(scores), "colorscale": SCORE_SCALE, "cmin": lo, "cmax": hi, "size": size,
                    "line": {"color": "#333", "width": 0.5},
                    "colorbar": {"title": {"text": "verifier<br>score"}, "thickness": 12, "len": 0.8}}))
    for label, verdict, colour, symbol in (("correct answer", True, CORRECT, "circle-open"),
                                           ("wrong answer", False, WRONG, "x-thin-open"),
                                           ("finished (answer unknown)", None, UNKNOWN, "diamond-open")):
        ns = [n for n in state.nodes.values() if n.finished and n.correct is verdict and n.id in pos]
        if ns:
            traces.append(go.Scatter(x=xs(ns), y=ys(ns), mode="markers", name=label, hoverinfo="skip",
                                     marker={"symbol": symbol, "size": size + 7, "color": colour,
                                             "line": {"color": colour, "width": 2}}))
    ring = [state.nodes[p] for p in path]
    if ring:
        traces.append(go.Scatter(x=xs(ring), y=ys(ring), mode="markers", hoverinfo="skip", showlegend=False,
                                 marker={"symbol": "circle-open", "size": size + 4, "color": CHOSEN,
                                         "line": {"color": CHOSEN, "width": 3}}, name="chosen"))
    max_step = max((n.step for n in state.nodes.values()), default=1)
    fig = go.Figure(data=traces, layout={
        "template": _TEMPLATE, "height": height, "uirevision": f"tree-{state.run_id}",
        "margin": dict(l=20, r=10, t=(64 if legend else 34) if title else 40, b=36), "hovermode": "closest",
        "title": {"text": esc(title), "font": {"size": 13}, "y": 0.99, "yanchor": "top"} if title else None,
        "xaxis": {"title": {"text": "denoising step" if state.is_image else "reasoning step"},
                  "dtick": 1 if max_step <= 30 else None, "range": [-0.5, max(max_step, 1) + 0.5],
                  "zeroline": False},
        "yaxis": {"visible": False},
        "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "font": {"size": 11}},
        "showlegend": legend,
    })
    return fig


# ---- particles ----------------------------------------------------------------------------------

def particle_figure(state: ViewState, height: int = 460) -> go.Figure:
    """Particle genealogy: one lane per particle, a column per resampling, lines from each new particle
    to the particle it copied; lineages with no descendant in the last population are greyed; below,
    the effective sample size per step with the N/2 line adaptive resampling would use."""
    steps = state.particle_steps
    if not steps:
        return empty_figure("The particle view shows runs that resample a population "
                            "(particle filtering, FK steering). This run has no resampling yet.", height)
    # alive[s][j]: particle j of population s has a descendant in the final population
    alive: list[list[bool]] = [[False] * len(ps.weights) for ps in steps]
    last = steps[-1]
    for i in last.parent:
        if 0 <= i < len(alive[-1]):
            alive[-1][i] = True
    for s in range(len(steps) - 2, -1, -1):
        ps = steps[s]
        nxt = ps.next_index or list(range(len(ps.parent)))
        for i, j in enumerate(ps.parent):
            k = nxt[i] if i < len(nxt) else None
            if k is not None and k < len(alive[s + 1]) and alive[s + 1][k] and 0 <= j < len(alive[s]):
                alive[s][j] = True

    # Display rows: each population is ordered by its parents' rows, so ancestry lines never cross
    # (a particle's index in the population is arbitrary; only who copied whom matters).
    pos: list[list[float]] = [[float(j) for j in range(len(steps[0].weights))]]
    for s in range(len(steps) - 1):
        ps, n_next = steps[s], len(steps[s + 1].weights)
        nxt = ps.next_index or list(range(len(ps.parent)))
        key: dict[int, tuple[float, int]] = {}
        for i, j in enumerate(ps.parent):
            k = nxt[i] if i < len(nxt) else None
            if k is not None and k < n_next and 0 <= j < len(pos[s]):
                key[k] = (pos[s][j], i)
        order = sorted(range(n_next), key=lambda k: key.get(k, (math.inf, k)))
        row = [0.0] * n_next
        for rank, k in enumerate(order):
            row[k] = float(rank)
        pos.append(row)
    final_order = sorted(range(len(last.parent)),
                         key=lambda i: (pos[-1][last.parent[i]] if 0 <= last.parent[i] < len(pos[-1]) else math.inf, i))
    final_pos = [0.0] * len(last.parent)
    for rank, i in enumerate(final_order):
        final_pos[i] = float(rank)

    def y_of(s: int, j: int) -> float:
        return pos[s][j] if 0 <= j < len(pos[s]) else float(j)

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.74, 0.26], vertical_spacing=0.06)
    live_x: list[float] = []
    live_y: list[float] = []
    dead_x: list[float] = []
    dead_y: list[float] = []
    for s, ps in enumerate(steps):
        nxt = ps.next_index if s + 1 < len(steps) else list(range(len(ps.parent)))
        nxt = nxt or list(range(len(ps.parent)))
        x0, x1 = float(ps.step), float(steps[s + 1].step) if s + 1 < len(steps) else float(ps.step) + 1.0
        for i, j in enumerate(ps.parent):
            k = nxt[i] if i < len(nxt) else None
            if k is None:
                continue
            on = alive[s + 1][k] if s + 1 < len(steps) and k < len(alive[s + 1]) else True
            bx, by = (live_x, live_y) if on else (dead_x, dead_y)
            bx += [x0, x1, math.nan]
            by += [y_of(s, j), y_of(s + 1, k) if s + 1 < len(steps) else final_pos[k], math.nan]
    fig.add_trace(go.Scatter(x=_f32(dead_x), y=_f32(dead_y), mode="lines", hoverinfo="skip", name="extinct lineage",
                             line={"color": "#d3d3d8", "width": 1}), row=1, col=1)
    fig.add_trace(go.Scatter(x=_f32(live_x), y=_f32(live_y), mode="lines", hoverinfo="skip",
                             name="surviving lineage", line={"color": "#3b6fd6", "width": 1.6}), row=1, col=1)
    px, py, pw, pc, ph = [], [], [], [], []
    for s, ps in enumerate(steps):
        n = max(len(ps.weights), 1)
        counts = [ps.parent.count(j) for j in range(len(ps.weights))]
        for j, w in enumerate(ps.weights):
            px.append(float(ps.step))
            py.append(y_of(s, j))
            pw.append(w)
            pc.append("#3b6fd6" if alive[s][j] else "#b5b5bb")
            ph.append(f"step {ps.step} · particle {j}<br>weight {w:.3f} (uniform would be {1 / n:.3f})"
                      f"<br>copies after resampling: {counts[j]}" + ("" if alive[s][j] else "<br>lineage extinct"))
    wmax = max(pw) if pw else 1.0
    fig.add_trace(go.Scatter(x=_f32(px), y=_f32(py), mode="markers", name="particle (size = weight)",
                             hovertext=ph, hovertemplate="%{hovertext}<extra></extra>",
                             marker={"size": _f32([5 + 16 * math.sqrt(w / wmax) if wmax > 0 else 6 for w in pw]),
                                     "color": pc, "line": {"color": "#333", "width": 0.5}}), row=1, col=1)
    fx = [float(last.step) + 1.0] * len(last.parent)
    fy = final_pos
    fig.add_trace(go.Scatter(x=_f32(fx), y=_f32(fy), mode="markers", name="final population",
                             hoverinfo="skip", marker={"size": 6, "color": "#3b6fd6", "symbol": "square"}),
                  row=1, col=1)
    sx = _f32([float(ps.step) for ps in steps])
    fig.add_trace(go.Scatter(x=sx, y=_f32([ps.ess for ps in steps]), mode="lines+markers", name="ESS",
                             line={"color": "#7a3bd6"},
                             hovertemplate="step %{x}: ESS %{y:.2f}<extra></extra>"), row=2, col=1)
    # FK steering records its threshold (a fraction of N); particle filtering resamples every step, and
    # N/2 is the usual line to read its ESS against
    frac = _num(state.params.get("ess_threshold"))
    frac = 0.5 if frac is None else frac
    fig.add_trace(go.Scatter(x=sx, y=_f32([len(ps.weights) * frac for ps in steps]), mode="lines",
                             name=f"{'N/2' if frac == 0.5 else f'{frac:g}·N'} (adaptive-resampling threshold)",
                             hoverinfo="skip",
                             line={"color": WRONG, "dash": "dash", "width": 1}), row=2, col=1)
    fig.update_layout(template=_TEMPLATE, height=height, uirevision=f"pf-{state.run_id}",
                      margin=dict(l=50, r=10, t=24, b=36), hovermode="closest",
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "font": {"size": 11}})
    fig.update_yaxes(title_text="particles (ordered by ancestry)", row=1, col=1, zeroline=False,
                     showticklabels=False)
    fig.update_yaxes(title_text="ESS", row=2, col=1, rangemode="tozero")
    fig.update_xaxes(title_text="resampling step", dtick=1, row=2, col=1)
    return fig


# ---- tables and HTML ----------------------------------------------------------------------------

CANDIDATE_HEADERS = ["candidate", "answer", "score", "votes", "correct", "chosen"]


def candidates_rows(state: ViewState) -> list[list[Any]]:
    """Every finished candidate: answer, aggregated score, votes for its answer, correctness, chosen.

    Plain strings and numbers only (the table shows them as text)."""
    if state.candidates is not None:
        rows = [{"id": str(c.get("id")), "answer": c.get("answer"), "score": _num(c.get("score")),
                 "votes": c.get("votes")} for c in state.candidates]
    else:  # live: what has finished so far
        finished = [n for n in state.nodes.values() if n.finished]
        votes: dict[Any, int] = {}
        for n in finished:
            votes[normalise_answer(n.answer)] = votes.get(normalise_answer(n.answer), 0) + 1
        rows = [{"id": n.id, "answer": n.answer, "score": n.score, "votes": votes[normalise_answer(n.answer)]}
                for n in finished]
        rows.sort(key=lambda r: -(r["score"] if r["score"] is not None else -1.0))
    out = []
    for r in rows:
        node = state.nodes.get(r["id"])
        correct = node.correct if node is not None and (node.correct is not None or state.is_image) \
            else _is_correct(r["answer"], state.truth)
        out.append([r["id"], "" if r["answer"] is None else str(r["answer"]),
                    None if r["score"] is None else round(r["score"], 4), r["votes"],
                    {True: "✓", False: "✗", None: ""}[correct], "★" if r["id"] == state.selected else ""])
    return out


def _human(x: float, unit: str = "") -> str:
    x = float(x)
    for div, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.2f} {suffix}{unit}"
    return f"{x:.0f} {unit}".strip() if x == int(x) else f"{x:.2f} {unit}".strip()


def _bytes(x: float) -> str:
    x = float(x)
    for div, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if x >= div:
            return f"{x / div:.2f} {suffix}"
    return f"{x:.0f} B"


METER_CSS = """
<style>
.tts-meter{display:grid;grid-template-columns:repeat(auto-fit,minmax(118px,1fr));gap:6px;font-family:system-ui,sans-serif}
.tts-meter .cell{background:#f4f5f9;border-radius:8px;padding:6px 8px}
.tts-meter .k{font-size:11px;color:#666}.tts-meter .v{font-size:17px;font-weight:600;font-variant-numeric:tabular-nums}
.tts-status{font-family:system-ui,sans-serif;font-size:14px;line-height:1.5;padding:4px 2px}
.tts-status .prob{font-family:ui-monospace,monospace;background:#f4f5f9;border-radius:6px;padding:2px 6px;white-space:pre-wrap;word-break:break-word}
.tts-ok{color:#1a9e3f;font-weight:600}.tts-bad{color:#d62728;font-weight:600}
</style>"""


def compute_meter_html(totals: dict | None) -> str:
    """Tokens, calls, FLOPs, KV-cache peak and wall time as a row of tiles (all text escaped)."""
    t = totals or {}

    def num(k: str) -> float:
        return _num(t.get(k)) or 0.0

    cells = [
        ("prompt tokens", _human(num("prompt_tokens"))),
        ("generated tokens", _human(num("generated_tokens"))),
        ("verifier tokens", _human(num("verifier_tokens"))),
        ("model calls", _human(num("model_calls"))),
        ("verifier calls", _human(num("verifier_calls"))),
        ("FLOPs", _human(num("flops"))),
        ("KV cache peak", _bytes(num("kv_bytes_peak"))),
        ("wall time", f"{num('wall_s'):.2f} s"),
    ]
    if num("nfe"):
        cells.insert(5, ("NFE", _human(num("nfe"))))
    body = "".join(f'<div class="cell"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div></div>'
                   for k, v in cells)
    return f'{METER_CSS}<div class="tts-meter" data-testid="compute-meter">{body}</div>'


def status_html(state: ViewState) -> str:
    """The problem (escaped), the truth, the run's status and its answer."""
    if state.status == "idle" and not state.run_id:
        return METER_CSS + '<div class="tts-status" data-testid="run-status">Ready: press <b>Run</b>.</div>'
    if state.status == "refused" and not state.run_id:
        return (METER_CSS + '<div class="tts-status" data-testid="run-status"><span class="tts-bad">refused: '
                f"{esc(state.error)}</span></div>")
    if state.status == "starting" and not state.run_id:
        return (METER_CSS + f'<div class="tts-status" data-testid="run-status"><b>{esc(state.strategy or "")}</b>'
                " · starting (loading the models the first time)…</div>")
    p = state.problem or {}
    parts = []
    if p.get("text"):
        parts.append(f'Problem: <span class="prob" data-testid="problem-text">{esc(p.get("text"))}</span>')
        extra = []
        if p.get("difficulty") is not None:
            extra.append(f"difficulty {esc(p.get('difficulty'))}")
        if p.get("answer") is not None:
            extra.append(f"ground truth {esc(p.get('answer'))}")
        if extra:
            parts.append(" · ".join(extra))
    head = f"<b>{esc(state.strategy or '')}</b>" + (f" · run <code>{esc(state.run_id)}</code>" if state.run_id else "")
    status = esc(state.status)
    line = f"{head} · {status} · {state.steps_done} step{'s' if state.steps_done != 1 else ''} · {len(state.nodes)} nodes"
    if state.answer is not None or state.status != "running":
        verdict = {True: '<span class="tts-ok">✓ correct</span>', False: '<span class="tts-bad">✗ wrong</span>',
                   None: ""}[run_verdict(state)]
        line += f" · answer <b>{esc(state.answer)}</b> {verdict}" if state.answer is not None else " · no answer"
        if state.score is not None:
            line += f" (score {_fmt(state.score)})"
    parts.append(line)
    if state.error:
        parts.append(f'<span class="tts-bad">error: {esc(state.error)}</span>')
    return METER_CSS + '<div class="tts-status" data-testid="run-status">' + "<br>".join(parts) + "</div>"


# ---- several runs -------------------------------------------------------------------------------

X_AXES = {"tokens": "tokens (prompt + generated + verifier)", "flops": "FLOPs",
          "nfe": "NFE (denoiser evaluations)"}


def best_score_curve(state: ViewState, x: str = "tokens") -> tuple[list[float], list[float]]:
    """(compute, best verifier score so far) after each scoring event of one folded run; ``x`` is
    tokens, flops or nfe."""
    col = {"tokens": 0, "flops": 1, "nfe": 2}[x]
    xs, best = [], []
    cur = None
    for point in state.score_trace:
        cur = point[3] if cur is None else max(cur, point[3])
        xs.append(point[col])
        best.append(cur)
    return xs, best


def compute_axis(states: list[ViewState]) -> str:
    """The compute axis that fits these runs: NFE when every run is an image run, else tokens."""
    return "nfe" if states and all(s.is_image for s in states) else "tokens"


def score_vs_compute_figure(runs: list[ViewState | list[dict]], labels: list[str] | None = None,
                            x: str | None = None, height: int = 360) -> go.Figure:
    """Best verifier score found so far against compute spent, one line per run (folded states or event
    lists). ``x``: tokens, flops or nfe; by default NFE for image runs, tokens otherwise. A run of the
    other domain than the axis is left out with a note (tokens and NFE share no axis)."""
    states = [r if isinstance(r, ViewState) else fold(r) for r in runs]
    x = x or compute_axis(states)
    what = "NFE" if x == "nfe" else "compute"
    fig = go.Figure(layout={"template": _TEMPLATE, "height": height, "margin": dict(l=50, r=10, t=60, b=40),
                            "title": {"text": f"Best verifier score found so far vs {what}",
                                      "font": {"size": 13}, "y": 0.98, "yanchor": "top"},
                            "xaxis": {"title": {"text": X_AXES[x]}, "type": "log"},
                            "yaxis": {"title": {"text": "best verifier score so far"}},
                            "legend": {"orientation": "h", "y": 1.0, "yanchor": "bottom"},
                            "uirevision": "score-vs-compute"})
    any_points = False
    left_out = 0
    for i, st in enumerate(states):
        if st.is_image != (x == "nfe"):
            left_out += 1
            continue
        xs, best = best_score_curve(st, x)
        if not xs:
            continue
        any_points = True
        label = labels[i] if labels and i < len(labels) else f"run {i + 1}"
        fig.add_trace(go.Scatter(x=_f32(xs), y=_f32(best), mode="lines+markers", line={"shape": "hv"},
                                 name=esc(label), marker={"size": 4}))
    note = "No verifier scores in these runs." if not any_points else ""
    if left_out:
        note = (f"{left_out} run(s) of the other domain left out: image runs are measured in NFE, "
                "reasoning runs in tokens. " + note)
    if note:
        fig.add_annotation(text="<br>".join(esc(line) for line in textwrap.wrap(note, 70)), showarrow=False,
                           x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


COMPARE_HEADERS = ["metric"]


def metrics_rows(states: list[ViewState], labels: list[str]) -> tuple[list[str], list[list[Any]]]:
    """A metrics table, one column per run."""
    headers = ["metric"] + [str(label) for label in labels]

    def row(name: str, fn) -> list[Any]:
        return [name] + [fn(s) for s in states]

    t = lambda s, k: _num((s.totals or {}).get(k))  # noqa: E731
    rows = [
        row("strategy", lambda s: s.strategy or ""),
        row("status", lambda s: s.status),
        row("answer", lambda s: "" if s.answer is None else str(s.answer)),
        row("correct", lambda s: {True: "✓", False: "✗", None: ""}[run_verdict(s)]),
        row("score", lambda s: None if s.score is None else round(s.score, 4)),
        row("steps", lambda s: s.steps_done),
        row("nodes", lambda s: len(s.nodes)),
        row("finished candidates", lambda s: sum(1 for n in s.nodes.values() if n.finished)),
        row("tokens", lambda s: int(_tokens(s.totals or {}))),
        row("NFE", lambda s: int(t(s, "nfe") or 0)),
        row("generated tokens", lambda s: int(t(s, "generated_tokens") or 0)),
        row("model calls", lambda s: int(t(s, "model_calls") or 0)),
        row("verifier calls", lambda s: int(t(s, "verifier_calls") or 0)),
        row("FLOPs", lambda s: _human(t(s, "flops") or 0)),
        row("KV cache peak", lambda s: _bytes(t(s, "kv_bytes_peak") or 0)),
        row("wall time (s)", lambda s: round(t(s, "wall_s") or 0.0, 2)),
    ]
    return headers, rows


# ---- sweeps -------------------------------------------------------------------------------------

def _compute_of(cell: dict, x: str) -> float | None:
    c = cell.get("compute") or {}
    if x == "flops":
        return _num(c.get("flops"))
    v = _num(c.get("tokens"))
    if v is None:
        v = sum(_num(c.get(k)) or 0.0 for k in ("prompt_tokens", "generated_tokens", "verifier_tokens")) or None
    return v


def _difficulties(result: dict) -> list[str]:
    levels: set[str] = set()
    for cell in result.get("results") or []:
        levels |= set((cell.get("by_difficulty") or {}).keys())
    return sorted(levels, key=lambda s: (len(s), s))


def scaling_figure(result: dict | None, x: str = "tokens", height: int = 640) -> go.Figure:
    """Accuracy against compute per problem (log x), one line per strategy, oracle pass@N as a ceiling;
    below, the same per difficulty level."""
    cells = (result or {}).get("results") or []
    if not cells:
        return empty_figure("Run a sweep or open a stored one to see accuracy against compute.", height)
    levels = _difficulties(result)
    ncols = max(1, min(len(levels), 5))
    fig = make_subplots(rows=2, cols=ncols, specs=[[{"colspan": ncols}] + [None] * (ncols - 1), [{}] * ncols],
                        row_heights=[0.6, 0.4], vertical_spacing=0.14, horizontal_spacing=0.03,
                        subplot_titles=["all problems"] + [f"difficulty {esc(lv)}" for lv in levels[:ncols]])
    strategies = list(dict.fromkeys(c.get("strategy") for c in cells))
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
    xlabel = "FLOPs per problem" if x == "flops" else "tokens per problem"
    for si, strat in enumerate(strategies):
        colour = palette[si % len(palette)]
        rows = sorted((c for c in cells if c.get("strategy") == strat), key=lambda c: _compute_of(c, x) or 0)
        rows = [c for c in rows if _compute_of(c, x)]
        if not rows:
            continue
        hover = [f"{esc(strat)} · budget {esc(c.get('budget'))}<br>accuracy {float(c.get('accuracy') or 0):.1%}"
                 f" on {esc(c.get('n_problems'))} problems<br>{_human(_compute_of(c, x) or 0)} {x} per problem"
                 for c in rows]
        fig.add_trace(go.Scatter(x=[_compute_of(c, x) for c in rows], y=[c.get("accuracy") for c in rows],
                                 mode="lines+markers+text", name=esc(strat), legendgroup=esc(strat),
                                 text=[f"N={esc(c.get('budget'))}" for c in rows], textposition="top center",
                                 textfont={"size": 9, "color": colour}, hovertext=hover,
                                 hovertemplate="%{hovertext}<extra></extra>", line={"color": colour}), row=1, col=1)
        for li, lv in enumerate(levels[:ncols]):
            pts = [(c, (c.get("by_difficulty") or {}).get(lv)) for c in rows]
            pts = [(c, a) for c, a in pts if a is not None]
            if pts:
                fig.add_trace(go.Scatter(x=[_compute_of(c, x) for c, _ in pts], y=[a for _, a in pts],
                                         mode="lines+markers", name=esc(strat), legendgroup=esc(strat),
                                         showlegend=False, line={"color": colour}, marker={"size": 5},
                                         hovertemplate=f"{esc(strat)} · difficulty {esc(lv)}<br>"
                                                       "accuracy %{y:.1%}<extra></extra>"), row=2, col=li + 1)
    oracle = ((result or {}).get("oracle") or {}).get("pass@k") or {}
    pts = []
    for k, acc in oracle.items():
        if acc is None:
            continue
        # place pass@k at the compute of drawing k samples: the sampling strategy's cell at budget k
        same = [c for c in cells if str(c.get("budget")) == str(k) and _compute_of(c, x)
                and c.get("strategy") in ("best_of_n", "weighted_bon", "majority_vote")]
        same = same or [c for c in cells if str(c.get("budget")) == str(k) and _compute_of(c, x)]
        if same:
            pts.append((min(_compute_of(c, x) for c in same), float(acc), k))
    pts.sort()
    if pts:
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                 name="oracle pass@N (ceiling)", line={"color": "#111", "dash": "dot"},
                                 marker={"symbol": "star", "size": 9},
                                 hovertext=[f"pass@{esc(k)} = {a:.1%}: some sample is right" for _, a, k in pts],
                                 hovertemplate="%{hovertext}<extra></extra>"), row=1, col=1)
    fig.update_xaxes(type="log")
    fig.update_xaxes(title_text=xlabel, row=1, col=1)
    fig.update_yaxes(range=[-0.03, 1.03], tickformat=".0%")
    fig.update_yaxes(title_text="accuracy", row=1, col=1)
    fig.update_yaxes(showticklabels=False, row=2)
    fig.update_yaxes(showticklabels=True, title_text="accuracy", row=2, col=1)
    fig.update_layout(template=_TEMPLATE, height=height, margin=dict(l=60, r=10, t=40, b=40),
                      uirevision="scaling", legend={"orientation": "h", "y": -0.08, "yanchor": "top"})
    return fig


OPTIMAL_HEADERS = ["difficulty", "budget", "best strategy", "accuracy", "tokens / problem", "runner-up"]


def compute_optimal_table(result: dict | None) -> list[list[Any]]:
    """For each difficulty level and budget: the strategy with the highest accuracy (ties: less compute),
    as the compute-optimal test-time scaling paper tabulates it."""
    cells = (result or {}).get("results") or []
    out: list[list[Any]] = []
    budgets = sorted({int(c.get("budget") or 0) for c in cells})
    for lv in ["all"] + _difficulties(result or {}):
        for b in budgets:
            cands = []
            for c in cells:
                if int(c.get("budget") or 0) != b:
                    continue
                acc = c.get("accuracy") if lv == "all" else (c.get("by_difficulty") or {}).get(lv)
                if acc is not None:
                    cands.append((float(acc), -(_compute_of(c, "tokens") or 0.0), c))
            if not cands:
                continue
            cands.sort(key=lambda t: (t[0], t[1]), reverse=True)
            acc, negtok, best = cands[0]
            runner = f"{cands[1][2].get('strategy')} ({cands[1][0]:.0%})" if len(cands) > 1 else ""
            out.append([lv, b, str(best.get("strategy")), f"{acc:.0%}", round(-negtok), runner])
    return out
