"""Step verifiers for the reasoning domain: a token-classification PRM read at step delimiters, and the oracle.

A verifier returns raw per-step scores; aggregation is the space's recorded setting, so the UI can
re-aggregate stored scores without regenerating anything.

A run's counters are its own: a verifier keeps no scores between calls. The caller passes the run's own
cache (``cache``, a dict the search space holds for the length of one run), so a run reuses the prefixes it
scored itself and is charged for every one it scored, whatever ran before it, in this session or another.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Protocol

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from backends.embedded import arith
from backends.text.transformers_lm import (flops_for, forward_mem_bytes, kv_token_bytes, model_shape, param_bytes,
                                           pick_device)
from strategies.core import CancelToken, Compute, Critique

log = logging.getLogger(__name__)


class StepVerifier(Protocol):
    name: str
    is_oracle: bool

    def score_steps(self, problem: object, prompt: str, step_lists: list[list[str]],
                    cancel: CancelToken | None = None, cache: dict | None = None) -> tuple[list[list[float]], Compute]:
        """Per-step scores for each list of steps, and the compute spent; ``cache`` is the run's own."""

    def score_whole(self, problem: object, prompt: str, step_lists: list[list[str]],
                    cancel: CancelToken | None = None) -> tuple[list[float], Compute]:
        """One score per whole answer (the ``model`` aggregation)."""


PrefixKey = tuple[str, tuple[str, ...]]


def score_prefixes(cache: dict | None, question: str, step_lists: list[list[str]],
                   forward: Callable[[list[list[str]]], tuple[list[list[float]], Compute]]
                   ) -> tuple[list[list[float]], Compute]:
    """Per-step scores of each solution for a causal verifier, through the run's ``cache`` of prefix scores.

    The score at step i depends only on the question and steps 1..i, so one forward pass over a solution
    scores all its prefixes: ``forward`` is called on the longest solutions whose prefixes are not all known
    yet, and every prefix it scores is kept. Without a cache (None) nothing outlives the call.
    """
    cache = {} if cache is None else cache
    keys: list[PrefixKey] = [(question, tuple(steps)) for steps in step_lists]
    todo = sorted({k for k in keys if k[1] and k not in cache}, key=lambda k: -len(k[1]))
    covered: set[PrefixKey] = set()
    maximal = []
    for k in todo:
        if k not in covered:
            maximal.append(k)
            covered.update((k[0], k[1][:i]) for i in range(1, len(k[1]) + 1))
    cost = Compute()
    if maximal:
        scores, cost = forward([list(k[1]) for k in maximal])
        for k, per_step in zip(maximal, scores):
            for i, s in enumerate(per_step, 1):
                cache[(k[0], k[1][:i])] = s
    return [[cache[(q, steps[:i])] for i in range(1, len(steps) + 1)] for q, steps in keys], cost


class TokenClassificationPRM:
    """A PRM with a two-class token head: P(class 1) at the delimiter that ends each step.

    Input is the prompt followed by every step, each ending with the delimiter, the last one included.
    The model is causal, so the score at step i depends only on steps 1..i: one forward over a full
    solution scores all its prefixes (``score_prefixes``), and a run never scores a prefix twice.
    """

    is_oracle = False

    def __init__(self, path_or_id: str, name: str, delimiter: str = "\n", device: str | None = None,
                 trust_remote_code: bool = False, batch_size: int = 64) -> None:
        self.name = name
        self.delimiter = delimiter
        self.device, dtype = pick_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(path_or_id, trust_remote_code=trust_remote_code)
        self.model = AutoModelForTokenClassification.from_pretrained(
            path_or_id, dtype=dtype, trust_remote_code=trust_remote_code).to(self.device).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        self.batch_size = batch_size
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.layers, kv_width, self.hidden = model_shape(self.model.config)
        self.weight_bytes = param_bytes(self.model)
        self.token_kv = kv_token_bytes(self.layers, kv_width, torch.finfo(dtype).bits // 8)

    def _text_and_ends(self, prompt: str, steps: list[str]) -> tuple[str, list[int]]:
        text, ends = prompt, []
        for s in steps:
            text += s
            ends.append(len(text))  # character index of this step's delimiter
            text += self.delimiter
        return text, ends

    @torch.inference_mode()
    def _forward(self, prompt: str, step_lists: list[list[str]], cancel: CancelToken | None) -> tuple[list[list[float]], Compute]:
        cost = Compute()
        out: list[list[float]] = []
        started = time.perf_counter()
        for b in range(0, len(step_lists), self.batch_size):
            if cancel is not None:
                cancel.check()
            chunk = step_lists[b:b + self.batch_size]
            built = [self._text_and_ends(prompt, steps) for steps in chunk]
            enc = self.tokenizer([t for t, _ in built], return_tensors="pt", padding=True,
                                 add_special_tokens=False, return_offsets_mapping=True)
            offsets = enc.pop("offset_mapping")
            logits = self.model(**{k: v.to(self.device) for k, v in enc.items()}).logits.float()
            probs = torch.softmax(logits, -1)[..., 1].cpu()
            n_tokens = int(enc["attention_mask"].sum())
            cost.verifier_tokens += n_tokens
            cost.verifier_calls += 1
            cost.flops += flops_for(self.n_params, self.layers, self.hidden, n_tokens, enc["input_ids"].shape[1] // 2)
            cost.mem_bytes += forward_mem_bytes(self.weight_bytes, self.token_kv,
                                                enc["input_ids"].numel())
            for row, (_, ends) in enumerate(built):
                out.append([float(probs[row, _token_at(offsets[row], e)]) for e in ends])
        cost.wall_s = time.perf_counter() - started
        return out, cost

    def score_steps(self, problem: object, prompt: str, step_lists: list[list[str]],
                    cancel: CancelToken | None = None, cache: dict | None = None) -> tuple[list[list[float]], Compute]:
        return score_prefixes(cache, prompt, step_lists, lambda todo: self._forward(prompt, todo, cancel))

    def score_whole(self, problem: object, prompt: str, step_lists: list[list[str]],
                    cancel: CancelToken | None = None) -> tuple[list[float], Compute]:
        # The whole answer as one step: steps joined by spaces, one delimiter at the end.
        scores, cost = self._forward(prompt, [[" ".join(steps)] if steps else [""] for steps in step_lists], cancel)
        return [s[-1] for s in scores], cost


def _token_at(offsets: torch.Tensor, char_index: int) -> int:
    """Index of the token whose span contains ``char_index`` (the delimiter's first character)."""
    starts, ends = offsets[:, 0], offsets[:, 1]
    hit = ((starts <= char_index) & (ends > char_index)).nonzero()
    if len(hit):
        return int(hit[0])
    return int((starts <= char_index).nonzero()[-1])


class ArithOracle:
    """Grades each step against the ground truth (first-error semantics). An ORACLE: it knows the answer."""

    name = "oracle"
    is_oracle = True

    def score_steps(self, problem: arith.Problem, prompt: str, step_lists: list[list[str]],
                    cancel: CancelToken | None = None, cache: dict | None = None) -> tuple[list[list[float]], Compute]:
        return [[float(x) for x in arith.step_labels(problem, steps)] for steps in step_lists], Compute()

    def score_whole(self, problem: arith.Problem, prompt: str, step_lists: list[list[str]],
                    cancel: CancelToken | None = None) -> tuple[list[float], Compute]:
        return [float(arith.is_correct(problem, arith.extract_answer("\n".join(s)))) for s in step_lists], Compute()

    def critique(self, problem: arith.Problem, prompt: str, step_lists: list[list[str]], k: int,
                 temperature: float | None = None, seed: int = 0,
                 cancel: CancelToken | None = None) -> tuple[list[list[Critique]], Compute]:
        """The exact critique of each solution (``arith.critique_of``), ``k`` times: a perfect verifier's feedback,
        the upper bound of refinement with a critic. Arithmetic chains only (it checks each step)."""
        if not isinstance(problem, arith.Problem):
            raise ValueError("the oracle critiques arithmetic chains only; on free-form math it grades the answer")
        out = []
        for steps in step_lists:
            text, verdict, checks = arith.critique_of(problem, steps)
            out.append([Critique(verdict, checks, text) for _ in range(k)])
        return out, Compute()
