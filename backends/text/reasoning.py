"""The reasoning domain on the search-space interface: one step = one delimited line of text.

A node's payload is the tuple of steps after the prompt. Generation goes through a policy
(``CausalLMPolicy``), scores through a step verifier; both report the compute they spend, which this
space adds to its meter and to each node.

A thinking model (``thinking`` = its open and close delimiters, from the catalog) writes a thought before its
answer steps. The thought is ONE step, the payload's first: ``<think>`` + newline + the thought, ending with
``</think>`` once closed. The space writes the open delimiter itself (the model would), so a thought always has
it. Every strategy works unchanged: a node without a closed thought is first made to think, as one step, up to
``max_think_tokens`` tokens (the close forced there), by ``extend`` and by the roll-outs alike; only then come
the answer steps. A confidence roll-out (DeepConf) runs on the answers after each sample's thought; a race
(first finish) runs over the whole traces, thought and answer, so the first to end stops the others mid-thought.
Budget forcing drives the thought itself through ``think``, ``end_thinking`` and ``wait``.
The tokens generated inside thoughts are counted apart (``Compute.thinking_tokens``).
"""
from __future__ import annotations

import itertools
import os
import random
from dataclasses import dataclass, field, replace

from backends import catalog
from backends.text.critic import CRITIC_OPTIONS, CriticSettings, critic_option
from backends.text.loaders import load_policy, load_verifier
from backends.text import datasets_local
from backends.text import math_grading
from backends.embedded import arith
from backends.errors import InputError
from backends.problem_ids import resolve_problem_with
from strategies.core import AGGREGATIONS, CancelToken, Compute, Critique, Node, Score, aggregate


@dataclass
class ReasoningTask:
    """What the space needs of a problem: the text shown to the policy, and how to read and grade answers."""

    problem: arith.Problem
    prompt: str

    def extract(self, text: str) -> str | None:
        return arith.extract_answer(text)

    def is_final_step(self, step: str) -> bool:
        return arith.extract_answer(step) is not None

    def split(self, text: str) -> list[str]:
        return arith.split_steps(text)

    def same_answer(self, a: str, b: str) -> bool:
        """Equal as the grader compares them (``arith.is_correct``: as integers)."""
        return a == b or (a.lstrip("-").isdigit() and b.lstrip("-").isdigit() and int(a) == int(b))

    def cluster_key(self, steps: tuple[str, ...]) -> int | None:
        """What a partial solution says, for clustering: the running value its last step reached (None: the last
        step shows none)."""
        return arith.step_value(steps[-1]) if steps else None


@dataclass(frozen=True)
class TextOptions:
    """The reasoning domain's backend options (``--option NAME=VALUE``): ``kv_reuse=on|off`` (default on:
    answers are the same either way, see ``backends.text.kv_reuse``), ``kv_budget_mb`` (the store's bound,
    default ``TTS_KV_BUDGET_MB`` or 512) and ``drafting=off|ngram`` (model-free speculative sampling,
    ``backends.text.drafting``). A policy or verifier that keeps no cache here (a server, vLLM: they cache on
    their side) ignores ``kv_reuse``; ``drafting`` needs the transformers policy and is refused elsewhere.
    A generative critic's (``backends.text.critic``, tiny-critic): ``critiques=K`` (critiques per solution, default
    4), ``vote=share|majority|unanimous`` and ``meta=on|off`` (DeepSeek-GRM's meta-RM); refused for a verifier
    that writes no critiques."""

    kv_reuse: bool = True
    kv_budget_bytes: int | None = None  # None: the backend's default
    drafting: str = "off"
    critic: CriticSettings | None = None  # None: no critic option given


DRAFTING_MODES = ("off", "ngram")


def parse_text_options(options: dict | None) -> TextOptions:
    """Validated options; InputError names the bad one."""
    out = TextOptions()
    for name, raw in (options or {}).items():
        value = str(raw).strip().lower()
        if name == "kv_reuse":
            if value not in ("on", "off", "true", "false", "1", "0"):
                raise InputError(f"kv_reuse must be on or off, got {raw!r}")
            out = replace(out, kv_reuse=value in ("on", "true", "1"))
        elif name == "kv_budget_mb":
            try:
                mb = float(value)
            except ValueError:
                mb = -1.0
            if not 0 < mb <= 2**20:
                raise InputError(f"kv_budget_mb must be a positive number of MiB, got {raw!r}")
            out = replace(out, kv_budget_bytes=int(mb * 2**20))
        elif name == "drafting":
            if value not in DRAFTING_MODES:
                raise InputError(f"drafting must be one of {', '.join(DRAFTING_MODES)}, got {raw!r}")
            out = replace(out, drafting=value)
        elif name in CRITIC_OPTIONS:
            try:
                out = replace(out, critic=critic_option(out.critic or CriticSettings(), name, value))
            except ValueError as exc:
                raise InputError(str(exc)) from None
        else:
            raise InputError(f"unknown option {name!r} for the reasoning domain; "
                             "choose from kv_reuse, kv_budget_mb, drafting, critiques, vote, meta")
    return out


@dataclass
class ReasoningSpace:
    policy: object
    verifier: object | None
    task: ReasoningTask
    aggregation: str = "last"
    temperature: float = 0.8
    top_p: float = 1.0
    max_steps: int = 10
    max_step_tokens: int = 48
    seed: int = 0
    cancel: CancelToken | None = None
    meter: Compute = field(default_factory=Compute)
    options: TextOptions = field(default_factory=TextOptions)
    thinking: tuple[str, ...] = ()  # (open, close) delimiters of a thinking model's thought; () answers at once
    wait_text: str = "Wait,"
    max_think_tokens: int = 512

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
        self._ids = itertools.count()
        self._verifier_cache: dict = {}  # this run's verifier scores: reused within the run, never across runs
        self._calls = itertools.count()
        self._token_logprobs: dict[str, list[list[float]]] = {}  # node id -> top-k per generated token
        self._steps: dict[str, tuple[str, ...]] = {}  # every node's steps, so the chosen one's text can be given
        self._thought_tokens: dict[str, int] = {}  # node id -> tokens generated in its thought so far
        # this run's KV caches, keyed by token ids (backends.text.kv_reuse); a policy without one re-sends prefixes
        self._policy_kv = (self.policy.new_kv_store(self.options.kv_budget_bytes)
                           if self.options.kv_reuse and hasattr(self.policy, "new_kv_store") else None)

        self._verifier_kv = (self.verifier.new_kv_store(self.options.kv_budget_bytes)
                             if self.options.kv_reuse and hasattr(self.verifier, "new_kv_store") else None)

        self._drafter = (self.policy.new_drafter()
                         if self.options.drafting == "ngram" and hasattr(self.policy, "new_drafter") else None)

    def _policy_extra(self) -> dict:
        extra = {"kv_store": self._policy_kv} if self._policy_kv is not None else {}
        return extra | ({"drafter": self._drafter} if self._drafter is not None else {})

    def _node(self, parent: Node | None, steps: tuple[str, ...], finished: bool, cost: Compute, seed: int) -> Node:
        answer = self.task.extract(steps[-1]) if steps and finished else None
        preview = steps[-1] if steps else self.task.prompt
        node = Node(id=f"n{next(self._ids)}", parent=parent.id if parent else None, depth=len(steps),
                    preview=preview, finished=finished, answer=answer, payload=steps, cost=cost, seed=seed)
        self._steps[node.id] = steps
        return node

    def text_of(self, node_id: str) -> str:
        """A node's full solution text after the prompt: its steps joined by the policy's delimiter."""
        return self.policy.delimiter.join(self._steps[node_id])

    def _prefix(self, node: Node) -> str:
        if self.thinking and not self.thought_closed(node):
            return self.task.prompt + (node.payload[0] if node.payload else self.thinking[0] + "\n")
        return self.task.prompt + "".join(s + self.policy.delimiter for s in node.payload)

    # -- thinking models ------------------------------------------------------------------------------------
    def thought_closed(self, node: Node) -> bool:
        """Whether a node's thought is over (always, for a model that does not think)."""
        return not self.thinking or bool(node.payload) and node.payload[0].endswith(self.thinking[1])

    def thinking_tokens(self, node: Node) -> int:
        """Tokens the policy generated in this node's thought (forced text not counted)."""
        return self._thought_tokens.get(node.id, 0)

    def _thought_node(self, parent: Node, thought: str, cost: Compute, seed: int, tokens: int) -> Node:
        node = self._node(parent, (thought,), False, cost, seed)
        node.preview = next((line for line in reversed(thought.split("\n")) if line.strip()), thought)
        self._thought_tokens[node.id] = tokens
        return node

    def _think_groups(self, nodes: list[Node], k: int, max_tokens: int,
                      temperature: float | None) -> list[list[tuple[Node, bool]]]:
        unique, kk = self._grouped(nodes, k)
        seed = self._call_seed()
        groups = self.policy.generate_steps([self._prefix(n) for n in unique], kk,
                                            self.temperature if temperature is None else temperature,
                                            self.top_p, seed, max(1, max_tokens), self.cancel,
                                            delimiter=self.thinking[1])
        out = []
        for node, samples in zip(unique, groups):
            before = node.payload[0] if node.payload else self.thinking[0] + "\n"
            children = []
            for s in samples:
                s.cost.thinking_tokens = s.generated_tokens - int(s.finished)  # an EOS is no thought token
                self.meter.add(s.cost)
                # The model tried to stop when it wrote the close delimiter (left out of the text), ended (EOS)
                # or stopped before the token limit (a backend that cannot say which).
                tried = s.delimited or s.finished or s.generated_tokens < max_tokens
                child = self._thought_node(node, before + s.text, s.cost, seed,
                                           self.thinking_tokens(node) + s.cost.thinking_tokens)
                children.append((child, tried))
            out.append(children)
        if len(unique) == 1 and len(nodes) > 1:
            return [out[0][i * k:(i + 1) * k] for i in range(len(nodes))]
        return out

    def think(self, nodes: list[Node], max_tokens: int, temperature: float | None = None) -> list[tuple[Node, bool]]:
        """Each open thought continued by at most ``max_tokens`` tokens, with whether the model tried to end it."""
        return [g[0] for g in self._think_groups(nodes, 1, max_tokens, temperature)]

    def end_thinking(self, nodes: list[Node]) -> list[Node]:
        """The end-of-thinking delimiter forced on each thought (on a line of its own), so the answer comes next."""
        out = []
        for n in nodes:
            thought = n.payload[0] if n.payload else self.thinking[0] + "\n"
            closed = thought + ("" if thought.endswith("\n") else "\n") + self.thinking[1]
            out.append(self._thought_node(n, closed, Compute(), n.seed or self.seed, self.thinking_tokens(n)))
        return out

    def wait(self, nodes: list[Node]) -> list[Node]:
        """``wait_text`` appended to each open thought (s1's extension: it thinks on instead of stopping)."""
        out = []
        for n in nodes:
            thought = n.payload[0] if n.payload else self.thinking[0] + "\n"
            sep = "" if thought.endswith(("\n", " ")) else "\n"
            out.append(self._thought_node(n, thought + sep + self.wait_text, Compute(), n.seed or self.seed,
                                          self.thinking_tokens(n)))
        return out

    def _thought_first(self, nodes: list[Node], temperature: float | None) -> list[Node]:
        """Nodes whose thought is closed: open ones think (one step, up to ``max_think_tokens``), closed by force."""
        todo = [i for i, n in enumerate(nodes) if not self.thought_closed(n)]
        if not todo:
            return nodes
        thought = self.think([nodes[i] for i in todo], self.max_think_tokens, temperature)
        closed = self.end_thinking([t for t, _ in thought])
        out = list(nodes)
        for i, (t, _), c in zip(todo, thought, closed):
            c.cost, c.parent = t.cost, nodes[i].id
            out[i] = c
        return out

    def _call_seed(self) -> int:
        return self.seed * 1_000_003 + next(self._calls)

    def initial(self, n: int) -> list[Node]:
        return [self._node(None, (), False, Compute(), self.seed) for _ in range(n)]

    def _grouped(self, nodes: list[Node], k: int) -> tuple[list[Node], int]:
        """Identical nodes (a root asked N times) are prefilled once and sampled k x count times."""
        if len(nodes) > 1 and all(n is nodes[0] for n in nodes):
            return [nodes[0]], k * len(nodes)
        return nodes, k

    def extend(self, nodes: list[Node], k: int, temperature: float | None = None) -> list[list[Node]]:
        if self.thinking and not all(self.thought_closed(n) for n in nodes):
            if any(self.thought_closed(n) for n in nodes):  # a mixed frontier: each part on its own
                return [self.extend([n], k, temperature)[0] for n in nodes]
            groups = self._think_groups(nodes, k, self.max_think_tokens, temperature)
            out = []
            for node, group in zip(nodes, groups):
                closed = self.end_thinking([c for c, _ in group])
                for c, (t, _) in zip(closed, group):
                    c.cost, c.parent = t.cost, node.id
                out.append(closed)
            return out
        unique, kk = self._grouped(nodes, k)
        seed = self._call_seed()
        groups = self.policy.generate_steps([self._prefix(n) for n in unique], kk,
                                            self.temperature if temperature is None else temperature,
                                            self.top_p, seed, self.max_step_tokens, self.cancel,
                                            **self._policy_extra())
        out = []
        for node, samples in zip(unique, groups):
            children = []
            for s in samples:
                self.meter.add(s.cost)
                text = s.text.strip()
                # An empty step is never appended ("last" aggregation would score it): the model wrote nothing
                # before the delimiter or EOS, so the chain ends there, as search-and-learn ends a beam whose
                # next text is empty. A chain at the step limit ends too, answerless unless this step answers.
                steps = node.payload + (text,) if text else node.payload
                finished = (s.finished or not text or self.task.is_final_step(text)
                            or len(steps) >= self.max_steps)
                children.append(self._node(node, steps, finished, s.cost, seed))
            out.append(children)
        if len(unique) == 1 and len(nodes) > 1:
            flat = out[0]
            return [flat[i * k:(i + 1) * k] for i in range(len(nodes))]
        return out

    def complete(self, nodes: list[Node], temperature: float | None = None) -> list[Node]:
        return self._roll_out(nodes, temperature, race=False)

    def race(self, nodes: list[Node], temperature: float | None = None) -> list[Node]:
        """Each node rolled out in one batch that ends at the token where the first sample ends: that sample
        is finished, the others are cut there, unfinished (First Finish Search; see ``generate_steps``)."""
        return self._roll_out(nodes, temperature, race=True)

    def complete_with_logprobs(self, nodes: list[Node], top_k: int, stop=None,
                               temperature: float | None = None) -> list[Node]:
        """Each node rolled out as by ``complete``, keeping every generated token's top-k log-probabilities
        (``token_logprobs``); a sample for which ``stop(top_logprobs so far)`` is true is cut at that token,
        unfinished (DeepConf's online stop; a server that cannot stop mid-request is cut after the fact)."""
        return self._roll_out(nodes, temperature, race=False, top_k=top_k, stop=stop)

    def token_logprobs(self, node: Node) -> list[list[float]]:
        """The top-k log-probabilities of each token a ``complete_with_logprobs`` rollout generated for ``node``."""
        return self._token_logprobs.get(node.id, [])

    def _roll_out(self, nodes: list[Node], temperature: float | None, race: bool, top_k: int = 0,
                  stop=None) -> list[Node]:
        if self.thinking and race and not all(self.thought_closed(n) for n in nodes):
            return self._race_thinking(nodes, temperature)
        if self.thinking and not all(self.thought_closed(n) for n in nodes):
            thought = self._thought_first(nodes, temperature)
            done = self._roll_out(thought, temperature, race, top_k, stop)
            for d, t, n in zip(done, thought, nodes):  # the thought is part of the roll-out the caller asked for
                if t is not n:
                    d.parent = n.id
                    merged = t.cost.copy()
                    merged.add(d.cost)
                    d.cost = merged
            return done
        unique, kk = self._grouped(nodes, 1)
        seed = self._call_seed()
        prefixes = [self._prefix(n) for n in unique]
        extra = ({"top_logprobs": top_k, "stop": stop} if top_k else {}) | self._policy_extra()
        groups = self.policy.generate_steps(prefixes, kk, self.temperature if temperature is None else temperature,
                                            self.top_p, seed, self.max_step_tokens * self.max_steps, self.cancel,
                                            stop_at_delimiter=False, stop_at_first=race, **extra)
        # A rollout is final: it ended (EOS or the token limit); answerless ones stay answerless. In a race only
        # the samples that ended are, unless none did (then every sample ran to the token limit).
        someone_ended = any(s.finished for samples in groups for s in samples)
        out = []
        for node, samples in zip(unique, groups):
            for s in samples:
                self.meter.add(s.cost)
                steps = node.payload + tuple(self.task.split(s.text))
                final = s.finished or not (race and someone_ended or s.stopped)
                child = self._node(node, steps, final, s.cost, seed)
                if top_k:
                    self._token_logprobs[child.id] = s.top_logprobs
                out.append(child)
        return out

    def _race_thinking(self, nodes: list[Node], temperature: float | None) -> list[Node]:
        """A race over whole thinking traces (thought and answer in one batch): the first sample to end stops
        the others, mid-thought if they are still thinking, so first finish saves their thinking tokens."""
        unique, kk = self._grouped(nodes, 1)
        seed = self._call_seed()
        limit = self.max_think_tokens + self.max_step_tokens * self.max_steps
        groups = self.policy.generate_steps([self._prefix(n) for n in unique], kk,
                                            self.temperature if temperature is None else temperature, self.top_p,
                                            seed, limit, self.cancel, stop_at_delimiter=False, stop_at_first=True)
        someone_ended = any(s.finished for samples in groups for s in samples)
        close = self.thinking[1]
        out = []
        for node, samples in zip(unique, groups):
            before = node.payload[0] if node.payload else self.thinking[0] + "\n"
            for s in samples:
                thought, closed, rest = s.text.partition(close)
                s.cost.thinking_tokens = self._count_tokens(thought, s.text, s.generated_tokens) if closed \
                    else s.generated_tokens - int(s.finished)
                self.meter.add(s.cost)
                steps = (before + thought + closed,) + (tuple(self.task.split(rest)) if closed else ())
                child = self._node(node, steps, s.finished or not someone_ended, s.cost, seed)
                self._thought_tokens[child.id] = self.thinking_tokens(node) + s.cost.thinking_tokens
                out.append(child)
        return out

    def _count_tokens(self, part: str, whole: str, whole_tokens: int) -> int:
        """Tokens of ``part``, a prefix of a generated text: by the policy's tokenizer where it has one, else in
        proportion to its characters (a remote server's text)."""
        tok = getattr(self.policy, "tokenizer", None)
        if tok is not None:
            return len(tok(part, add_special_tokens=False)["input_ids"])
        return round(whole_tokens * len(part) / max(1, len(whole)))

    def score(self, nodes: list[Node]) -> list[Score]:
        if not nodes:
            return []
        if self.verifier is None:
            raise ValueError("this strategy needs a verifier, and none was chosen")
        if hasattr(self.verifier, "score_with_critiques"):
            return self._critic_scores(nodes)
        steps = [list(n.payload) for n in nodes]
        extra = {"kv_store": self._verifier_kv} if self._verifier_kv is not None else {}
        per_step, cost = self.verifier.score_steps(self.task.problem, self.task.prompt, steps, self.cancel,
                                                   cache=self._verifier_cache, **extra)
        self.meter.add(cost)
        if self.aggregation != "model":
            return [Score(aggregate(p, self.aggregation), p) for p in per_step]
        whole, cost = self.verifier.score_whole(self.task.problem, self.task.prompt, steps, self.cancel)
        self.meter.add(cost)
        return [Score(w, p) for w, p in zip(whole, per_step)]

    def _answer_steps(self, nodes: list[Node]) -> tuple[list[int], list[list[str]]]:
        """What a critic checks of each node: the steps after a thinking model's closed thought (skipped: 1)."""
        skip = [1 if self.thinking and n.payload and self.thought_closed(n) else 0 for n in nodes]
        return skip, [list(n.payload[s:]) for n, s in zip(nodes, skip)]

    def _critic_scores(self, nodes: list[Node]) -> list[Score]:
        """A generative critic's scores with the critiques behind them (``Score.critiques``, shown as Critiqued
        events); a skipped thought scores 1 before answer steps (no critique flags it), 0.5 alone (nothing checked
        yet), and verdicts index the node's own steps."""
        skip, steps = self._answer_steps(nodes)
        kept, per_step, cost = self.verifier.score_with_critiques(self.task.problem, self.task.prompt, steps,
                                                                  self.cancel, cache=self._verifier_cache)
        self.meter.add(cost)
        out = []
        for cs, p, s in zip(kept, per_step, skip):
            p = [1.0 if p else 0.5] * s + p
            value = aggregate(p, self.aggregation)  # "model": the last step's score is the outcome vote
            out.append(Score(value, p, [replace(c, verdict=None if c.verdict is None else c.verdict + s)
                                        for c in cs]))
        return out

    def critique(self, nodes: list[Node], k: int, temperature: float | None = None) -> list[list[Critique]]:
        """``k`` critiques of each node's steps by the verifier, charged to the run. A thinking model's thought is
        not critiqued (the critic checks the answer lines after it); verdicts index the node's own steps."""
        critic = getattr(self.verifier, "critique", None)
        if critic is None:
            name = getattr(self.verifier, "name", None) or "no verifier"
            raise ValueError(f"this strategy needs a verifier that critiques (tiny-critic, oracle); {name} gives "
                             "only a score")
        if not nodes:  # nothing to critique: strategies ask so to check the verifier before they spend compute
            return []
        skip, steps = self._answer_steps(nodes)
        out, cost = critic(self.task.problem, self.task.prompt, steps, k, temperature=temperature,
                           seed=self._call_seed(), cancel=self.cancel)
        self.meter.add(cost)
        return [[replace(c, verdict=None if c.verdict is None else c.verdict + s) for c in cs]
                for cs, s in zip(out, skip)]

    def extract(self, node: Node) -> str | None:
        return node.answer

    def clusters(self, nodes: list[Node]) -> list[int]:
        """A semantic cluster label per node (0, 1, ... in order of first appearance), for ETS's coverage term.

        Arithmetic chains: two partial solutions are in one cluster when their running values agree (the number
        their last step reached, ``arith.step_value``), whatever they wrote before. Other tasks (free-form math on
        hub models), and steps that show no value: the last step's exact text, whitespace aside. ETS clusters the
        new step's text by a sentence-embedding model (average linkage at cosine distance 0.05); no embedding model
        ships with or loads in this app, so here only identical steps cluster, the limit of that rule at distance 0.
        """
        key = getattr(self.task, "cluster_key", None)
        labels: dict[tuple, int] = {}
        out = []
        for n in nodes:
            value = key(n.payload) if key is not None else None
            text = " ".join(n.payload[-1].split()) if n.payload else ""
            k = ("value", value) if value is not None else ("text", text)
            out.append(labels.setdefault(k, len(labels)))
        return out

    def same_answer(self, a: str, b: str) -> bool:
        """Whether two answers are equal by this task's grader, so votes group them."""
        return self.task.same_answer(a, b)


def resolve_problem(problem_text: str | None, problem_id: str | None, difficulty: int | None) -> arith.Problem:
    """The problem a request names: typed text, a split:index id (a bundled set's too: math500:3), a random one
    of a level, or test:0."""
    try:
        if difficulty is not None and not (problem_text and problem_text.strip()) and not problem_id:
            if difficulty not in arith.LEVELS:
                raise InputError(f"difficulty must be 1 to 5, got {difficulty}")
            return arith.random_problem(difficulty, random.Random())
        return resolve_problem_with(problem_text, problem_id, _typed_problem, _problem_at)
    except InputError:
        raise
    except ValueError as exc:  # ProblemFormatError and unknown splits carry their own message
        raise InputError(str(exc)) from None


PROBLEM_TEXT_LIMIT = 2000


def _typed_problem(text: str) -> arith.Problem:
    if len(text) > PROBLEM_TEXT_LIMIT:
        raise InputError(f"the problem text is too long ({PROBLEM_TEXT_LIMIT} characters at most)")
    try:
        return arith.parse_problem(text)
    except arith.ProblemFormatError as exc:
        raise InputError(f"{exc} This grammar is for the embedded policies only: give your own model (a hub id or "
                         "a local folder) and a typed question goes to it free-form.") from None


def free_form_problem(text: str, answer: str | None) -> math_grading.MathProblem:
    """A typed question for a policy other than the embedded ones: answered like a MATH-500 problem, graded by
    math-verify against ``answer`` when the user gives one, else left ungraded."""
    if len(text) > PROBLEM_TEXT_LIMIT:
        raise InputError(f"the problem text is too long ({PROBLEM_TEXT_LIMIT} characters at most)")
    return math_grading.MathProblem(uid=None, text=text.strip(), answer=answer)


def _problem_at(split: str, index: int):
    if split in datasets_local.DATASETS:
        return datasets_local.problem_at(split, index)
    return arith.problem_at(split, index)


@dataclass
class ReasoningRun:
    """A reasoning request with its models loaded: builds the space and grades answers."""

    problem: arith.Problem
    prompt: str
    policy: object
    verifier: object | None
    options: TextOptions = field(default_factory=TextOptions)
    thinking: tuple[str, ...] = ()  # the policy's thinking delimiters (catalog), () for one that answers at once
    wait_text: str = "Wait,"

    def problem_record(self) -> dict:
        return self.problem.to_dict()

    def space(self, config, cancel: CancelToken) -> ReasoningSpace:
        if isinstance(self.problem, math_grading.MathProblem):
            return ReasoningSpace(self.policy, self.verifier,
                                  math_grading.MathTask(self.problem, self.prompt, self.policy.delimiter),
                                  aggregation=config.aggregation, temperature=float(config.temperature),
                                  seed=config.seed, cancel=cancel, max_steps=MATH_MAX_STEPS,
                                  max_step_tokens=MATH_MAX_STEP_TOKENS, options=self.options, thinking=self.thinking,
                                  wait_text=self.wait_text)
        return ReasoningSpace(self.policy, self.verifier, ReasoningTask(self.problem, self.prompt),
                              aggregation=config.aggregation, temperature=float(config.temperature),
                              seed=config.seed, cancel=cancel, options=self.options, thinking=self.thinking,
                              wait_text=self.wait_text)

    def grade(self, answer: str | None) -> bool | None:
        if isinstance(self.problem, math_grading.MathProblem):
            if self.problem.answer is None:  # a typed question without an expected answer: shown ungraded
                return None
            return math_grading.is_equivalent(self.problem.answer, answer)
        return arith.is_correct(self.problem, answer)

    def result_extras(self, space: ReasoningSpace, result) -> dict:
        """The chosen candidate's full text (what the gateway answers with); none when nothing was chosen."""
        return {"chosen_text": space.text_of(result.node_id)} if result.node_id else {}


def prepare(config, uses_verifier: bool) -> ReasoningRun:
    """Resolve the problem and load the policy (and verifier); InputError on anything unusable.

    Typed text is an arithmetic chain for the embedded policies and a free-form question for any other
    (``free_form_problem``); ``config.answer``, the answer the user expects, goes only with the latter."""
    answer = (config.answer or "").strip() or None
    if config.problem_text and config.problem_text.strip() and not catalog.is_embedded(config.model):
        problem = free_form_problem(config.problem_text, answer)
    else:
        if answer is not None:
            raise InputError("an expected answer goes only with a typed question to your own model (a hub id or a "
                             "local folder): arithmetic chains and dataset problems carry their own")
        problem = resolve_problem(config.problem_text, config.problem_id, config.difficulty)
    options = parse_text_options(getattr(config, "options", None))
    is_math = isinstance(problem, math_grading.MathProblem)
    if is_math and problem.answer is None and uses_verifier and config.verifier == "oracle":
        raise InputError("the oracle grades against the expected answer: give it (--answer, or Expected answer in "
                         "Explore), or choose another verifier")
    # Free-form math steps are paragraphs: a blank line ends a step unless the catalog entry says otherwise.
    delimiter = None
    entry = catalog.resolve(config.model, "policy")
    if is_math:
        delimiter = entry.delimiter if entry.delimiter != "\n" else catalog.MATH_DELIMITER
    policy = load_policy(config.model, config.trust_remote_code, delimiter=delimiter)
    if options.drafting != "off" and not hasattr(policy, "new_drafter"):
        raise InputError(f"drafting={options.drafting} needs a transformers policy; {config.model} decodes "
                         "elsewhere (a server or vLLM)")
    verifier = None
    if uses_verifier:
        if not config.verifier:
            raise InputError(f"{config.strategy} needs a verifier; choose one (for example tiny-prm)")
        verifier = load_verifier(config.verifier, config.trust_remote_code)
        if options.critic is not None:
            if not hasattr(verifier, "configured"):
                raise InputError(f"critiques, vote and meta set a generative critic (tiny-critic); {config.verifier} "
                                 "is not one")
            verifier = verifier.configured(options.critic)
    elif options.critic is not None:
        raise InputError(f"critiques, vote and meta set the verifier, and {config.strategy} uses none")
    if is_math:
        prompt = math_grading.math_prompt(policy, problem)
    else:
        prompt = policy.format_prompt(problem.text) if policy.use_chat_template else problem.text + policy.delimiter
    return ReasoningRun(problem, prompt, policy, verifier, options=options, thinking=entry.thinking,
                        wait_text=entry.wait)


# Step limits for free-form math (MATH-500, GSM8K): longer steps and more of them than arithmetic chains.
MATH_MAX_STEPS = int(os.environ.get("TTS_MATH_MAX_STEPS", "20"))
MATH_MAX_STEP_TOKENS = int(os.environ.get("TTS_MATH_MAX_STEP_TOKENS", "256"))
