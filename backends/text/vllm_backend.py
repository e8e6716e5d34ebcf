"""vLLM in process: a policy (``vllm.LLM`` with prefix caching) and the Qwen PRM through vLLM's pooling API.

An optional install for CUDA machines (``pip install -r requirements-gpu.txt``); this module imports vLLM only
when one of its classes is built, so the app never needs it otherwise. Catalog ids ``vllm:<path or hub id>``
resolve to ``VLLMPolicy``.

``VLLMPolicy`` has the ``CausalLMPolicy`` surface. ``generate_steps`` sends every prefix once with
``SamplingParams(n=k, stop=[delimiter], seed=..., logprobs=...)``: vLLM's automatic prefix caching keeps the
KV blocks of shared prefixes (the question, the steps so far) across calls, which is what beam search and
particle filtering re-send every step. Counts: prompt tokens of a prefix charged once (its ``n`` samples share
the prefill), generated tokens from each choice's ``token_ids``, one model call per ``generate`` call;
finished = vLLM's ``stop_reason is None`` (EOS) rather than the stop string; FLOPs about 2 x params x tokens.
Memory traffic (Kinetics' eFLOPs) is estimated from the same counts, since vLLM's scheduler does not report its
steps: the weights once per engine step, taken as one prefill step plus as many decode steps as the longest
sample of the call (all its requests batched together), each prompt's keys and values written once, and each
sample's paged cache read at its own context length at every token it generates (no padding, as vLLM pages).
Per-token logprobs of each sample are kept in ``last_logprobs`` when ``logprobs`` is set.

``VLLMQwenPRM`` scores with a ``Qwen2ForProcessRewardModel`` checkpoint in vLLM's pooling runner: the input is
built exactly as ``prm_families.QwenMathPRM`` builds it, and the class-1 probability is read at the
``<extra_0>`` positions (vLLM's STEP pooler returns only those rows; an ALL pooler returns every position and
the rows are picked here). vLLM's runner and pooling-task names changed across releases (``task="reward"``
then ``runner="pooling"``; ``reward()`` then ``encode(pooling_task="token_classify")``): both are tried.
Other PRM families run through transformers (``backends.text.prm_families``).
"""
from __future__ import annotations

import time

from backends.text.decoding import StopRule, cut_after_the_fact
from backends.text.prm_base import PrefixCachedPRM
from backends.text.prm_families import QWEN_PRM_SYSTEM, QWEN_STEP_TOKEN
from backends.text.transformers_lm import (StepSample, chat_prompt, decode_kv_reads, forward_mem_bytes,
                                           kv_token_bytes)
from strategies.core import CancelToken, Compute


def _require_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        raise ImportError("vLLM is not installed: pip install -r requirements-gpu.txt (needs a CUDA machine)") from exc
    return vllm


def _value_bytes(llm) -> int:
    """Bytes per weight and cache value of a ``vllm.LLM`` (its model dtype; bf16 when it does not say)."""
    dtype = getattr(getattr(llm.llm_engine, "model_config", None), "dtype", None)
    size = getattr(dtype, "itemsize", None)
    return int(size) if isinstance(size, int) and size > 0 else 2


class VLLMPolicy:
    """A causal LM run by vLLM in this process (see the module docstring)."""

    def __init__(self, path_or_id: str, delimiter: str = "\n\n", trust_remote_code: bool = False,
                 chat_template: bool = True, gpu_memory_utilization: float = 0.85, max_model_len: int | None = None,
                 logprobs: int | None = None, seed: int = 0, **llm_kwargs) -> None:
        vllm = _require_vllm()
        self._SamplingParams = vllm.SamplingParams
        kw = {"enable_prefix_caching": True, "trust_remote_code": trust_remote_code,
              "gpu_memory_utilization": gpu_memory_utilization, "seed": seed, **llm_kwargs}
        if max_model_len:
            kw["max_model_len"] = max_model_len
        self.llm = vllm.LLM(model=path_or_id, **kw)
        self.tokenizer = self.llm.get_tokenizer()
        self.delimiter = delimiter
        self.use_chat_template = chat_template and getattr(self.tokenizer, "chat_template", None) is not None
        self.logprobs = logprobs
        self.last_logprobs: list[list[list[float]]] = []
        cfg = self.llm.llm_engine.model_config.hf_config
        from backends.text.transformers_lm import flops_for, model_shape
        self._flops_for = flops_for
        self.layers, self.kv_width, self.hidden = model_shape(cfg)
        vocab = getattr(cfg, "vocab_size", 0) or 0
        inter = getattr(cfg, "intermediate_size", 4 * self.hidden) or 4 * self.hidden
        self.n_params = self.layers * (2 * self.hidden ** 2 + 2 * self.hidden * self.kv_width
                                       + 3 * self.hidden * inter) + 2 * vocab * self.hidden
        self.value_bytes = _value_bytes(self.llm)

    def format_prompt(self, question: str, system: str | None = None) -> str:
        return chat_prompt(self.tokenizer if self.use_chat_template else None, question, system)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate_steps(self, prefixes: list[str], k: int = 1, temperature: float = 0.8, top_p: float = 1.0,
                       seed: int = 0, max_new_tokens: int = 48, cancel: CancelToken | None = None,
                       stop_at_delimiter: bool = True, stop_at_first: bool = False, top_logprobs: int = 0,
                       stop: StopRule | None = None, delimiter: str | None = None) -> list[list[StepSample]]:
        """``k`` continuations of each prefix (``delimiter`` overrides the policy's step delimiter); ``stop_at_first`` is not honoured (vLLM finishes every request of the
        call), so every sample is generated to its end and charged so. ``top_logprobs`` asks vLLM for the top-k
        log-probabilities per token; ``stop`` cuts a sample where it fires, after the fact (every token was
        generated and is charged)."""
        if not prefixes:
            return []
        if cancel is not None:
            cancel.check()
        started = time.perf_counter()
        params = [self._SamplingParams(n=k, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
                                       stop=[delimiter or self.delimiter] if stop_at_delimiter else None, seed=seed + j,
                                       logprobs=max(self.logprobs or 0, top_logprobs) or None)
                  for j in range(len(prefixes))]
        # token ids, not text: the tokenizer's BOS rules stay out of raw continuations (as in CausalLMPolicy)
        prompts = [{"prompt_token_ids": self.tokenizer(p, add_special_tokens=False)["input_ids"]} for p in prefixes]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        wall = time.perf_counter() - started
        token_kv = kv_token_bytes(self.layers, self.kv_width, self.value_bytes)
        groups, self.last_logprobs = [], []
        longest = 0
        for out in sorted(outputs, key=lambda o: int(o.request_id) if str(o.request_id).isdigit() else 0):
            plen = len(out.prompt_token_ids)
            group, lps = [], []
            for s, c in enumerate(out.outputs):
                n_new = len(c.token_ids)
                longest = max(longest, n_new)
                finished = c.finish_reason == "stop" and (c.stop_reason is None or not stop_at_delimiter)
                shared = plen if s == 0 else 0
                cost = Compute(prompt_tokens=shared, generated_tokens=n_new,
                               flops=self._flops_for(self.n_params, self.layers, self.hidden, shared + n_new, plen),
                               mem_bytes=float(token_kv * (shared + decode_kv_reads(plen, n_new))),
                               wall_s=wall / max(1, len(prefixes) * k))
                sample = StepSample(text=c.text, finished=finished, generated_tokens=n_new,
                                    prompt_tokens=shared, cost=cost)
                if top_logprobs > 0:
                    _attach_top(sample, c, top_logprobs, stop, self.tokenizer)
                group.append(sample)
                if c.logprobs:  # one dict per position: token id -> Logprob; keep the sampled token's
                    lps.append([d[t].logprob if t in d else float("nan") for t, d in zip(c.token_ids, c.logprobs)])
            groups.append(group)
            self.last_logprobs.append(lps)
        if groups and groups[0]:
            groups[0][0].cost.model_calls = 1
            groups[0][0].cost.mem_bytes += float(self.n_params * self.value_bytes * (1 + longest))
        return groups

    def complete(self, prefixes: list[str], temperature: float = 0.8, top_p: float = 1.0, seed: int = 0,
                 max_new_tokens: int = 256, cancel: CancelToken | None = None) -> list[StepSample]:
        return [g[0] for g in self.generate_steps(prefixes, 1, temperature, top_p, seed, max_new_tokens, cancel,
                                                  stop_at_delimiter=False)]


def _attach_top(sample: StepSample, c, k: int, stop: StopRule | None, tokenizer) -> None:
    """vLLM's per-position {token id: Logprob} as the top-k values on ``sample``, cut where ``stop`` fires."""
    sample.top_logprobs, cut = cut_after_the_fact(((lp.logprob for lp in d.values()) for d in c.logprobs or []),
                                                  k, stop)
    if cut is not None:
        sample.text = tokenizer.decode(list(c.token_ids[:cut]), skip_special_tokens=True)
        sample.finished, sample.stopped = False, True


class VLLMQwenPRM(PrefixCachedPRM):
    """Qwen2.5-Math-PRM through vLLM's pooling runner (see the module docstring)."""

    family = "qwen-prm"
    delimiter = "\n\n"

    def __init__(self, path_or_id: str, name: str | None = None, trust_remote_code: bool = False,
                 gpu_memory_utilization: float = 0.3, **llm_kwargs) -> None:
        vllm = _require_vllm()
        kw = {"trust_remote_code": trust_remote_code, "gpu_memory_utilization": gpu_memory_utilization, **llm_kwargs}
        try:
            llm = vllm.LLM(model=path_or_id, runner="pooling", **kw)
        except TypeError:  # releases before the runner argument
            llm = vllm.LLM(model=path_or_id, task="reward", **kw)
        self.llm = llm
        tok = llm.get_tokenizer()
        import torch
        dummy = torch.nn.Linear(1, 1)  # the base class counts parameters of a module; vLLM's live on its workers
        super().__init__(name or path_or_id, tok, dummy, torch.device("cpu"))
        cfg = llm.llm_engine.model_config.hf_config
        from backends.text.transformers_lm import model_shape
        self.layers, kv_width, self.hidden = model_shape(cfg)
        self.n_params = int(7.6e9) if self.hidden >= 3584 else int(1.5e9)
        value_bytes = _value_bytes(llm)
        self.weight_bytes = self.n_params * value_bytes
        self.token_kv = kv_token_bytes(self.layers, kv_width, value_bytes)
        self.step_id = tok.convert_tokens_to_ids(QWEN_STEP_TOKEN)
        self.system = QWEN_PRM_SYSTEM

    def _encode(self, question, steps):
        clean = [s.replace(QWEN_STEP_TOKEN, "") for s in steps]
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": question},
                    {"role": "assistant", "content": QWEN_STEP_TOKEN.join(clean) + QWEN_STEP_TOKEN}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids, [i for i, t in enumerate(ids) if t == self.step_id]

    def _forward(self, question, step_lists, cancel):
        import torch
        if cancel is not None:
            cancel.check()
        started = time.perf_counter()
        built = [self._encode(question, steps) for steps in step_lists]
        prompts = [{"prompt_token_ids": ids} for ids, _ in built]
        try:
            outs = self.llm.encode(prompts, pooling_task="token_classify", use_tqdm=False)
        except TypeError:
            outs = self.llm.reward(prompts, use_tqdm=False)
        scores = []
        for (ids, positions), out in zip(built, outs):
            data = torch.as_tensor(out.outputs.data).float().reshape(-1, 2)
            if data.shape[0] == len(ids):
                data = data[positions]
            if not torch.allclose(data.sum(-1), torch.ones(data.shape[0]), atol=1e-3):
                data = torch.softmax(data, -1)
            scores.append([float(x) for x in data[:, 1]])
        n_tokens = sum(len(ids) for ids, _ in built)
        cost = Compute(verifier_tokens=n_tokens, verifier_calls=1, flops=2.0 * self.n_params * n_tokens,
                       mem_bytes=forward_mem_bytes(self.weight_bytes, self.token_kv, n_tokens),
                       wall_s=time.perf_counter() - started)
        return scores, cost
