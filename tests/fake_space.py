"""A small deterministic search space for testing strategies as algorithms, without any model.

A node's payload is the tuple of digits chosen so far. A child appends one digit drawn from a seeded
generator; a node is final after ``length`` steps, or earlier when it draws one of ``stop_digits`` (so depths are
uneven, as a model writes its answer after more or fewer steps), and its answer is the sum of its digits.
Like the reasoning domain, a node that reaches ``max_steps`` without its answer is finished with no answer
(a truncated chain). The score of a node is a fixed function of its digits, so tests know which children a
strategy must keep.

It is also a thinking model: a thought runs ``think_chunk`` tokens, then the model tries to end it (``think``),
so budget forcing can cut it (``end_thinking``) or extend it (``wait``); the answer digits come after.

Its critic is scripted: ``critic(node)`` gives the verdicts (None: correct; i: step i wrong) that node's
critiques read in turn, cycling, so repeated critiques of one node can disagree; without one, ``critique``
refuses as the reasoning space does for a verifier that only scores.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from strategies.core import CancelToken, Compute, Critique, Node, Score


def digit_logprobs(d: int) -> list[float]:
    """A token's top log-probabilities in the fake space: digit d is drawn from a distribution whose top-1
    log-probability is -0.1 * d, so its confidence (minus the mean of the top k) grows as d shrinks."""
    return [-0.1 * d, -2.0 - 0.1 * d, -3.0, -4.0, -5.0]


@dataclass
class FakeSpace:
    length: int = 3
    max_steps: int = 6
    seed: int = 0
    cancel: CancelToken | None = None
    scorer: object = None
    stop_digits: tuple[int, ...] = ()
    think_chunk: int = 4  # thought tokens after which the model tries to stop thinking, each time it thinks
    calls: list = field(default_factory=list)
    critic: object = None  # node -> the verdicts its critiques read in turn

    def __post_init__(self) -> None:
        self._ids = itertools.count()
        self._rng = random.Random(self.seed)
        self._lps: dict[str, list[list[float]]] = {}
        self._thought: dict[str, int] = {}
        self.waits: list[str] = []  # ids of the nodes ``wait`` made
        self._critiqued: dict[str, int] = {}  # node id -> critiques written of it so far

    def _thought_child(self, parent: Node, tokens: int, generated: int) -> Node:
        child = self._node(parent, parent.payload)
        child.cost = Compute(generated_tokens=generated, thinking_tokens=generated, model_calls=int(generated > 0))
        self._thought[child.id] = tokens
        return child

    def think(self, nodes: list[Node], max_tokens: int, temperature: float | None = None) -> list[tuple[Node, bool]]:
        self.calls.append(("think", len(nodes), max_tokens))
        if self.cancel is not None:
            self.cancel.check()
        step = min(self.think_chunk, max_tokens)
        return [(self._thought_child(n, self.thinking_tokens(n) + step, step), self.think_chunk <= max_tokens)
                for n in nodes]

    def end_thinking(self, nodes: list[Node]) -> list[Node]:
        return [self._thought_child(n, self.thinking_tokens(n), 0) for n in nodes]

    def wait(self, nodes: list[Node]) -> list[Node]:
        out = [self._thought_child(n, self.thinking_tokens(n), 0) for n in nodes]
        self.waits += [n.id for n in out]
        return out

    def thinking_tokens(self, node: Node) -> int:
        return self._thought.get(node.id, 0)

    def _answered(self, digits: tuple[int, ...]) -> bool:
        return len(digits) >= self.length or (bool(digits) and digits[-1] in self.stop_digits)

    def _node(self, parent: Node | None, digits: tuple[int, ...]) -> Node:
        answered = self._answered(digits)
        return Node(id=f"n{next(self._ids)}", parent=parent.id if parent else None, depth=len(digits),
                    preview=",".join(map(str, digits)), finished=answered or len(digits) >= self.max_steps,
                    answer=str(sum(digits)) if answered else None, payload=digits,
                    cost=Compute(generated_tokens=1, model_calls=1))

    def initial(self, n: int) -> list[Node]:
        return [self._node(None, ()) for _ in range(n)]

    def extend(self, nodes: list[Node], k: int, temperature: float | None = None) -> list[list[Node]]:
        self.calls.append(("extend", len(nodes), k))
        if self.cancel is not None:
            self.cancel.check()
        out = []
        for n in nodes:
            if temperature == 0:
                out.append([self._node(n, n.payload + (9,)) for _ in range(k)])
            else:
                out.append([self._node(n, n.payload + (self._rng.randint(0, 9),)) for _ in range(k)])
        return out

    def complete(self, nodes: list[Node], temperature: float | None = None) -> list[Node]:
        self.calls.append(("complete", len(nodes)))
        out = []
        for n in nodes:
            digits = n.payload
            while not self._answered(digits):
                digits = digits + (self._rng.randint(0, 9),)
            out.append(self._node(n, digits))
        return out

    def race(self, nodes: list[Node], temperature: float | None = None) -> list[Node]:
        """The nodes' roll-outs drawn one digit at a time in lockstep, all cut when the first is answered."""
        self.calls.append(("race", len(nodes)))
        if self.cancel is not None:
            self.cancel.check()
        digits = [n.payload for n in nodes]
        while not any(self._answered(d) for d in digits) and max(map(len, digits)) < self.max_steps:
            digits = [d + (self._rng.randint(0, 9),) for d in digits]
        out = []
        for n, d in zip(nodes, digits):
            node = self._node(n, d)
            node.cost = Compute(generated_tokens=len(d) - len(n.payload), model_calls=1)
            if not self._answered(d) and any(self._answered(x) for x in digits):
                node.finished = False  # cut when another was answered
            out.append(node)
        return out

    def complete_with_logprobs(self, nodes: list[Node], top_k: int, stop=None,
                               temperature: float | None = None) -> list[Node]:
        """``complete`` with one token per digit whose top-k log-probabilities are ``digit_logprobs(d)``: a
        sample is cut before the digit where ``stop`` first holds."""
        self.calls.append(("complete_with_logprobs", len(nodes)))
        if self.cancel is not None:
            self.cancel.check()
        out = []
        for n in nodes:
            digits, lps = n.payload, []
            while not self._answered(digits):
                d = self._rng.randint(0, 9)
                lps.append(digit_logprobs(d)[:top_k])
                if stop is not None and stop(lps):
                    break
                digits = digits + (d,)
            node = self._node(n, digits)
            node.cost = Compute(generated_tokens=len(digits) - len(n.payload), model_calls=1)
            if not self._answered(digits):
                node.finished, node.answer = False, None
            self._lps[node.id] = lps
            out.append(node)
        return out

    def token_logprobs(self, node: Node) -> list[list[float]]:
        return self._lps.get(node.id, [])

    def score(self, nodes: list[Node]) -> list[Score]:
        self.calls.append(("score", len(nodes)))
        out = []
        for n in nodes:
            per_step = [(d + 1) / 11 for d in n.payload] or [0.5]
            if self.scorer:
                per_step = self.scorer(n)
            out.append(Score(per_step[-1], per_step))
        return out

    def critique(self, nodes: list[Node], k: int, temperature: float | None = None) -> list[list[Critique]]:
        if self.critic is None:
            raise ValueError("this strategy needs a verifier that critiques (tiny-critic, oracle); the fake scorer "
                             "gives only a score")
        if not nodes:
            return []
        self.calls.append(("critique", len(nodes), k))
        out = []
        for n in nodes:
            script = list(self.critic(n))
            start = self._critiqued.get(n.id, 0)
            self._critiqued[n.id] = start + k
            verdicts = [script[(start + j) % len(script)] for j in range(k)]
            out.append([Critique(v, text=f"{n.preview}: " + ("Verdict: correct" if v is None else f"Verdict: step {v} wrong"))
                        for v in verdicts])
        return out

    def extract(self, node: Node) -> str | None:
        return node.answer


def scripted_critic(*verdict_lists):
    """A ``FakeSpace.critic`` that gives the n-th node it is asked about the n-th verdict list (the last one after
    that)."""
    order: dict[str, int] = {}

    def critic(node):
        order.setdefault(node.id, len(order))
        return verdict_lists[min(order[node.id], len(verdict_lists) - 1)]
    return critic
