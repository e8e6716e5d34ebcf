"""The small interface every strategy searches over, the events strategies yield, and compute counters.

A strategy sees only ``SearchSpace`` and ``Node``: it never touches a model library. A domain
(reasoning text, diffusion latents) implements ``SearchSpace`` once in ``backends/``.
"""
from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterator, Protocol


class Cancelled(Exception):
    """Raised inside model loops when the run's cancel flag is set."""


class CancelToken:
    """A cooperative stop flag shared by the UI, the strategy and the backend loops."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


# Kinetics (Sadhukhan et al. 2025, "Kinetics: Rethinking Test-Time Scaling Laws") prices memory traffic in
# FLOPs: eFLOPs = FLOPs + bytes moved x the accelerator's arithmetic intensity (peak FLOP/s over memory
# bandwidth). Default: an NVIDIA H100 SXM5 from its datasheet, 989.4 TFLOP/s dense BF16 tensor-core compute
# and 3.35 TB/s HBM3 bandwidth, so about 295 FLOPs per byte (the paper's own cost model uses 562.5 for B200).
H100_FLOPS = 989.4e12
H100_BYTES_PER_S = 3.35e12
H100_FLOPS_PER_BYTE = H100_FLOPS / H100_BYTES_PER_S


def eflops_of(compute: dict | None, flops_per_byte: float = H100_FLOPS_PER_BYTE) -> float | None:
    """Kinetics' eFLOPs of a counters dict (``Compute.to_dict``, a stored run's totals, a sweep cell's means):
    FLOPs plus memory bytes x ``flops_per_byte``. None where the memory was not counted: a record from before
    the counter existed (no ``mem_bytes``), or one that spent tokens or NFE with no memory charged (an
    OpenAI-compatible server's): its eFLOPs are unknown, not equal to its FLOPs."""
    d = compute or {}
    try:
        mem = float(d["mem_bytes"])
        flops = float(d.get("flops") or 0.0)
        spent = any(float(d.get(k) or 0.0) > 0 for k in ("generated_tokens", "verifier_tokens", "nfe"))
    except (KeyError, TypeError, ValueError):
        return None
    if mem == 0 and spent:
        return None
    return flops + mem * float(flops_per_byte)


@dataclass
class Compute:
    """Compute spent, counted by the backend that spends it.

    ``mem_bytes`` is the memory traffic the forwards need: weights read once per batched forward, plus the
    KV cache each sequence's attention reads (Kinetics' cost model; activations are not counted). A float, as
    ``flops``: a hub model's totals outgrow SQLite's 64-bit integers.

    ``thinking_tokens`` is the part of ``generated_tokens`` a thinking model spent inside its thought (between
    its thinking delimiters); the rest of ``generated_tokens`` is the answer. Runs stored before it load with 0.
    """

    prompt_tokens: int = 0
    generated_tokens: int = 0
    thinking_tokens: int = 0
    verifier_tokens: int = 0
    model_calls: int = 0
    verifier_calls: int = 0
    nfe: int = 0
    flops: float = 0.0
    mem_bytes: float = 0.0
    kv_bytes_peak: int = 0
    wall_s: float = 0.0
    draft_tokens: int = 0     # tokens proposed by model-free drafting (backends.text.drafting)
    draft_accepted: int = 0   # of which the target model accepted

    def add(self, other: "Compute") -> None:
        for f in fields(self):
            if f.name == "kv_bytes_peak":
                self.kv_bytes_peak = max(self.kv_bytes_peak, other.kv_bytes_peak)
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def minus(self, earlier: "Compute") -> "Compute":
        """The counters spent since ``earlier`` (peaks are kept as they are)."""
        out = Compute(**{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)})
        out.kv_bytes_peak = self.kv_bytes_peak
        return out

    def copy(self) -> "Compute":
        return Compute(**asdict(self))

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.generated_tokens + self.verifier_tokens

    def to_dict(self) -> dict[str, float]:
        d = asdict(self)
        d["tokens"] = self.tokens
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> "Compute":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (d or {}).items() if k in names})


@dataclass(eq=False)
class Node:
    """One partial or final state of a generator, as a strategy sees it.

    ``payload`` belongs to the domain (token text, a latent); strategies pass it through untouched.
    Nodes compare by identity: payloads such as tensors have no useful equality.
    """

    id: str
    parent: str | None
    depth: int
    preview: str
    finished: bool = False
    answer: str | None = None
    payload: Any = None
    cost: Compute = field(default_factory=Compute)
    seed: int | None = None


@dataclass
class Score:
    """A verifier's judgement: the aggregated value and the raw per-step scores it came from; a generative
    critic's also carries the critiques they were voted from (``score_nodes`` shows them as Critiqued events)."""

    value: float
    per_step: list[float] = field(default_factory=list)
    critiques: list["Critique"] = field(default_factory=list)


AGGREGATIONS = ("last", "min", "prod", "mean", "model")


def aggregate(per_step: list[float], how: str) -> float:
    """Reduce per-step scores to one value. ``model`` expects a single whole-answer score."""
    if not per_step:
        return 0.0
    if how in ("last", "model"):
        return per_step[-1]
    if how == "min":
        return min(per_step)
    if how == "prod":
        return math.prod(per_step)
    if how == "mean":
        return sum(per_step) / len(per_step)
    raise ValueError(f"unknown aggregation {how!r}; choose one of {', '.join(AGGREGATIONS)}")


class SearchSpace(Protocol):
    """What a domain offers a strategy. All methods are batched over nodes.

    ``max_steps`` is the step limit, and the space enforces it: a node ``extend`` makes at depth
    ``max_steps`` is finished, with no answer when its last step gave none (a truncated chain), so strategies
    never roll out past the limit and such a node competes as an answerless candidate.

    Optional: ``same_answer(a, b) -> bool``, whether two extracted answers are equal by the domain's grader
    (``\\frac12`` and ``0.5`` in free-form math); votes use it to group answers, exact equality where a domain
    has none (strategies/common.py ``answer_groups``).

    Optional: ``race(nodes, temperature=None) -> list[Node]``, the nodes rolled out in one batch that stops at
    the token where the first ends: that one is finished, the others are cut there, unfinished (first finish).

    Optional: ``complete_with_logprobs(nodes, top_k, stop=None, temperature=None) -> list[Node]``, rolled out as
    by ``complete`` keeping each generated token's top-k log-probabilities, read back with
    ``token_logprobs(node) -> list[list[float]]``; ``stop(top_logprobs so far) -> bool`` cuts a sample at the
    token where it is true (unfinished, no answer): confidence-based methods (DeepConf).

    Optional, for thinking models (a thought between delimiters before the answer; budget forcing):
    ``think(nodes, max_tokens, temperature=None) -> list[tuple[Node, bool]]``, each node's open thought continued
    by at most ``max_tokens`` tokens, paired with whether the model tried to end it there (the end-of-thinking
    delimiter it wrote is not appended, so the caller decides); ``end_thinking(nodes) -> list[Node]``, the
    end-of-thinking delimiter forced on each thought, so what follows is the answer (``complete`` writes it);
    ``wait(nodes) -> list[Node]``, "Wait," (the domain's extension text) appended to each open thought;
    ``thinking_tokens(node) -> int``, the tokens generated in the node's thought so far (forced text excluded).
    A domain without them has no thought to budget.

    Optional, for generative verifiers (a critic that writes a check of each step and a verdict):
    ``critique(nodes, k, temperature=None) -> list[list[Critique]]``, ``k`` sampled critiques of each node's
    steps so far (partial or final), by the space's verifier, charged as verifier compute. The oracle critiques
    exactly (its ``k`` critiques agree); a verifier that cannot critique (a likelihood PRM) raises ValueError
    naming it, so a strategy that needs critiques fails with that one line.

    Optional: ``clusters(nodes) -> list[int]``, a semantic cluster label per node (0, 1, ... in order of first
    appearance; nodes with one label say the same thing), for ETS's coverage term; ETS drops that term where a
    domain has none (strategies/ets.py).
    """

    max_steps: int
    seed: int  # seeds the strategy's own randomness (resampling, tie-breaks), so a run is reproducible

    def initial(self, n: int) -> list[Node]:
        """``n`` roots: the prompt (or an initial noise) with its own sampling seed."""

    def extend(self, nodes: list[Node], k: int, temperature: float | None = None) -> list[list[Node]]:
        """One more step from each node, ``k`` children each (``temperature`` overrides the space's)."""

    def complete(self, nodes: list[Node], temperature: float | None = None) -> list[Node]:
        """Each node rolled out to a final state."""

    def score(self, nodes: list[Node]) -> list[Score]:
        """The verifier on partial or final nodes, paired with the nodes in order."""

    def extract(self, node: Node) -> str | None:
        """The canonical answer of a final node, for voting (None where the domain has none)."""


class ImageSearchSpace(SearchSpace, Protocol):
    """Optional extension for generators whose states are latents (diffusion and flow models).

    Strategies stay free of tensors: everything numeric on a latent happens here, in the space. A node
    at depth d has done d of its schedule's denoising steps; depth 0 is an initial noise, or the prompt
    root (no latent yet: ``extend``/``complete`` on it draw a fresh seeded noise per child, so best-of-N
    over the root is random search over noises). ``score`` reads the predicted clean image x0-hat.
    """

    max_schedule: int  # the longest schedule ``noises(..., steps=)`` accepts

    def noises(self, parent: Node, n: int, steps: int | None = None) -> list[Node]:
        """``n`` fresh initial noises under a prompt root, each with its own recorded seed; ``steps``
        overrides the schedule length of their trajectories (``max_steps`` by default)."""

    def perturb(self, nodes: list[Node], cosine: float, k: int) -> list[list[Node]]:
        """``k`` neighbours of each node's latent (a noise or an intermediate x_t) on the sphere of its
        norm at the given cosine to it: zero-order search's neighbours, evolutionary search's mutation."""

    def renoise(self, nodes: list[Node], to_step: int, k: int) -> list[list[Node]]:
        """``k`` copies of each node taken back by the forward process to the noise level of step
        ``to_step`` (each with fresh noise): search over paths."""

    def resample(self, nodes: list[Node], ancestors: list[int]) -> list[Node]:
        """The population after resampling: a copy of ``nodes[a]``'s whole state (latent, schedule
        position, recipe) for each ``a``, with a fresh RNG key per copy so copies diverge (SMC)."""


@dataclass
class Critique:
    """One critique of a solution, as a generative verifier wrote it. ``verdict`` is None where it calls every
    step it checked correct, else the first step it calls wrong (1-based, over the node's steps); ``checks`` is
    its finding on each step it checked, in order (True: the step checks out); ``text`` is what it wrote, shown
    in the views; ``parsed`` is False where the text was malformed and the verdict is the fallback's reading."""

    verdict: int | None
    checks: list[bool] = field(default_factory=list)
    text: str = ""
    parsed: bool = True


def critique_score(critiques: list[Critique]) -> float:
    """The outcome score of a node from its critiques: the share that call it correct (0.5 with none: no
    information)."""
    if not critiques:
        return 0.5
    return sum(c.verdict is None for c in critiques) / len(critiques)


# ---- events -------------------------------------------------------------------------------------

@dataclass
class Event:
    """Base of all events; ``cost`` is the compute spent since the previous event (set by the runner)."""

    def to_dict(self) -> dict:
        d = {"type": type(self).__name__}
        for f in fields(self):
            v = getattr(self, f.name)
            d[f.name] = v.to_dict() if isinstance(v, Compute) else v
        return d


@dataclass
class RunStarted(Event):
    strategy: str
    params: dict


@dataclass
class NodeAdded(Event):
    id: str
    parent: str | None
    step: int
    preview: str
    finished: bool
    answer: str | None
    node_cost: dict
    seed: int | None = None


@dataclass
class NodeScored(Event):
    id: str
    score: float
    per_step: list[float]


@dataclass
class NodePruned(Event):
    id: str
    reason: str


@dataclass
class Resampled(Event):
    step: int
    particles: list[str]
    ancestors: list[int]
    weights: list[float]
    ess: float


@dataclass
class NodeFinished(Event):
    id: str
    answer: str | None


@dataclass
class Selected(Event):
    id: str
    answer: str | None
    score: float | None


@dataclass
class NodeStats(Event):
    """Tree-search statistics of a node after a backup (MCTS visit count and mean value)."""

    id: str
    visits: int
    value: float


@dataclass
class TraceConfidence(Event):
    """A trace's confidence as DeepConf reads it: the group (sliding-window) confidence of each window (the last
    ends at the trace's last token, ``tokens``), the trace's confidence by the chosen measure, the threshold it
    was held to, and the number of tokens it kept when it was stopped (None: not stopped)."""

    id: str
    group: list[float]
    confidence: float
    threshold: float | None
    tokens: int
    stopped_at: int | None = None
    warmup: bool = False


@dataclass
class ThoughtProgress(Event):
    """Where sample ``sample``'s thought stands after a step of a thinking-budget method: ``tokens`` thought so
    far at node ``id``, and ``mark`` what happened there: "" (it thinks on), "wait" (its stop was replaced by
    the extension text), "end" (it ended its thought), "forced" (the end was forced at the budget), "probe" (an
    answer was probed there and not verified: the thought went on), "verified" (a probed answer was verified and
    the thought stopped there: Solve-Detect-Verify), "trimmed" (the rest of the thought was cut there as
    redundant: TrimR) or "answer" (``id`` is the answer written after the thought)."""

    sample: int
    id: str
    tokens: int
    mark: str = ""


@dataclass
class Critiqued(Event):
    """The critiques a generative verifier wrote of node ``id``: each one's verdict (None: correct; i: the first
    step it calls wrong), its text, and the node's score from them (``critique_score``, or the strategy's own
    rule where it says so)."""

    id: str
    verdicts: list[int | None]
    texts: list[str]
    score: float


@dataclass
class Attempt(Event):
    """Attempt ``round`` (0: the first) of chain ``chain`` of a refinement method is the final node ``id``. A
    revision names the attempt it revises and keeps that one's first ``kept`` steps, regenerating the rest (its
    critique flagged step ``kept`` + 1); the first attempt revises nothing (``revises`` None)."""

    chain: int
    round: int
    id: str
    revises: str | None = None
    kept: int = 0


@dataclass
class StepDone(Event):
    """A strategy finished one step of its outer loop (drives the step slider and live updates)."""

    step: int


@dataclass
class KVCacheKept(Event):
    """The KV cache the kept tree needs at a step, for tree searches that report it (REBASE, ETS): the tokens of
    the nodes kept for expansion and of all their ancestors, a shared prefix counted once (``kept_kv_tokens``
    in strategies/common.py)."""

    step: int
    tokens: int


@dataclass
class RunFinished(Event):
    answer: str | None
    node_id: str | None
    score: float | None
    candidates: list[dict]
    stats: dict = field(default_factory=dict)  # run-level numbers a strategy reports (kept KV cache: REBASE, ETS)


EVENT_TYPES: dict[str, type[Event]] = {c.__name__: c for c in (
    RunStarted, NodeAdded, NodeScored, NodePruned, Resampled, NodeFinished, NodeStats, TraceConfidence,
    ThoughtProgress, Critiqued, Attempt, Selected, StepDone, KVCacheKept, RunFinished)}


def event_from_dict(d: dict) -> Event:
    cls = EVENT_TYPES[d["type"]]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def added(node: Node) -> NodeAdded:
    return NodeAdded(id=node.id, parent=node.parent, step=node.depth, preview=node.preview,
                     finished=node.finished, answer=node.answer, node_cost=node.cost.to_dict(), seed=node.seed)


def candidates_table(finished: list[Node], scores: dict[str, float], answers: dict[str, str | None],
                     groups: dict[str, str | None]) -> list[dict]:
    """Rows for every finished candidate: answer, score, and how many candidates share the answer (by the
    answer group of each node id in ``groups``: answers the domain calls equal count together)."""
    votes: dict[str | None, int] = {}
    for n in finished:
        votes[groups[n.id]] = votes.get(groups[n.id], 0) + 1
    rows = [{"id": n.id, "answer": answers[n.id], "score": scores.get(n.id), "votes": votes[groups[n.id]]}
            for n in finished]
    return sorted(rows, key=lambda r: -(r["score"] if r["score"] is not None else -1.0))


Strategy = Iterator[Event]
