"""The OpenAI-compatible policy against a small scripted server on 127.0.0.1 (always runs, no extra installs).

The real-server tests (llama.cpp's server on a GGUF model) are in tests/test_openai_server.py.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backends.errors import InputError
from backends.text.openai_backend import EndpointError, OpenAIPolicy, resolve_endpoint
from strategies.core import CancelToken


class Scripted:
    """A /v1/completions endpoint: answers with a function of the request; can fail the first requests."""

    def __init__(self, reply, fail_first=0, fail_status=503):
        self.reply, self.fail_left, self.fail_status = reply, fail_first, fail_status
        self.bodies, self.headers, self.lock = [], [], threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.bodies.append(body)
                    outer.headers.append(dict(self.headers))
                    fail = outer.fail_left > 0
                    outer.fail_left -= 1
                if fail:
                    self.send_response(outer.fail_status)
                    self.end_headers()
                    self.wfile.write(b'{"error": "busy"}')
                    return
                if self.path != "/v1/completions":
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(outer.reply(body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def step_reply(body):
    """Continues 'Q' with 'step one\\n\\nstep two\\n\\n\\\\boxed{5}', honouring the stop string like a server."""
    full = "step one\n\nstep two\n\nso \\boxed{5}"
    done = body["prompt"].split("Q:", 1)[1]
    rest = full[len(done):] if full.startswith(done) else full
    text, reason = rest, "stop"
    for stop in body.get("stop") or []:
        if stop in text:
            text = text.split(stop, 1)[0]
    n = body.get("n", 1)
    return {"choices": [{"index": i, "text": text, "finish_reason": reason} for i in range(n)],
            "usage": {"prompt_tokens": len(body["prompt"]), "completion_tokens": len(text) * n}}


@pytest.fixture()
def server():
    s = Scripted(step_reply)
    yield s
    s.close()


def test_steps_stop_at_the_delimiter_and_count_server_usage(server):
    policy = OpenAIPolicy("m", base_url=server.url, api_key="sk-test", delimiter="\n\n")
    (group,) = policy.generate_steps(["Q:"], k=3, temperature=0.5, seed=7, max_new_tokens=20)
    assert [s.text for s in group] == ["step one"] * 3
    assert not any(s.finished for s in group)
    assert [s.generated_tokens for s in group] == [8, 8, 8]
    assert [s.cost.prompt_tokens for s in group] == [2, 0, 0]  # the shared prompt is charged once
    assert policy.server_prompt_tokens == 6 and policy.requests == 3
    assert sorted(b["seed"] for b in server.bodies) == [7, 8, 9]
    assert all(b["stop"] == ["\n\n"] and b["n"] == 1 and b["model"] == "m" and b["max_tokens"] == 20
               for b in server.bodies)
    assert all(h.get("Authorization") == "Bearer sk-test" for h in server.headers)


def test_partial_prefixes_are_continued_and_the_end_is_detected(server):
    policy = OpenAIPolicy("m", base_url=server.url)
    (g1, g2) = policy.generate_steps(["Q:step one\n\n", "Q:step one\n\nstep two\n\n"], k=1)
    assert g1[0].text == "step two" and not g1[0].finished
    assert g2[0].text == "so \\boxed{5}"
    (g3,) = policy.generate_steps(["Q:step one\n\nstep two\n\nso \\boxed{5}"], k=1)
    assert g3[0].text == "" and g3[0].finished  # an empty step: the model ended (EOS)
    (whole,) = policy.complete(["Q:"], max_new_tokens=64)
    assert whole.text == "step one\n\nstep two\n\nso \\boxed{5}" and whole.finished


def test_vllm_stop_reason_tells_eos_from_the_delimiter():
    def reply(body):
        return {"choices": [{"index": 0, "text": "last", "finish_reason": "stop", "stop_reason": None},
                            {"index": 1, "text": "more", "finish_reason": "stop", "stop_reason": "\n\n"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 3}}
    s = Scripted(reply)
    try:
        policy = OpenAIPolicy("m", base_url=s.url, use_n=True)
        (group,) = policy.generate_steps(["Q:"], k=2)
        assert [x.finished for x in group] == [True, False]
        assert [x.generated_tokens for x in group] == [2, 1]  # usage split evenly without logprobs
        assert s.bodies[0]["n"] == 2 and policy.requests == 1
    finally:
        s.close()


def test_a_server_that_ignores_n_gets_the_missing_samples_one_by_one():
    def one_choice(body):
        return step_reply({**body, "n": 1})
    s = Scripted(one_choice)
    try:
        policy = OpenAIPolicy("m", base_url=s.url, use_n=True)
        (group,) = policy.generate_steps(["Q:"], k=3, seed=5)
        assert [x.text for x in group] == ["step one"] * 3
        assert [b["n"] for b in s.bodies] == [3, 1, 1] and sorted(b["seed"] for b in s.bodies[1:]) == [6, 7]
    finally:
        s.close()


def test_retries_with_backoff_then_succeeds():
    s = Scripted(step_reply, fail_first=2)
    try:
        policy = OpenAIPolicy("m", base_url=s.url, retries=3, backoff_s=0.01)
        (group,) = policy.generate_steps(["Q:"], k=1)
        assert group[0].text == "step one" and len(s.bodies) == 3
    finally:
        s.close()


def test_client_errors_fail_at_once_and_dead_servers_after_the_retries():
    s = Scripted(step_reply, fail_first=5, fail_status=400)
    try:
        policy = OpenAIPolicy("m", base_url=s.url, retries=3, backoff_s=0.01)
        with pytest.raises(EndpointError, match="HTTP 400"):
            policy.generate_steps(["Q:"], k=1)
        assert len(s.bodies) == 1
    finally:
        s.close()
    dead = OpenAIPolicy("m", base_url=s.url, retries=1, backoff_s=0.01, timeout_s=2)
    with pytest.raises(EndpointError, match="after 2 attempts"):
        dead.generate_steps(["Q:"], k=1)


def test_cancel_stops_waiting():
    import time

    def slow(body):
        time.sleep(2)
        return step_reply(body)
    s = Scripted(slow)
    try:
        policy = OpenAIPolicy("m", base_url=s.url)
        token = CancelToken()
        token.cancel()
        from strategies.core import Cancelled
        with pytest.raises(Cancelled):
            policy.generate_steps(["Q:"], k=2, cancel=token)
    finally:
        s.close()


def test_endpoint_from_environment_and_catalog_ids(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("TTS_OPENAI_MODEL", "envmodel")
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    assert resolve_endpoint(None) == ("http://127.0.0.1:9/v1", "envmodel", "k")
    assert resolve_endpoint("m@http://10.0.0.1:8000/v1")[:2] == ("http://10.0.0.1:8000/v1", "m")
    from backends import catalog
    entry = catalog.resolve("openai:qwen", "policy")
    assert entry.backend == "openai" and entry.availability()[0]
    monkeypatch.delenv("OPENAI_BASE_URL")
    ok, reason = catalog.resolve("openai:qwen", "policy").availability()
    assert not ok and "OPENAI_BASE_URL" in reason
    with pytest.raises(InputError):
        OpenAIPolicy("m")
    with pytest.raises(catalog.ModelLoadError, match="not a verifier"):
        catalog.resolve("openai:qwen", "verifier")


def test_reasoning_space_and_engine_run_over_the_endpoint(server, monkeypatch, tmp_path):
    """Best-of-N through engine.run.execute on the scripted endpoint: answers, grading and server counts."""
    from backends.text import loaders as text_loaders
    from backends.text import reasoning
    from backends.text.math_grading import MathProblem
    from engine.run import RunConfig, execute
    from storage import RunStore

    problem = MathProblem(uid="x:0", text="Q:", answer="5")
    monkeypatch.setattr(reasoning, "resolve_problem", lambda *a: problem)
    monkeypatch.setattr(reasoning.math_grading, "math_prompt", lambda policy, p: "Q:")
    text_loaders._load_policy.cache_clear()
    store = RunStore(tmp_path / "runs.db")
    try:
        cfg = RunConfig(model=f"openai:m@{server.url}", verifier="oracle", strategy="best_of_n", budget=2,
                        problem_id="x:0")
        events = list(execute(cfg, store))
    finally:
        store.close()
        text_loaders._load_policy.cache_clear()
    end = events[-1]
    assert end["status"] == "finished", end["error"]
    assert end["answer"] == "5" and end["correct"] is True
    assert end["compute"]["generated_tokens"] > 0 and end["compute"]["model_calls"] >= 2
