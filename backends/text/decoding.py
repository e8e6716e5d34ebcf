"""Pieces of token-by-token decoding that the plain loop (``backends.text.transformers_lm``) and the drafted one
(``backends.text.drafting``) share: the distribution a token is drawn from, the top-k log-probabilities kept
for confidence measures, and each row's bookkeeping (its tokens, and why it ended)."""
from __future__ import annotations

from typing import Callable, Iterable

import torch

StopRule = Callable[[list[list[float]]], bool]
"""Called after each generated token with that sample's top-k log-probabilities so far; True stops the
sample at that token (DeepConf's online early stop)."""


def top_k_logprobs(logits: torch.Tensor, k: int) -> list[list[float]]:
    """The ``k`` largest log-probabilities of each row's distribution (the model's own, before temperature),
    rounded to 4 places: what confidence measures need, not the whole vocabulary."""
    values = torch.log_softmax(logits.float(), -1).topk(min(k, logits.shape[-1]), -1).values
    return [[round(float(v), 4) for v in row] for row in values]


def cut_after_the_fact(tops: Iterable[Iterable[float]], k: int, stop: StopRule | None
                       ) -> tuple[list[list[float]], int | None]:
    """For a backend that returns log-probabilities with the whole sample (a server, vLLM): each position's top-k
    values, largest first, up to the position where ``stop`` first fires, and that position (None: it never
    does). The caller cuts the sample's text there; every token it generated stays charged."""
    kept: list[list[float]] = []
    for pos, values in enumerate(tops):
        kept.append(sorted((float(v) for v in values), reverse=True)[:k])
        if stop is not None and stop(kept):
            return kept, pos
    return kept, None


def sampling_probs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The distribution a token is drawn from: softmax at ``temperature`` (> 0), cut to the ``top_p`` nucleus
    (unnormalised after the cut: ``torch.multinomial`` normalises)."""
    probs = torch.softmax(logits / temperature, -1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < top_p
        sorted_p = sorted_p * keep
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return probs


class DecodeState:
    """Per-row bookkeeping of one decode: the tokens each row generated and why it ended."""

    def __init__(self, policy, batch: int, stop_at_delimiter: bool, top_logprobs: int,
                 stop: StopRule | None, delimiter: str | None = None) -> None:
        """``policy`` gives ``eos_ids``, ``tokenizer``, ``delimiter`` (unless this call's ``delimiter`` overrides
        it: a thinking model's thought ends at its end-of-thinking delimiter) and ``device``."""
        self.policy = policy
        self.delimiter = delimiter or policy.delimiter
        self.stop_at_delimiter = stop_at_delimiter
        self.top_logprobs = top_logprobs
        self.stop = stop
        self.tokens: list[list[int]] = [[] for _ in range(batch)]
        self.done = torch.zeros(batch, dtype=torch.bool, device=policy.device)
        self.hit_eos = [False] * batch
        self.stopped = [False] * batch
        self.texts = [""] * batch
        self.lps: list[list[list[float]]] = [[] for _ in range(batch)]

    def take(self, i: int, t: int, top: list[float] | None) -> bool:
        """Row ``i`` drew ``t`` at its next position (``top``: that position's top-k log-probabilities, when
        kept); False when the row ended there (stop rule, EOS or the delimiter)."""
        if top is not None:
            self.lps[i].append(top)
            if self.stop is not None and self.stop(self.lps[i]):
                # as DeepConf's logits processor forces EOS here: the token drawn at this position is
                # dropped, and the sample ends, unfinished
                self.stopped[i] = True
                self.done[i] = True
                return False
        if t in self.policy.eos_ids:
            self.hit_eos[i] = True
            self.done[i] = True
            return False
        self.tokens[i].append(t)
        if self.stop_at_delimiter:
            self.texts[i] = self.policy.tokenizer.decode(self.tokens[i], skip_special_tokens=True)
            if self.delimiter in self.texts[i]:
                self.done[i] = True
                return False
        return True
