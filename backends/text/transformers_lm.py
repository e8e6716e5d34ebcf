"""Causal language models through transformers: batched next-step generation with exact compute counts.

One loop serves the embedded tiny policies and any hub causal LM (by id or local path). It decodes
token by token with a KV cache, stops each sequence at the step delimiter or EOS on its own, and
prefills each distinct prefix once: the cache is repeated for the ``k`` samples drawn from it, so a
prompt shared by 16 samples is processed once, not 16 times.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, DynamicCache

from backends.text import drafting, kv_reuse
from backends.text.decoding import DecodeState, StopRule, sampling_probs, top_k_logprobs
from backends.text.kv_reuse import KVStore
from strategies.core import CancelToken, Compute

log = logging.getLogger(__name__)


def pick_device(device: str | None = None) -> tuple[torch.device, torch.dtype]:
    """CUDA with bf16 when present, else CPU with float32."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    return dev, (torch.bfloat16 if dev.type == "cuda" else torch.float32)


def chat_prompt(tokenizer, question: str, system: str | None = None) -> str:
    """The question through ``tokenizer``'s chat template (with a system turn if given); bare without a tokenizer."""
    if tokenizer is None:
        return question
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@dataclass
class StepSample:
    """One generated step for one sequence."""

    text: str
    finished: bool
    generated_tokens: int
    prompt_tokens: int
    cost: Compute = field(default_factory=Compute)
    # per generated token, the top-k log-probabilities of the model's distribution there (when asked)
    top_logprobs: list[list[float]] = field(default_factory=list)
    stopped: bool = False  # cut by the caller's stop rule (not finished: no answer)
    delimited: bool = False  # ended at the delimiter (which ``text`` leaves out)


def model_shape(config) -> tuple[int, int, int]:
    """(layers, kv heads x head dim, hidden) read from a transformers config, for FLOP and KV estimates."""
    text_cfg = getattr(config, "text_config", None) or config
    layers = getattr(text_cfg, "num_hidden_layers", 0) or 0
    hidden = getattr(text_cfg, "hidden_size", 0) or 0
    heads = getattr(text_cfg, "num_attention_heads", 1) or 1
    kv_heads = getattr(text_cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(text_cfg, "head_dim", None) or (hidden // heads if heads else 0)
    return layers, kv_heads * head_dim, hidden


def position_limit(config) -> int | None:
    """The number of positions a model with a learned position table has (GPT-2's ``wpe``): an index past it
    fails. None for rotary models, which run past ``max_position_embeddings`` (untrained there, but they run, and
    the embedded models' behaviour is kept as it was)."""
    cfg = getattr(config, "text_config", None) or config
    rotary = any(getattr(cfg, k, None) is not None for k in ("rope_parameters", "rope_theta", "rope_scaling",
                                                                "rotary_dim", "rotary_pct"))
    return None if rotary else getattr(cfg, "max_position_embeddings", None)


def flops_for(params: int, layers: int, hidden: int, new_tokens: int, context: int) -> float:
    """About 2 x params per token plus attention: 2 x layers x context x hidden x 2 (scores and values)."""
    return 2.0 * params * new_tokens + 4.0 * layers * hidden * context * new_tokens


def kv_token_bytes(layers: int, kv_width: int, bytes_per_value: int) -> int:
    """Bytes of keys and values one token keeps in the cache, over all layers."""
    return 2 * layers * kv_width * bytes_per_value


def decode_kv_reads(context: int, forwards: int) -> int:
    """Cached tokens one sequence's attention reads over ``forwards`` decode forwards that start from a
    ``context``-token cache: each forward reads the cache so far and the token it adds."""
    return forwards * context + forwards * (forwards + 1) // 2


def param_bytes(model) -> int:
    """Bytes of a module's weights as stored (what one forward reads from memory)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def forward_mem_bytes(weights: int, token_kv: int, tokens: int) -> float:
    """Memory traffic of one batched forward without a cache to read (a prefill, a verifier pass): the weights
    once, and the keys and values of its ``tokens`` (padding included) written once."""
    return float(weights + token_kv * tokens)


class CausalLMPolicy:
    """A causal LM that proposes reasoning steps. ``delimiter`` ends a step."""

    def __init__(self, path_or_id: str, device: str | None = None, trust_remote_code: bool = False,
                 delimiter: str = "\n", chat_template: bool = False) -> None:
        self.device, self.dtype = pick_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(path_or_id, trust_remote_code=trust_remote_code)
        self.model = AutoModelForCausalLM.from_pretrained(
            path_or_id, dtype=self.dtype, trust_remote_code=trust_remote_code).to(self.device).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.delimiter = delimiter
        self.use_chat_template = chat_template and getattr(self.tokenizer, "chat_template", None) is not None
        self.eos_ids = self._eos_ids()
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.layers, self.kv_width, self.hidden = model_shape(self.model.config)
        self.bytes_per_value = torch.finfo(self.dtype).bits // 8
        self.max_positions = position_limit(self.model.config)

    def new_drafter(self) -> "drafting.NgramDrafter":
        """An empty n-gram table for one run's drafts (``generate_steps(drafter=...)``)."""
        return drafting.NgramDrafter()

    def new_kv_store(self, budget_bytes: int | None = None) -> KVStore:
        """An empty store for one run's caches (``generate_steps(kv_store=...)``); None: the default budget."""
        return KVStore(kv_reuse.DEFAULT_BUDGET_BYTES if budget_bytes is None else budget_bytes)

    def _eos_ids(self) -> set[int]:
        ids = set()
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for v in (self.tokenizer.eos_token_id, gen_eos):
            if isinstance(v, int):
                ids.add(v)
            elif isinstance(v, (list, tuple)):
                ids.update(v)
        return ids

    def format_prompt(self, question: str, system: str | None = None) -> str:
        """The exact text the policy is given: its chat template when asked and available, else the bare question."""
        return chat_prompt(self.tokenizer if self.use_chat_template else None, question, system)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @torch.inference_mode()
    def generate_steps(self, prefixes: list[str], k: int = 1, temperature: float = 0.8, top_p: float = 1.0,
                       seed: int = 0, max_new_tokens: int = 48, cancel: CancelToken | None = None,
                       stop_at_delimiter: bool = True, stop_at_first: bool = False, top_logprobs: int = 0,
                       stop: StopRule | None = None, kv_store: KVStore | None = None,
                       drafter: "drafting.NgramDrafter | None" = None,
                       delimiter: str | None = None) -> list[list[StepSample]]:
        """``k`` continuations of each prefix, each stopped at the delimiter (not included) or EOS.

        ``delimiter`` overrides the policy's step delimiter for this call (a thinking model's thought ends at
        its end-of-thinking delimiter).

        ``top_logprobs`` > 0 keeps, for every generated token, the top-k log-probabilities of the model's
        distribution at that position (``StepSample.top_logprobs``). ``stop`` (which needs ``top_logprobs``)
        is asked after each token whether to stop that sample: a stopped sample ends at the token before, its
        forward passes charged and no further, and is marked ``stopped``.

        ``stop_at_first`` ends the whole batch at the token where the first sequence ends (EOS): the others
        are cut there, unfinished, and their counters hold only the tokens they generated (First Finish
        Search). The random draws are those of the uncut batch, so every cut sample is a prefix of the one the
        same call without ``stop_at_first`` returns. ``kv_store`` (a run's :class:`KVStore`) continues each prefix from
        the longest prefix of its token ids the run has encoded before, encodes only the rest (what
        ``prompt_tokens`` counts), prefills a repeated prefix once, and keeps every unfinished step's cache for
        its children. ``drafter`` (a run's :class:`drafting.NgramDrafter`) decodes by model-free speculative
        sampling, which leaves every sample's distribution unchanged (not its random draws); a race
        (``stop_at_first``) decodes plainly. Temperature 0 is greedy. Sampling draws from one generator seeded with ``seed`` so a call is
        reproducible. Returns samples grouped by prefix, in the order of ``prefixes``.
        """
        if not prefixes:
            return []
        delimiter = delimiter or self.delimiter
        started = time.perf_counter()
        if self.max_positions:  # a sequence at the end of the position table stops there, unfinished
            longest = max(len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prefixes)
            if longest >= self.max_positions:
                raise ValueError(f"the prompt ({longest} tokens) fills the model's context of "
                                 f"{self.max_positions} positions")
            max_new_tokens = min(max_new_tokens, self.max_positions - longest)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        if kv_store is None:
            enc = self.tokenizer(prefixes, return_tensors="pt", padding=True, add_special_tokens=False)
            ids, mask = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
            prompt_lens = mask.sum(1).tolist()
            encoded, width = prompt_lens, ids.shape[1]
            # Prefill every distinct prefix once, then repeat its cache for the k samples.
            cache = DynamicCache()
            positions = (mask.cumsum(1) - 1).clamp(min=0)
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                             past_key_values=cache, use_cache=True)
            logits = out.logits[:, -1, :].float()
        else:
            id_lists = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prefixes]
            prompt_lens = [len(x) for x in id_lists]
            pre = kv_reuse.prefill(self.model, kv_store, id_lists, self.tokenizer.pad_token_id, self.device)
            cache, logits, mask, positions, encoded, width = (pre.cache, pre.logits, pre.mask, pre.positions,
                                                               pre.encoded, pre.width)
            prefill_mask = mask
        calls = 1
        if k > 1:
            cache.batch_repeat_interleave(k)
            logits = logits.repeat_interleave(k, 0)
            mask = mask.repeat_interleave(k, 0)
            positions = positions.repeat_interleave(k, 0)
        batch = logits.shape[0]
        next_pos = positions[:, -1:] + 1
        state = DecodeState(self, batch, stop_at_delimiter, top_logprobs, stop, delimiter)
        tokens, hit_eos, stopped, texts, lps = state.tokens, state.hit_eos, state.stopped, state.texts, state.lps
        fed_columns = None
        if drafter is not None and not stop_at_first:
            rows = (id_lists if kv_store is not None
                    else [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prefixes])
            mask, more, fed_columns = drafting.decode(self, drafter, state, cache, logits, mask, next_pos,
                                                      [r for r in rows for _ in range(k)], gen, temperature,
                                                      top_p, max_new_tokens, cancel)
            calls += more
        for _ in range(0 if fed_columns is not None else max_new_tokens):
            if cancel is not None:
                cancel.check()
            nxt = self._sample(logits, temperature, top_p, gen)
            top = top_k_logprobs(logits, top_logprobs) if top_logprobs > 0 else None
            for i in (~state.done).nonzero().flatten().tolist():
                state.take(i, int(nxt[i]), top[i] if top is not None else None)
            if bool(state.done.all()) or (stop_at_first and any(hit_eos)):
                break
            mask = torch.cat([mask, torch.ones(batch, 1, dtype=mask.dtype, device=self.device)], 1)
            out = self.model(input_ids=nxt.view(-1, 1), attention_mask=mask, position_ids=next_pos,
                             past_key_values=cache, use_cache=True)
            calls += 1
            next_pos = next_pos + 1
            logits = out.logits[:, -1, :].float()

        samples: list[list[StepSample]] = []
        context_max = 0
        for j, plen in enumerate(prompt_lens):
            group = []
            for s in range(k):
                i = j * k + s
                text = texts[i] if stop_at_delimiter else self.tokenizer.decode(tokens[i], skip_special_tokens=True)
                delimited = stop_at_delimiter and delimiter in text
                if delimited:
                    text = text.split(delimiter, 1)[0]
                n_new = len(tokens[i]) + int(hit_eos[i])
                shared_prompt = encoded[j] if s == 0 else 0
                context_max = max(context_max, plen + n_new)
                cost = Compute(prompt_tokens=shared_prompt, generated_tokens=n_new,
                               flops=flops_for(self.n_params, self.layers, self.hidden, shared_prompt, plen)
                               + flops_for(self.n_params, self.layers, self.hidden, n_new, plen + n_new // 2))
                group.append(StepSample(text=text, finished=hit_eos[i], generated_tokens=n_new,
                                        prompt_tokens=shared_prompt, cost=cost, top_logprobs=lps[i],
                                        stopped=stopped[i], delimited=delimited))
            samples.append(group)
        kv = 2 * self.layers * self.kv_width * self.bytes_per_value * batch * (width + max_new_tokens)
        wall = time.perf_counter() - started
        # Memory traffic (Kinetics): the prefill writes each prefix's keys and values once, k > 1 copies them
        # into every sample's row, and each decode forward reads every row's whole left-padded cache, finished
        # rows included (the batch keeps them); the weights are read once per batched forward.
        token_kv = kv_token_bytes(self.layers, self.kv_width, self.bytes_per_value)
        row_reads = token_kv * (decode_kv_reads(width, calls - 1) + (width if k > 1 else 0))
        for group in samples:
            for j, s in enumerate(group):
                s.cost.kv_bytes_peak = kv
                s.cost.wall_s = wall / batch
                s.cost.mem_bytes = float(row_reads + (token_kv * width if j == 0 else 0))
        # Model calls are forward passes of the whole batch; charge them, and the weights they read, to the
        # first sample.
        samples[0][0].cost.model_calls = calls
        samples[0][0].cost.mem_bytes += float(self.n_params * self.bytes_per_value * calls)
        if kv_store is not None:
            self._keep_steps(kv_store, cache, prefill_mask, id_lists, k, state, calls - 1, fed_columns)
            samples[0][0].cost.kv_bytes_peak = kv + kv_store.peak_bytes
        if drafter is not None:
            samples[0][0].cost.draft_tokens, samples[0][0].cost.draft_accepted = drafter.take_counts()
        return samples

    @staticmethod
    def _keep_steps(kv: KVStore, cache: DynamicCache, prefill_mask: torch.Tensor, id_lists: list[list[int]],
                    k: int, state: DecodeState, decoded: int, fed_columns: list[list[int]] | None) -> None:
        """Keep each unfinished step's cache (its prefix and the generated tokens that were fed back, the
        delimiter included when a later pass fed it) for the children that will extend it. Plain decoding fed
        row i's tokens in the columns after the prefill, one per pass; drafting says where it put them."""
        if not state.stop_at_delimiter:
            return  # a rollout is final: nothing extends it
        start = prefill_mask.shape[1]
        for i, toks in enumerate(state.tokens):
            if state.hit_eos[i] or state.stopped[i]:
                continue
            fed = list(range(start, start + min(len(toks), decoded))) if fed_columns is None else fed_columns[i]
            columns = torch.cat([prefill_mask[i // k].nonzero().flatten(),
                                 torch.tensor(fed, dtype=torch.long, device=prefill_mask.device)])
            kv_reuse.keep(kv, cache, i, columns, tuple(id_lists[i // k]) + tuple(toks[:len(fed)]))

    def complete(self, prefixes: list[str], temperature: float = 0.8, top_p: float = 1.0, seed: int = 0,
                 max_new_tokens: int = 256, cancel: CancelToken | None = None) -> list[StepSample]:
        """Each prefix continued to EOS (or the token limit) in one call."""
        return [g[0] for g in self.generate_steps(prefixes, 1, temperature, top_p, seed, max_new_tokens,
                                                  cancel, stop_at_delimiter=False)]

    @staticmethod
    def _sample(logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator) -> torch.Tensor:
        if temperature <= 0:
            return logits.argmax(-1)
        return torch.multinomial(sampling_probs(logits, temperature, top_p), 1, generator=gen).flatten()


def memory_estimate_bytes(path_or_id: str, trust_remote_code: bool = False) -> int | None:
    """Weights' size for a model's config, before loading (bf16 on CUDA, float32 on CPU); None if unknown."""
    try:
        config = AutoConfig.from_pretrained(path_or_id, trust_remote_code=trust_remote_code)
    except Exception:  # noqa: BLE001 - unknown models are reported, not raised
        return None
    layers, kv_width, hidden = model_shape(config)
    text_cfg = getattr(config, "text_config", None) or config
    vocab = getattr(text_cfg, "vocab_size", 0) or 0
    inter = getattr(text_cfg, "intermediate_size", 4 * hidden) or 4 * hidden
    params = layers * (2 * hidden * hidden + 2 * hidden * kv_width + 3 * hidden * inter) + 2 * vocab * hidden
    _, dtype = pick_device()
    return params * (torch.finfo(dtype).bits // 8)
