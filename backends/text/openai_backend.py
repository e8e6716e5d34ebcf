"""A policy served by any OpenAI-compatible ``/v1/completions`` endpoint (vLLM serve, SGLang, llama.cpp, hosted).

Same surface as ``CausalLMPolicy`` (``generate_steps``, ``complete``, ``format_prompt``, ``delimiter``,
``use_chat_template``), so the reasoning space, the strategies and the judge run on it unchanged. This is how
a search runs on more than one machine: a vLLM cluster behind one endpoint.

- Raw completions: the prompt is the full prefix text (question and the steps so far), so a partial solution
  is continued exactly where it stopped; ``stop`` is the step delimiter.
- ``k`` samples per prefix: one request per sample by default (``n=1``, seeds ``seed + i``), sent concurrently
  from a thread pool, each with its own exact ``usage``. ``use_n=True`` sends one request with ``n=k`` instead
  (vLLM and SGLang honour ``n``; llama.cpp's server answers one choice, and the missing samples are then
  requested one by one), and splits the usage by the per-choice token lists when ``logprobs`` come back,
  evenly otherwise.
- Retries: connection errors, timeouts, HTTP 408/409/429 and 5xx are retried with exponential backoff
  (``backoff_s * 2**attempt``, ``retries`` times); other HTTP errors fail at once with the server's message.
- Counts come from the server's ``usage``: ``completion_tokens`` are the generated tokens; the prompt of the
  ``k`` samples of one prefix is charged once (like ``CausalLMPolicy``, which prefills it once; servers with
  prefix caching do the same), and the raw sum the server reported is kept in ``server_prompt_tokens``.
  ``model_calls`` counts HTTP requests. FLOPs are estimated only when ``n_params`` is given. Memory traffic
  (``mem_bytes``, Kinetics' eFLOPs) is not counted: the server's model shape and batching are unknown here, so
  such a run shows its eFLOPs as not counted rather than equal to its FLOPs, as if memory were free.
- KV reuse across steps happens on the server, not here (no cache crosses HTTP): every request sends the
  full prefix text, the same bytes for the same node every time (the question, then each step and its
  delimiter, exactly as ``ReasoningSpace`` builds it), so a server with prefix caching finds the shared
  prefix itself. vLLM's automatic prefix caching (``vllm serve --enable-prefix-caching``; on by default in
  the V1 engine) hashes the prompt in blocks of ``--block-size`` tokens and reuses every full block it still
  holds, evicting least-recently-used blocks; SGLang's RadixAttention keeps a radix tree of cached token
  sequences and matches the longest prefix at any token. Either way ``usage.prompt_tokens`` still counts the
  whole prompt (vLLM can add the cached part as ``prompt_tokens_details.cached_tokens``, with
  ``--enable-prompt-tokens-details``; it is not read here), so the prompt tokens charged here are what was
  sent, not what the server encoded. ``--option kv_reuse`` and ``drafting`` do not apply (drafting is refused).
- Finished or not: a choice that stopped at the delimiter is an unfinished step; one that stopped at EOS is a
  finished solution. vLLM says which through ``stop_reason`` (None = EOS); where a server does not say (the
  OpenAI schema has only ``finish_reason == "stop"`` for both), an empty step is read as EOS, so an ended
  solution costs at most one more request.

Configuration: ``base_url``, ``model`` and ``api_key`` from the arguments, else ``OPENAI_BASE_URL``,
``TTS_OPENAI_MODEL`` and ``OPENAI_API_KEY``. A catalog id ``openai:<model>`` or ``openai:<model>@<base_url>``
resolves here. Prompts go out as raw text; to wrap questions in the model's chat template give a local
tokenizer folder (``tokenizer=`` or ``TTS_OPENAI_TOKENIZER``). Only the standard library is used (urllib).
"""
from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait

from backends.errors import InputError
from backends.text.decoding import StopRule, cut_after_the_fact
from backends.text.transformers_lm import StepSample, chat_prompt
from strategies.core import CancelToken, Compute

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class EndpointError(RuntimeError):
    """The endpoint refused a request or stayed unreachable after the retries."""


def resolve_endpoint(source: str | None = None, base_url: str | None = None,
                     api_key: str | None = None) -> tuple[str | None, str | None, str | None]:
    """(base URL ending in /v1, model, key) from ``model@base_url`` or the arguments, then the environment."""
    model = source or None
    if model and "@" in model and model.split("@", 1)[1].startswith(("http://", "https://")):
        model, base_url = model.split("@", 1)[0], base_url or model.split("@", 1)[1]
    base = (base_url or os.environ.get("OPENAI_BASE_URL") or "").rstrip("/") or None
    if base and not base.endswith("/v1"):
        base += "/v1"
    return base, model or os.environ.get("TTS_OPENAI_MODEL"), api_key or os.environ.get("OPENAI_API_KEY")


class OpenAIPolicy:
    """A policy over an OpenAI-compatible completions endpoint (see the module docstring)."""

    def __init__(self, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 delimiter: str = "\n\n", tokenizer: str | None = None, max_workers: int = 8, retries: int = 4,
                 backoff_s: float = 0.5, timeout_s: float = 300.0, use_n: bool = False, n_params: int = 0) -> None:
        base, model, key = resolve_endpoint(model, base_url, api_key)
        if not base:
            raise InputError("no OpenAI-compatible endpoint: set OPENAI_BASE_URL or pass base_url")
        if not model:
            raise InputError("no model name for the endpoint: pass one or set TTS_OPENAI_MODEL")
        self.base_url, self.model, self.api_key = base, model, key
        self.delimiter = delimiter
        self.retries, self.backoff_s, self.timeout_s, self.use_n = retries, backoff_s, timeout_s, use_n
        self.n_params = n_params
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="openai")
        self._lock = threading.Lock()
        self.server_prompt_tokens = 0
        self.requests = 0
        self.tokenizer = None
        tok_path = tokenizer or os.environ.get("TTS_OPENAI_TOKENIZER")
        if tok_path:
            from transformers import AutoTokenizer
            self.tokenizer = AutoTokenizer.from_pretrained(tok_path)
        self.use_chat_template = self.tokenizer is not None and getattr(self.tokenizer, "chat_template", None) is not None

    @classmethod
    def from_source(cls, source: str, delimiter: str = "\n\n", **kw) -> "OpenAIPolicy":
        return cls(source, delimiter=delimiter, **kw)

    # -- the CausalLMPolicy surface ---------------------------------------------------------------------
    def format_prompt(self, question: str, system: str | None = None) -> str:
        return chat_prompt(self.tokenizer if self.use_chat_template else None, question, system)

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is not None:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return max(1, len(text) // 4)  # a rough figure; the real counts come from the server's usage

    def generate_steps(self, prefixes: list[str], k: int = 1, temperature: float = 0.8, top_p: float = 1.0,
                       seed: int = 0, max_new_tokens: int = 48, cancel: CancelToken | None = None,
                       stop_at_delimiter: bool = True, stop_at_first: bool = False, top_logprobs: int = 0,
                       stop: StopRule | None = None, delimiter: str | None = None) -> list[list[StepSample]]:
        """``k`` continuations of each prefix, each stopped at the delimiter (``delimiter`` overrides the policy's
        for this call) or EOS.

        ``stop_at_first`` cannot stop the server's other samples once they are sent, so every sample is
        generated to its end and charged so: first finish still picks the shortest, and saves nothing here.
        ``top_logprobs`` asks the server for the completions API's ``logprobs`` (the top-k per token); a server
        that answers without them is an EndpointError saying so. ``stop`` is applied to the returned tokens:
        the sample is cut where the rule fires, but the server generated (and this charges) every token."""
        if not prefixes:
            return []
        started = time.perf_counter()
        delimiter = delimiter or self.delimiter
        body = {"model": self.model, "max_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
        if stop_at_delimiter:
            body["stop"] = [delimiter]
        if top_logprobs > 0:
            body["logprobs"] = top_logprobs
        jobs = []  # (prefix index, sample indices, request body)
        for j, prefix in enumerate(prefixes):
            if self.use_n and k > 1:
                jobs.append((j, list(range(k)), {**body, "prompt": prefix, "n": k, "seed": seed + j * k, "logprobs": 1}))
            else:
                jobs.extend((j, [s], {**body, "prompt": prefix, "n": 1, "seed": seed + j * k + s}) for s in range(k))
        futures = [self._pool.submit(self._post, "/completions", b) for _, _, b in jobs]
        try:
            pending = set(futures)
            while pending:
                if cancel is not None:
                    cancel.check()
                _, pending = wait(pending, timeout=0.2)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        results: list[list[StepSample | None]] = [[None] * k for _ in prefixes]
        for (j, idx, _), fut in zip(jobs, futures):
            resp = fut.result()
            for s, sample in zip(idx, self._samples(resp, len(idx), stop_at_delimiter, top_logprobs, stop, delimiter)):
                results[j][s] = sample
        # A server that ignores ``n`` (llama.cpp) returns one choice: the missing samples go one by one.
        missing = [(j, s) for j, g in enumerate(results) for s, x in enumerate(g) if x is None]
        if missing:
            if cancel is not None:
                cancel.check()
            extra = [self._pool.submit(self._post, "/completions",
                                       {**body, "prompt": prefixes[j], "n": 1, "seed": seed + j * k + s})
                     for j, s in missing]
            for (j, s), fut in zip(missing, extra):
                results[j][s] = self._samples(fut.result(), 1, stop_at_delimiter, top_logprobs, stop, delimiter)[0]
        wall = time.perf_counter() - started
        n = sum(len(g) for g in results)
        for group in results:
            for s, sample in enumerate(group):
                if sample is None:
                    raise EndpointError(f"the server returned fewer than {k} choices")
                if s > 0:  # the shared prompt is charged once per prefix (see the module docstring)
                    sample.cost.prompt_tokens = 0
                    sample.prompt_tokens = 0
                sample.cost.wall_s = wall / n
                if self.n_params:
                    sample.cost.flops = 2.0 * self.n_params * (sample.cost.prompt_tokens + sample.generated_tokens)
        return results  # type: ignore[return-value]

    def complete(self, prefixes: list[str], temperature: float = 0.8, top_p: float = 1.0, seed: int = 0,
                 max_new_tokens: int = 256, cancel: CancelToken | None = None) -> list[StepSample]:
        return [g[0] for g in self.generate_steps(prefixes, 1, temperature, top_p, seed, max_new_tokens, cancel,
                                                  stop_at_delimiter=False)]

    # -- HTTP ------------------------------------------------------------------------------------------
    def _samples(self, resp: dict, expected: int, stop_at_delimiter: bool, top_logprobs: int = 0,
                 stop: StopRule | None = None, delimiter: str | None = None) -> list[StepSample]:
        delimiter = delimiter or self.delimiter
        usage = resp.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        completion = int(usage.get("completion_tokens", 0))
        choices = sorted(resp.get("choices", []), key=lambda c: c.get("index", 0))[:expected]
        with self._lock:
            self.server_prompt_tokens += prompt_tokens
        per_choice = []
        for c in choices:
            toks = ((c.get("logprobs") or {}).get("tokens")) if len(choices) > 1 else None
            per_choice.append(len(toks) if toks is not None else None)
        if any(x is None for x in per_choice):
            even = completion // max(1, len(choices))
            per_choice = [even + (1 if i < completion - even * len(choices) else 0) for i in range(len(choices))]
        out = []
        for i, (c, gen) in enumerate(zip(choices, per_choice)):
            text = c.get("text") or ""
            reason = c.get("finish_reason")
            if stop_at_delimiter and delimiter in text:
                text, reason = text.split(delimiter, 1)[0], "delimiter"
            if reason == "stop" and stop_at_delimiter:
                if "stop_reason" in c:  # vLLM: None when the model ended (EOS), else the stop string or id
                    finished = c["stop_reason"] is None
                else:
                    finished = not text.strip()  # unknown: an empty step means the model had nothing more to say
            else:
                finished = reason == "stop"
            cost = Compute(prompt_tokens=prompt_tokens if i == 0 else 0, generated_tokens=gen,
                           model_calls=1 if i == 0 else 0)
            sample = StepSample(text=text, finished=finished, generated_tokens=gen,
                                prompt_tokens=cost.prompt_tokens, cost=cost)
            if top_logprobs > 0:
                self._attach_logprobs(sample, c.get("logprobs"), top_logprobs, stop)
            out.append(sample)
        return out

    def _attach_logprobs(self, sample: StepSample, logprobs: dict | None, k: int, stop: StopRule | None) -> None:
        """The completions API's per-token ``top_logprobs`` (one {token: logprob} per token) on ``sample``, and
        the sample cut where ``stop`` fires (the text up to that token; the tokens after stay charged)."""
        top = (logprobs or {}).get("top_logprobs")
        if not top:
            raise EndpointError(
                f"{self.base_url} returned no token log-probabilities: this strategy needs them (the completions "
                "API's logprobs field; vLLM and llama.cpp's server return it, some hosted endpoints drop it)")
        sample.top_logprobs, cut = cut_after_the_fact(((d or {}).values() for d in top), k, stop)
        if cut is not None:
            sample.text = "".join((logprobs.get("tokens") or [])[:cut])
            sample.finished, sample.stopped = False, True

    def _post(self, path: str, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1) * (1 + 0.25 * random.random()))
            req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                    with self._lock:
                        self.requests += 1
                    return json.loads(r.read().decode())
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:300]
                if exc.code not in RETRY_STATUS:
                    raise EndpointError(f"{self.base_url}{path}: HTTP {exc.code}: {detail}") from None
                last = EndpointError(f"HTTP {exc.code}: {detail}")
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                last = exc
            log.warning("request to %s failed (attempt %d of %d): %s", self.base_url, attempt + 1,
                        self.retries + 1, last)
        raise EndpointError(f"{self.base_url}{path} failed after {self.retries + 1} attempts: {last}")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
