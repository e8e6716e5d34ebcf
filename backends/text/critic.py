"""A generative critic as a verifier: k sampled critiques of a solution, each a check of every step and a verdict.

The line of Heimdall (repeated sampling of a long-CoT verifier, voted), GenPRM (a process reward model that
checks each step before it judges, its per-step verdicts voted) and DeepSeek-GRM (k critiques voted, guided by
a meta reward model). ``GenerativeCritic`` wraps a causal LM trained to write ``arith.critique_of``'s form after
``arith.critic_prompt`` (the embedded ``tiny-critic``, ``backends/embedded/critic_train.py``)::

    1: 57 * 15 = 855 ok
    2: 855 - 257 = 589 wrong, 855 - 257 = 598
    Verdict: step 2 wrong

``parse_critique`` reads it into a ``Critique``. Malformed text never raises: the fallback reads the check lines
it can, and a critique without a ``Verdict:`` line never vouches for the solution (its verdict is the first
step a check calls wrong, else the step after the last one it checked) and is marked ``parsed=False``.

Scores (a ``StepVerifier``): ``score_whole`` is the vote of the k critiques of the whole solution under the vote
rule (``share``: the share that say correct, the default; ``majority``: 1 when more than half do, else 0, a tie
counts as wrong; ``unanimous``: 1 only when all do). ``score_steps`` gives GenPRM's per-step verdicts: step i's
score is the vote over the critiques of "the first wrong step is after i" (a correct verdict counts as after
every step), so the scores fall at the step the critiques flag and "last" aggregation equals ``score_whole``.
Each solution is critiqued once per run (the run's ``cache``).

Meta-RM (``meta=True``; DeepSeek-GRM trains a separate meta reward model that rates each sampled critique and
votes only over the best rated): in miniature the critic's own second pass, the mean log-likelihood per token
it gives each critique it wrote, read in one forward over prompt and critique; the vote keeps the better half
(``ceil(k / 2)``, ties to the earlier sample). The second pass is charged like the first.

Compute: the critic's prompt and generated tokens, and the meta pass's tokens, are ``verifier_tokens``, its
forward passes ``verifier_calls``, with their FLOPs and memory traffic (``judge.verifier_compute``); nothing
goes to the policy's counters. Sampling is seeded: ``critique(seed=)`` from the caller, scores from the critic's
seed and the problem text, so a run is reproducible.
"""
from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass, replace

import torch

from backends.embedded import arith
from backends.text.judge import verifier_compute
from backends.text.prm_base import question_of
from backends.text.transformers_lm import CausalLMPolicy, flops_for, forward_mem_bytes, kv_token_bytes
from strategies.core import CancelToken, Compute, Critique

VOTE_RULES = ("share", "majority", "unanimous")
DEFAULT_CRITIQUES = 4
MAX_CRITIQUES = 64

_CHECK = re.compile(r"^\s*(\d+)\s*:.*?\b(ok|wrong)\b", re.IGNORECASE)
_VERDICT = re.compile(r"verdict\s*:\s*(?:(correct)|step\s*(\d+)\s*wrong)", re.IGNORECASE)


def parse_critique(text: str) -> Critique:
    """The critique in ``text`` (see the module docstring): checks from its ``N: ... ok|wrong`` lines, the verdict
    from its last ``Verdict:`` line; without one, the fallback's verdict and ``parsed=False``."""
    checks = []
    for line in text.splitlines():
        m = _CHECK.match(line)
        if m:
            checks.append(m.group(2).lower() == "ok")
    found = list(_VERDICT.finditer(text))
    if found:
        last = found[-1]
        return Critique(None if last.group(1) else max(1, int(last.group(2))), checks, text)
    verdict = checks.index(False) + 1 if False in checks else len(checks) + 1
    return Critique(verdict, checks, text, parsed=False)


def vote(critiques: list[Critique], rule: str, after: int = 0) -> float:
    """The vote of ``critiques`` on "the first wrong step is after step ``after``" (0: the solution is correct);
    0.5 with no critiques (no information)."""
    if rule not in VOTE_RULES:
        raise ValueError(f"unknown vote rule {rule!r}; choose one of {', '.join(VOTE_RULES)}")
    if not critiques:
        return 0.5
    says = [c.verdict is None or (after > 0 and c.verdict > after) for c in critiques]
    share = sum(says) / len(says)
    if rule == "share":
        return share
    if rule == "majority":
        return float(share > 0.5)
    return float(all(says))


@dataclass(frozen=True)
class CriticSettings:
    """The options a run gives a critic (``--option critiques=K vote=RULE meta=on``)."""

    k: int = DEFAULT_CRITIQUES
    rule: str = "share"
    meta: bool = False


class GenerativeCritic:
    """A causal LM that writes critiques of arithmetic chains (see the module docstring)."""

    is_oracle = False

    def __init__(self, path_or_id: str, name: str = "critic", settings: CriticSettings = CriticSettings(),
                 temperature: float = 0.8, max_new_tokens: int = 160, device: str | None = None,
                 trust_remote_code: bool = False, seed: int = 0, policy: CausalLMPolicy | None = None) -> None:
        self.policy = policy or CausalLMPolicy(path_or_id, device=device, trust_remote_code=trust_remote_code)
        self.path_or_id, self.name, self.settings = path_or_id, name, settings
        self.temperature, self.max_new_tokens, self.seed = temperature, max_new_tokens, seed

    def configured(self, settings: CriticSettings) -> "GenerativeCritic":
        """The same loaded critic under a run's settings (the shared one is left as it is)."""
        return GenerativeCritic(self.path_or_id, self.name, settings, self.temperature, self.max_new_tokens,
                                seed=self.seed, policy=self.policy)

    @staticmethod
    def _prompt(problem: object, steps: list[str]) -> str:
        if not isinstance(problem, arith.Problem):
            raise ValueError("the embedded critic checks arithmetic chains only; on free-form math use a judge "
                             "(judge:<model>)")
        return arith.critic_prompt(problem.text, steps)

    def critique(self, problem: object, prompt: str, step_lists: list[list[str]], k: int,
                 temperature: float | None = None, seed: int = 0,
                 cancel: CancelToken | None = None) -> tuple[list[list[Critique]], Compute]:
        """``k`` sampled critiques of each solution, batched in one call, seeded from ``seed``."""
        if not step_lists:
            return [], Compute()
        prompts = [self._prompt(problem, steps) for steps in step_lists]
        groups = self.policy.generate_steps(prompts, k, self.temperature if temperature is None else temperature,
                                            1.0, seed, self.max_new_tokens, cancel, stop_at_delimiter=False)
        cost = verifier_compute([s for g in groups for s in g])
        return [[parse_critique(s.text) for s in g] for g in groups], cost

    def _kept(self, problem: object, step_lists: list[list[str]], critiques: list[list[Critique]],
              cancel: CancelToken | None) -> tuple[list[list[Critique]], Compute]:
        """The critiques the vote keeps: all, or with ``meta`` the better-rated half of each solution's."""
        if not self.settings.meta:
            return critiques, Compute()
        prompts = [self._prompt(problem, s) for s, cs in zip(step_lists, critiques) for _ in cs]
        ratings, cost = self.mean_loglik(prompts, [c.text for cs in critiques for c in cs], cancel)
        out, i = [], 0
        for cs in critiques:
            mine = ratings[i:i + len(cs)]
            i += len(cs)
            best = sorted(range(len(cs)), key=lambda j: (-mine[j], j))[:math.ceil(len(cs) / 2)]
            out.append([cs[j] for j in sorted(best)])
        return out, cost

    @torch.inference_mode()
    def mean_loglik(self, prompts: list[str], texts: list[str],
                    cancel: CancelToken | None = None) -> tuple[list[float], Compute]:
        """The critic's mean log-probability per token of each text after its prompt (the meta pass)."""
        tok, model, pol = self.policy.tokenizer, self.policy.model, self.policy
        cost, out = Compute(), []
        token_kv = kv_token_bytes(pol.layers, pol.kv_width, pol.bytes_per_value)
        for b in range(0, len(prompts), 64):
            if cancel is not None:
                cancel.check()
            heads = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts[b:b + 64]]
            tails = [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts[b:b + 64]]
            width = max(len(h) + len(t) for h, t in zip(heads, tails))
            ids = torch.full((len(heads), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, (h, t) in enumerate(zip(heads, tails)):
                ids[r, :len(h) + len(t)] = torch.tensor(h + t)
                mask[r, :len(h) + len(t)] = 1
            logp = model(input_ids=ids.to(pol.device), attention_mask=mask.to(pol.device)).logits.float()
            logp = logp[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:].unsqueeze(-1).to(pol.device)).squeeze(-1)
            for r, (h, t) in enumerate(zip(heads, tails)):
                out.append(float(logp[r, len(h) - 1:len(h) + len(t) - 1].mean()))
            n = int(mask.sum())
            cost.verifier_tokens += n
            cost.verifier_calls += 1
            cost.flops += flops_for(pol.n_params, pol.layers, pol.hidden, n, width // 2)
            cost.mem_bytes += forward_mem_bytes(pol.n_params * pol.bytes_per_value, token_kv, ids.numel())
        return out, cost

    def score_with_critiques(self, problem: object, prompt: str, step_lists: list[list[str]],
                             cancel: CancelToken | None = None, cache: dict | None = None
                             ) -> tuple[list[list[Critique]], list[list[float]], Compute]:
        """The critiques the vote keeps for each solution and GenPRM's per-step scores from them; each distinct
        solution critiqued once per run (``cache``, the run's own)."""
        cache = {} if cache is None else cache
        question = question_of(problem, prompt)
        s = self.settings
        key = lambda steps: ("critic", s, question, tuple(steps))  # noqa: E731 - the cache key of one solution
        todo = list(dict.fromkeys(tuple(steps) for steps in step_lists if steps and key(steps) not in cache))
        cost = Compute()
        if todo:
            seed = self.seed + zlib.crc32(question.encode())
            crits, cost = self.critique(problem, prompt, [list(t) for t in todo], s.k, seed=seed, cancel=cancel)
            kept, meta_cost = self._kept(problem, [list(t) for t in todo], crits, cancel)
            cost.add(meta_cost)
            for steps, cs in zip(todo, kept):
                cache[key(steps)] = cs
        kept_of = [cache[key(steps)] if steps else [] for steps in step_lists]
        per_step = [[vote(cs, s.rule, after=i) for i in range(1, len(steps) + 1)]
                    for cs, steps in zip(kept_of, step_lists)]
        return kept_of, per_step, cost

    def score_steps(self, problem: object, prompt: str, step_lists: list[list[str]],
                    cancel: CancelToken | None = None, cache: dict | None = None) -> tuple[list[list[float]], Compute]:
        _, per_step, cost = self.score_with_critiques(problem, prompt, step_lists, cancel, cache)
        return per_step, cost

    def score_whole(self, problem: object, prompt: str, step_lists: list[list[str]],
                    cancel: CancelToken | None = None) -> tuple[list[float], Compute]:
        kept, _, cost = self.score_with_critiques(problem, prompt, step_lists, cancel)
        return [vote(cs, self.settings.rule) for cs in kept], cost


CRITIC_OPTIONS = ("critiques", "vote", "meta")


def critic_option(settings: CriticSettings, name: str, value: str) -> CriticSettings:
    """``settings`` with one run option (``critiques=K``, ``vote=RULE``, ``meta=on|off``) applied; ValueError
    naming the option when its value is bad."""
    if name == "critiques":
        if not value.isdigit() or not 1 <= int(value) <= MAX_CRITIQUES:
            raise ValueError(f"critiques must be a whole number from 1 to {MAX_CRITIQUES}, got {value!r}")
        return replace(settings, k=int(value))
    if name == "vote":
        if value not in VOTE_RULES:
            raise ValueError(f"vote must be one of {', '.join(VOTE_RULES)}, got {value!r}")
        return replace(settings, rule=value)
    if value not in ("on", "off", "true", "false", "1", "0"):
        raise ValueError(f"meta must be on or off, got {value!r}")
    return replace(settings, meta=value in ("on", "true", "1"))
