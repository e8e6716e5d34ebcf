"""OpenAI request bodies in, run configurations out; engine events in, OpenAI response bodies out.

No strategy logic: a request names a policy (``model``) and, in the extension field ``tts`` (the openai
client's ``extra_body``), the strategy, verifier, budget and strategy parameters; the engine runs it like any
other run. Choices made where the OpenAI API has no counterpart:

- The problem is the last user message of a chat (its text parts joined), or the completion's ``prompt``;
  other messages are not part of the run's prompt (the domain writes its own). ``tts.problem_id`` names a
  bundled problem (``test:17``, ``gsm8k:3``) when the text is empty; typed text wins, as in the CLI.
- ``model`` may be ``strategy:policy`` (``beam_search:tiny-arith-s``) for clients that cannot send ``tts``.
- ``temperature`` and ``seed`` are the run's; ``n`` must be 1 (one chosen answer); the other sampling fields
  (``max_tokens``, ``top_p``, ``stop``, ...) are ignored: the domain sets its step and token limits.
- The answer text is the chosen candidate's full solution; ``usage`` counts the whole search (every prompt
  prefill and every generated token), and ``usage.tts`` adds the verifier tokens, the run id and its link.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from backends import catalog
from engine.limits import Limits
from engine.run import RunConfig
from strategies.registry import STRATEGIES

DEFAULTS = RunConfig()  # the CLI's defaults: beam search, budget 16, tiny-prm
TTS_FIELDS = ("strategy", "verifier", "budget", "params", "aggregation", "problem_id")


@dataclass
class ApiError(Exception):
    """A refused request: its HTTP status and OpenAI's error object."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass
class GatewayRequest:
    kind: str            # "chat" or "completion"
    model: str           # as the client named it, echoed back
    config: RunConfig
    stream: bool = False
    created: int = field(default_factory=lambda: int(time.time()))


def _check(ok: bool, message: str, param: str | None = None, code: str | None = None, status: int = 400) -> None:
    if not ok:
        raise ApiError(status, message, param=param, code=code)


def _chat_problem(body: dict) -> str:
    messages = body.get("messages")
    _check(isinstance(messages, list) and bool(messages), "messages must be a non-empty list", "messages")
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    _check(bool(users), "messages need a user message: its text is the problem", "messages")
    content = users[-1].get("content")
    if isinstance(content, list):  # content parts: the text ones, joined
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        _check(len(parts) == len(content) and all(isinstance(t, str) for t in parts),
               "only text content parts are supported", "messages")
        content = "\n".join(parts)
    _check(isinstance(content, str), "a user message's content must be text", "messages")
    return content


def _completion_problem(body: dict) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    _check(isinstance(prompt, str), "prompt must be one string (the problem)", "prompt")
    return prompt


def split_model(model: str) -> tuple[str | None, str]:
    """(strategy, policy) from ``strategy:policy``; (None, model) when the prefix names no strategy."""
    head, sep, rest = model.partition(":")
    return (head, rest) if sep and rest and head in STRATEGIES else (None, model)


def _policy_entry(policy: str) -> None:
    try:
        entry = catalog.resolve(policy, "policy")
    except ValueError as exc:  # ModelLoadError: unknown id, or a verifier named as a policy
        raise ApiError(404, str(exc), param="model", code="model_not_found") from None
    _check(entry.domain == "reasoning", f"model {policy!r} is a {entry.domain} model; the gateway serves text "
           "answers (reasoning policies, see GET /v1/models)", "model", "model_not_found", status=404)
    ok, reason = entry.availability()
    _check(ok, f"model {policy!r} is not available here: {reason}", "model", "model_not_found", status=404)


def _given(body: dict, name: str, default: Any) -> Any:
    """An OpenAI field's value, or ``default`` when it is absent or null (clients send null for "not set")."""
    value = body.get(name)
    return default if value is None else value


def _whole(value: Any, name: str) -> int:
    _check(isinstance(value, int) and not isinstance(value, bool), f"{name} must be a whole number, got {value!r}",
           name)
    return value


def parse_request(body: Any, kind: str, limits: Limits) -> GatewayRequest:
    """The run a chat (``kind="chat"``) or completion request asks for; ApiError on anything refused."""
    _check(isinstance(body, dict), "the request body must be a JSON object")
    model = body.get("model")
    _check(isinstance(model, str) and bool(model.strip()), "model must name a policy (see GET /v1/models)", "model")
    tts = body.get("tts", {})
    _check(isinstance(tts, dict), "tts must be an object: {strategy, verifier, budget, params}", "tts")
    unknown = sorted(set(tts) - set(TTS_FIELDS))
    _check(not unknown, f"unknown tts field(s) {', '.join(unknown)}; known: {', '.join(TTS_FIELDS)}",
           f"tts.{unknown[0]}" if unknown else None)
    named, policy = split_model(model.strip())
    strategy = tts.get("strategy", named or DEFAULTS.strategy)
    _check(named is None or strategy == named, f"the model names strategy {named!r} and tts.strategy "
           f"{strategy!r}: give it once", "tts.strategy")
    reasoning = [n for n, s in STRATEGIES.items() if DEFAULTS.domain in s.domains]
    _check(isinstance(strategy, str) and strategy in reasoning,
           f"unknown strategy {strategy!r}; choose one of {', '.join(reasoning)}", "tts.strategy", "unknown_strategy")
    budget = _whole(tts.get("budget", DEFAULTS.budget), "tts.budget")
    _check(1 <= budget <= limits.max_budget, f"tts.budget must be from 1 to {limits.max_budget} here, got {budget}",
           "tts.budget", "budget_over_cap" if budget > limits.max_budget else None)
    params = tts.get("params", {})
    _check(isinstance(params, dict) and all(isinstance(v, (str, int, float, bool)) for v in params.values()),
           "tts.params must be an object of name: value", "tts.params")
    verifier = tts.get("verifier", DEFAULTS.verifier)
    _check(verifier is None or isinstance(verifier, str), "tts.verifier must be a verifier id", "tts.verifier")
    for name in ("aggregation", "problem_id"):
        _check(not isinstance(tts.get(name), (dict, list, int, float)), f"tts.{name} must be a string", f"tts.{name}")
    _check(_given(body, "n", 1) == 1, "n must be 1: a run answers with the one candidate it chose", "n")
    temperature = _given(body, "temperature", DEFAULTS.temperature)
    _check(isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and 0 <= temperature <= 2,
           "temperature must be a number from 0 to 2", "temperature")
    seed = _whole(_given(body, "seed", DEFAULTS.seed), "seed")
    stream = _given(body, "stream", False)
    _check(isinstance(stream, bool), "stream must be true or false", "stream")
    problem = _chat_problem(body) if kind == "chat" else _completion_problem(body)
    _policy_entry(policy)
    config = RunConfig(model=policy, verifier=verifier or None, strategy=strategy, budget=budget,
                       params=dict(params), problem_text=problem if problem.strip() else None,
                       problem_id=tts.get("problem_id"), seed=seed, temperature=float(temperature),
                       aggregation=tts.get("aggregation", DEFAULTS.aggregation))
    return GatewayRequest(kind, model, config, stream)


def _usage(end: dict, run_url: str) -> dict:
    c = end["compute"]
    prompt, generated = int(c.get("prompt_tokens", 0)), int(c.get("generated_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated,
            "tts": {"verifier_tokens": int(c.get("verifier_tokens", 0)), "model_calls": int(c.get("model_calls", 0)),
                    "verifier_calls": int(c.get("verifier_calls", 0)), "run_id": end["run_id"], "run_url": run_url,
                    "answer": end["answer"], "score": end["score"], "correct": end["correct"]}}


def answer_text(end: dict) -> str:
    """The chosen candidate's full text (the domain's ``chosen_text``); empty when the run chose none."""
    return (end.get("extras") or {}).get("chosen_text", "")


def _finish_reason(end: dict) -> str:
    return "stop" if end["answer"] is not None else "length"  # no answer: the search ran out of steps


def response_body(req: GatewayRequest, end: dict, run_url: str) -> dict:
    """The whole (non-streamed) response to a request whose run ended with ``end`` (its RunEnded)."""
    text, reason = answer_text(end), _finish_reason(end)
    if req.kind == "chat":
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason,
                  "logprobs": None}
        return {"id": f"chatcmpl-{end['run_id']}", "object": "chat.completion", "created": req.created,
                "model": req.model, "choices": [choice], "usage": _usage(end, run_url)}
    choice = {"index": 0, "text": text, "finish_reason": reason, "logprobs": None}
    return {"id": f"cmpl-{end['run_id']}", "object": "text_completion", "created": req.created,
            "model": req.model, "choices": [choice], "usage": _usage(end, run_url)}


def chunk(req: GatewayRequest, run_id: str, text: str | None = None, finish_reason: str | None = None,
          **extra: Any) -> dict:
    """One streamed chunk: ``text`` as the delta (None: an empty delta, as progress chunks carry), plus extension
    fields (``tts`` progress, the final ``usage``)."""
    if req.kind == "chat":
        delta = {} if text is None else {"content": text}
        if text == "":
            delta = {"role": "assistant", "content": ""}  # the first chunk names the role, as OpenAI's does
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        obj, prefix = "chat.completion.chunk", "chatcmpl"
    else:
        choice = {"index": 0, "text": text or "", "finish_reason": finish_reason, "logprobs": None}
        obj, prefix = "text_completion", "cmpl"
    return {"id": f"{prefix}-{run_id}", "object": obj, "created": req.created, "model": req.model,
            "choices": [choice], **extra}


def stream_chunks(req: GatewayRequest, run_id: str, event: dict, run_url: str) -> list[dict]:
    """The chunks one engine event becomes: the role and run id at the start, progress at each step, the chosen
    answer and the usage at the end; nothing for the other events."""
    kind = event["type"]
    if kind == "RunStarted":
        return [chunk(req, run_id, "", tts={"event": "started", "run_id": run_id, "run_url": run_url})]
    if kind == "StepDone":
        t = event["totals"]
        return [chunk(req, run_id, tts={"event": "step", "step": event["step"],
                                        "generated_tokens": t.get("generated_tokens", 0),
                                        "verifier_tokens": t.get("verifier_tokens", 0)})]
    if kind == "RunEnded":
        return [chunk(req, run_id, answer_text(event)),
                chunk(req, run_id, None, _finish_reason(event), usage=_usage(event, run_url))]
    return []


def models_body() -> dict:
    """GET /v1/models: every reasoning policy available here (any of them also as ``strategy:policy``)."""
    rows = [e for e in catalog.models("reasoning") if e.kind == "policy" and e.availability()[0]]
    return {"object": "list", "data": [{"id": e.id, "object": "model", "created": 0, "owned_by": "tts-explorer"}
                                       for e in rows]}
