"""Model-free speculative sampling from n-gram drafts (STAND, seed paper 30: "Accelerated Test-Time Scaling with
Model-Free Speculative Sampling").

Search samples many solutions of one problem, and they repeat each other and the problem: a number of the
question reappears in a step, a step's result opens the next one, sixteen samples of one step mostly agree.
STAND drafts the next tokens from an n-gram table over those trajectories instead of a draft model, and the
target model checks a whole draft in one forward pass.

What is built here, and the choices where the paper differs or is silent:

- The table (:class:`NgramDrafter`) is one run's: it holds every n-gram (orders ``ORDERS``) of the prefixes the
  run decoded from (the problem and the earlier steps) and of every token a sample generated (siblings in the
  same batch see each other's tokens as they appear). A context maps to the token that followed it last.
- Drafts are deterministic: the longest matching order proposes one token, chained up to a row's draft
  length, which adapts as in transformers' assisted generation (+2 after a fully accepted draft, -1 after a
  rejection, between 1 and ``DRAFT_LEN``): it depends only on the row's past, so the law is untouched.
  STAND drafts stochastically from stored logits and builds a draft tree with Gumbel-top-k; a point-mass
  draft is the special case that needs no stored distributions, at the price of fewer accepted tokens.
- Verification is speculative sampling (Leviathan et al., Chen et al.): a draft token ``x`` proposed with
  probability q(x) is accepted with probability min(1, p(x) / q(x)) under the target distribution p (its
  temperature and top-p applied); on rejection a token is drawn from the residual max(0, p - q), normalised.
  With a point-mass draft q = 1 at x, so the acceptance is p(x) and the residual is p without x, renormalised:
  P(x) = p(x) and, for y != x, P(y) = (1 - p(x)) * p(y) / (1 - p(x)) = p(y). Each sample is distributed exactly
  as plain sampling's; the random draws differ, so the same seed gives other (equally likely) samples. When
  every draft token is accepted, one more token is drawn from the distribution after the last one. At
  temperature 0 a draft token is accepted iff it is the argmax.
- A batch feeds each row's pending token and its draft in one pass; rows with shorter drafts are padded, and
  the columns of rejected draft tokens are masked out of the cache for every later pass (they stay in memory
  until the call ends). The first token of a call is drawn from the prefill's logits, undrafted.

The counters: ``draft_tokens`` proposed and ``draft_accepted`` kept, per call; a sample's tokens per target
forward pass are generated / (generated - accepted), the ideal speedup; the wall-clock one is measured by
``bench/drafting.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from backends.text.decoding import DecodeState, sampling_probs, top_k_logprobs
from strategies.core import CancelToken

ORDERS = (3, 2, 1)   # context lengths tried, longest first
DRAFT_LEN = 4        # tokens drafted per pass at most


def acceptance_probability(p_target: torch.Tensor) -> torch.Tensor:
    """min(1, p(x) / q(x)) for a draft token x with q(x) = 1 (a point-mass draft): p(x)."""
    return p_target


@dataclass
class NgramDrafter:
    """One run's n-gram table over token ids, and its counters."""

    table: dict = field(default_factory=dict)
    proposed: int = 0
    accepted: int = 0

    def add(self, ids: list[int], start: int = 0) -> None:
        """Index the n-grams of ``ids`` that end at positions ``start`` and later."""
        for end in range(max(start, 1), len(ids)):
            for n in ORDERS:
                if end - n >= 0:
                    self.table[tuple(ids[end - n:end])] = ids[end]

    def draft(self, context: list[int], length: int = DRAFT_LEN) -> list[int]:
        out: list[int] = []
        ctx = list(context[-max(ORDERS):])
        for _ in range(length):
            nxt = next((self.table[key] for n in ORDERS if len(ctx) >= n
                        and (key := tuple(ctx[-n:])) in self.table), None)
            if nxt is None:
                break
            out.append(nxt)
            ctx = ctx[1:] + [nxt] if len(ctx) >= max(ORDERS) else ctx + [nxt]
        return out

    def take_counts(self) -> tuple[int, int]:
        """(proposed, accepted) since the last call, for the compute meter."""
        counts = (self.proposed, self.accepted)
        self.proposed = self.accepted = 0
        return counts


def decode(policy, drafter: NgramDrafter, state: DecodeState, cache, logits: torch.Tensor, mask: torch.Tensor,
           next_pos: torch.Tensor, prefix_ids: list[list[int]], gen: torch.Generator, temperature: float,
           top_p: float, max_new_tokens: int, cancel: CancelToken | None
           ) -> tuple[torch.Tensor, int, list[list[int]]]:
    """Decode ``state``'s rows by drafted speculative sampling (module docstring) from the prefill's ``logits``.

    ``prefix_ids`` holds each row's prefix ids. Returns the final attention mask, the forward
    passes made and, per row, the cache columns holding its generated tokens (those fed back, in order)."""
    batch, device = logits.shape[0], logits.device
    for ids in {tuple(p): p for p in prefix_ids}.values():
        drafter.add(list(ids))
    contexts = [list(p) for p in prefix_ids]  # each row's ids so far
    fed: list[list[int]] = [[] for _ in range(batch)]
    counts = [0] * batch   # positions drawn per row (max_new_tokens bounds them, as in plain decoding)
    lengths = [DRAFT_LEN] * batch  # each row's draft length, adapted to its acceptances so far
    pending: list[int | None] = [None] * batch  # the last drawn token of a live row, fed in the next pass

    def draw(row_logits: torch.Tensor, exclude: int | None = None) -> int:
        if temperature <= 0:
            return int(row_logits.argmax())
        probs = sampling_probs(row_logits, temperature, top_p)
        if exclude is not None:
            probs = probs.clone()
            probs[exclude] = 0.0
        return int(torch.multinomial(probs, 1, generator=gen))

    def take(i: int, t: int, row_logits: torch.Tensor) -> bool:
        top = top_k_logprobs(row_logits[None], state.top_logprobs)[0] if state.top_logprobs > 0 else None
        counts[i] += 1
        before = len(state.tokens[i])
        alive = state.take(i, t, top)
        if len(state.tokens[i]) > before:  # kept (EOS and a stop-rule cut are not)
            contexts[i].append(t)
            drafter.add(contexts[i], len(contexts[i]) - 1)
        return alive and counts[i] < max_new_tokens

    for i in range(batch):
        if take(i, draw(logits[i]), logits[i]):
            pending[i] = contexts[i][-1]
    calls = 0
    while any(p is not None for p in pending):
        if cancel is not None:
            cancel.check()
        live = [i for i in range(batch) if pending[i] is not None]
        drafts = {i: drafter.draft(contexts[i], min(lengths[i], max_new_tokens - counts[i])) for i in live}
        width = 1 + max(len(d) for d in drafts.values())
        feed = torch.zeros((batch, width), dtype=torch.long)
        real = torch.zeros((batch, width), dtype=mask.dtype)
        for i in live:
            row = [pending[i]] + drafts[i]
            feed[i, :len(row)] = torch.tensor(row)
            real[i, :len(row)] = 1
        first = mask.shape[1]
        mask = torch.cat([mask, real.to(device)], 1)
        pos = next_pos + torch.arange(width, device=device)[None]
        out = policy.model(input_ids=feed.to(device), attention_mask=mask, position_ids=pos,
                           past_key_values=cache, use_cache=True)
        calls += 1
        step_logits = out.logits.float()
        # the target's probability of every draft token, and one uniform per draft position, in one go
        drafted = feed[:, 1:].to(device)
        if temperature <= 0:
            p_draft = (step_logits[:, :-1].argmax(-1) == drafted).float()
        else:
            probs = sampling_probs(step_logits[:, :-1], temperature, top_p)
            p_draft = probs.gather(-1, drafted.unsqueeze(-1)).squeeze(-1) / probs.sum(-1)
        accept = (torch.rand(p_draft.shape, generator=gen, device=gen.device).to(device)
                  < acceptance_probability(p_draft)).tolist()
        for i in range(batch):
            if pending[i] is None:
                continue
            fed[i].append(first)
            kept, alive = 0, True
            for j, x in enumerate(drafts[i]):
                drafter.proposed += 1
                row_logits = step_logits[i, j]
                if not accept[i][j]:
                    alive = take(i, draw(row_logits, exclude=x), row_logits)
                    break
                drafter.accepted += 1
                kept += 1
                fed[i].append(first + 1 + j)
                alive = take(i, x, row_logits)
                if not alive:
                    break
            else:
                alive = take(i, draw(step_logits[i, len(drafts[i])]), step_logits[i, len(drafts[i])])
            # the rejected draft columns (and the rows' padding) are hidden from every later pass
            mask[i, first + 1 + kept:] = 0
            if drafts[i]:  # as transformers' assisted generation: longer after a full accept, shorter after a miss
                lengths[i] = min(DRAFT_LEN, lengths[i] + 2) if kept == len(drafts[i]) else max(1, lengths[i] - 1)
            next_pos[i] += 1 + kept
            pending[i] = contexts[i][-1] if alive else None
    # an accepted EOS or a token the stop rule dropped was fed but is not the row's
    return mask, calls, [f[:len(t)] for f, t in zip(fed, state.tokens)]
