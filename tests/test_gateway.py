"""The OpenAI-compatible gateway with the official ``openai`` client against the real server (``gateway.server.serve``,
what ``python app.py`` runs) on 127.0.0.1, on the embedded models: answers, real token counts and the stored run,
streaming, the refusals with their status codes, the API-key rule, and the run link opening in the web app."""
from __future__ import annotations

import http.client
import json
import shutil
import socket
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import serving

openai = pytest.importorskip("openai", reason="the openai client is a test dependency (requirements-dev.txt)")

PROBLEM = "Start with 37. Add 48. Multiply by 6."
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("gw"), api_key="", warm_up=False) as (url, store):
        yield url, store


def client(url: str, key: str = "unused") -> "openai.OpenAI":
    return openai.OpenAI(base_url=url + "v1", api_key=key, max_retries=0, timeout=300)


def post(url: str, path: str, data: bytes, headers: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url + path, data=data, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_key_rule_reads_the_bind_address():
    from gateway.server import is_loopback
    assert [is_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost")] == [True] * 5
    assert [is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "example.org")] == [False] * 5


def test_requests_are_read_into_run_configs():
    from engine.limits import Limits
    from gateway.protocol import ApiError, parse_request
    limits = Limits(max_budget=16)
    base = {"model": "beam_search:tiny-arith-s", "messages": [{"role": "system", "content": "be brief"},
                                                                 {"role": "user", "content": [{"type": "text", "text": PROBLEM}]}]}
    req = parse_request({**base, "temperature": 0.5, "seed": 3, "tts": {"budget": 8, "params": {"beam_width": 2}}},
                        "chat", limits)
    c = req.config
    assert (c.model, c.strategy, c.budget, c.params, c.problem_text, c.seed, c.temperature) == \
        ("tiny-arith-s", "beam_search", 8, {"beam_width": 2}, PROBLEM, 3, 0.5)
    by_id = parse_request({"model": "tiny-arith-s", "prompt": "", "seed": None, "temperature": None,
                           "tts": {"problem_id": "test:4"}}, "completion", limits).config
    assert (by_id.problem_id, by_id.problem_text, by_id.seed, by_id.temperature) == ("test:4", None, 0, 0.8)
    for body, param in [({**base, "tts": {"strategy": "mcts"}}, "tts.strategy"),       # two strategies named
                        ({**base, "tts": {"beam": 4}}, "tts.beam"),                     # unknown field
                        ({**base, "n": 2}, "n"),
                        ({**base, "tts": {"budget": "8"}}, "tts.budget"),
                        ({**base, "messages": [{"role": "assistant", "content": "hi"}]}, "messages")]:
        with pytest.raises(ApiError) as err:
            parse_request(body, "chat", limits)
        assert (err.value.status, err.value.param) == (400, param)
    with pytest.raises(ApiError) as err:
        parse_request({**base, "model": "tiny-digits"}, "chat", limits)  # an image model gives no text answer
    assert (err.value.status, err.value.code) == (404, "model_not_found")


def test_chat_beam_search_answers_with_real_counts_and_a_stored_run(gateway):
    url, store = gateway
    r = client(url).chat.completions.create(
        model="tiny-arith-s", messages=[{"role": "user", "content": PROBLEM}],
        extra_body={"tts": {"strategy": "beam_search", "verifier": "tiny-prm", "budget": 4,
                            "params": {"beam_width": 2}}})
    ext = r.usage.model_extra["tts"]
    run = store.get_run(ext["run_id"])
    assert run["status"] == "finished" and run["strategy"] == "beam_search" and run["budget"] == 4
    assert run["model"] == "tiny-arith-s" and run["problem_text"] == PROBLEM
    # the answer is the chosen candidate's full text, ending in the answer the run stored
    text = r.choices[0].message.content
    assert text == run["result"]["chosen_text"] and text.endswith(f"The answer is {run['answer']}")
    assert text.count("\n") == 2  # one line per operation, then the answer
    t = run["totals"]
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, ext["verifier_tokens"]) == \
        (t["prompt_tokens"], t["generated_tokens"], t["verifier_tokens"])
    assert min(t["prompt_tokens"], t["generated_tokens"], t["verifier_tokens"]) > 0
    assert r.usage.total_tokens == t["prompt_tokens"] + t["generated_tokens"]
    assert ext["run_url"] == f"{url}?run={run['id']}" and r.id == f"chatcmpl-{run['id']}"
    assert r.choices[0].finish_reason == "stop" and r.model == "tiny-arith-s"


def test_completions_take_the_strategy_from_the_model_name(gateway):
    url, store = gateway
    r = client(url).completions.create(model="best_of_n:tiny-arith-s", prompt=PROBLEM, seed=1,
                                       extra_body={"tts": {"budget": 4}})
    run = store.get_run(r.usage.model_extra["tts"]["run_id"])
    assert (run["strategy"], run["budget"], run["seed"]) == ("best_of_n", 4, 1)
    assert r.choices[0].text == run["result"]["chosen_text"] and r.object == "text_completion"
    assert len(run["result"]["candidates"]) == 4


def test_streaming_sends_progress_then_the_chosen_answer_and_the_usage(gateway):
    url, store = gateway
    chunks = list(client(url).chat.completions.create(
        model="tiny-arith-s", messages=[{"role": "user", "content": PROBLEM}], stream=True,
        extra_body={"tts": {"strategy": "beam_search", "budget": 4, "params": {"beam_width": 2}}}))
    rid = chunks[0].model_extra["tts"]["run_id"]
    assert chunks[0].choices[0].delta.role == "assistant"
    steps = [c for c in chunks if (c.model_extra.get("tts") or {}).get("event") == "step"]
    stored_steps = [e for e in store.events(rid) if e["type"] == "StepDone"]
    assert len(steps) == len(stored_steps) >= 2
    assert [c.model_extra["tts"]["step"] for c in steps] == [e["step"] for e in stored_steps]
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    run = store.get_run(rid)
    assert content == run["result"]["chosen_text"] and run["status"] == "finished"
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.usage.completion_tokens == run["totals"]["generated_tokens"] > 0


def test_a_raw_stream_is_server_sent_events_ending_in_done(gateway):
    url, _ = gateway
    body = json.dumps({"model": "greedy:tiny-arith-s", "prompt": PROBLEM, "stream": True}).encode()
    req = urllib.request.Request(url + "v1/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        lines = [ln for ln in r.read().decode().split("\n\n") if ln]
    assert lines[-1] == "data: [DONE]" and all(ln.startswith("data: ") for ln in lines)
    chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert "The answer is" in "".join(c["choices"][0]["text"] for c in chunks)


def test_a_stream_the_client_closes_cancels_its_run(gateway):
    url, store = gateway
    host, port = url[len("http://"):].rstrip("/").split(":")
    body = json.dumps({"model": "mcts:tiny-arith-s", "prompt": "", "stream": True,
                       "tts": {"budget": 64, "problem_id": "test:4"}})  # difficulty 5: seconds of search
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    first = json.loads(resp.readline().decode()[len("data: "):])
    rid = first["tts"]["run_id"]
    conn.sock.shutdown(socket.SHUT_RDWR)  # the client goes away mid-search
    conn.close()
    deadline = time.monotonic() + 120
    while store.get_run(rid)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.get_run(rid)["status"] == "cancelled"


def test_refusals_are_openai_errors_with_4xx_codes_and_store_nothing(gateway):
    url, store = gateway
    before = len(store.list_runs())
    c = client(url)
    with pytest.raises(openai.NotFoundError) as err:
        c.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": PROBLEM}])
    assert err.value.status_code == 404 and err.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        c.chat.completions.create(model="tiny-arith-s", messages=[{"role": "user", "content": PROBLEM}],
                                  extra_body={"tts": {"budget": 65}})  # the cap here is 64
    assert err.value.status_code == 400
    assert (err.value.body["param"], err.value.body["code"]) == ("tts.budget", "budget_over_cap")
    with pytest.raises(openai.BadRequestError) as err:
        c.completions.create(model="tiny-arith-s", prompt=PROBLEM, extra_body={"tts": {"strategy": "astar"}})
    assert (err.value.body["param"], err.value.body["code"]) == ("tts.strategy", "unknown_strategy")
    with pytest.raises(openai.BadRequestError) as err:  # the engine's own refusal: a problem it cannot read
        c.completions.create(model="tiny-arith-s", prompt="What is the capital of France?")
    assert "problem" in err.value.body["message"].lower() or "start with" in err.value.body["message"].lower()
    status, body = post(url, "v1/chat/completions", b"{not json")
    assert status == 400 and set(body["error"]) == {"message", "type", "param", "code"}
    status, body = post(url, "v1/embeddings", b"{}")
    assert status == 404 and "no such endpoint" in body["error"]["message"]
    assert len(store.list_runs()) == before


def test_a_run_that_fails_is_a_500_with_one_line_and_stays_stored(gateway):
    from tests.conftest import free_port
    url, store = gateway
    dead = f"openai:nobody@http://127.0.0.1:{free_port()}/v1"  # nothing listens there: the run fails after retries
    with pytest.raises(openai.InternalServerError) as err:
        client(url).completions.create(model=f"greedy:{dead}", prompt=PROBLEM)
    body = err.value.body
    assert err.value.status_code == 500 and body["code"] == "run_failed" and "Traceback" not in body["message"]
    rid = body["message"].split()[1]
    assert store.get_run(rid)["status"] == "failed" and "EndpointError" in store.get_run(rid)["error"]


def test_models_lists_the_embedded_policies(gateway):
    url, _ = gateway
    ids = [m.id for m in client(url).models.list().data]
    assert "tiny-arith-s" in ids and "tiny-prm" not in ids  # a verifier is not a policy


def test_a_key_set_on_the_server_is_required(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("gw-key"), api_key="s3cret", warm_up=False) as (url, _):
        with pytest.raises(openai.AuthenticationError) as err:
            client(url, "wrong").models.list()
        assert err.value.status_code == 401 and err.value.body["code"] == "invalid_api_key"
        # the client refuses to send no key at all, so the missing key goes without it
        status, body = post(url, "v1/completions", b"{}")
        assert status == 401 and "missing API key" in body["error"]["message"]
        assert "tiny-arith-s" in [m.id for m in client(url, "s3cret").models.list().data]


def test_a_server_beyond_loopback_without_a_key_refuses_every_request(tmp_path_factory):
    # bound to 127.0.0.1 for the test, but configured as the rule sees a server on 0.0.0.0
    with serving(tmp_path_factory.mktemp("gw-open"), api_key="", exposed=True, warm_up=False) as (url, _):
        with pytest.raises(openai.AuthenticationError) as err:
            client(url, "anything").chat.completions.create(
                model="tiny-arith-s", messages=[{"role": "user", "content": PROBLEM}])
        assert err.value.body["code"] == "api_key_required" and "TTS_API_KEY" in err.value.body["message"]
        with urllib.request.urlopen(url, timeout=60) as r:  # the web app itself still serves
            assert r.status == 200


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is missing (apt-get install chromium)")
def test_the_run_link_opens_the_run_in_the_runs_tab(gateway):
    from playwright.sync_api import sync_playwright

    from tests.test_browser import CHROMIUM_ARGS, wait_status

    url, store = gateway
    r = client(url).completions.create(model="greedy:tiny-arith-s", prompt=PROBLEM)
    link, rid = r.usage.model_extra["tts"]["run_url"], r.usage.model_extra["tts"]["run_id"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(90_000)
        page.goto(link)
        assert "finished" in wait_status(page, "runs", rf"run {rid}.*finished")
        assert page.get_by_role("tab", name="Runs").get_attribute("aria-selected") == "true"
        browser.close()
