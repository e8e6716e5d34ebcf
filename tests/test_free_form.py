"""A typed question for your own model: free-form (chat prompt, MATH-style answers, math-verify grading against
``--answer``, ungraded without it), on a local folder of an architecture no other test uses: a tiny random GPT-2
with its own byte-level BPE tokenizer and chat template. Its answers are nonsense; what is checked is that the
run finishes with real token counts and the right graded / ungraded status."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends.text import math_grading
from engine.limits import Limits
from engine.run import ConfigError, RunConfig, execute, prepare

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
CHAT = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@pytest.fixture(scope="module")
def gpt2_path(tmp_path_factory) -> Path:
    """A 2-layer random GPT-2 (learned positions, 256 of them) with a BPE tokenizer trained here."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("gpt2")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|user|>", "<|assistant|>",
                                                                  "<|system|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["What is 12 + 30? The answer is 42.", "\\boxed{42}", math_grading.MATH_SYSTEM] * 10,
                            trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(fast), n_positions=256, n_embd=32, n_layer=2, n_head=2,
                     bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def _cli(*args, db):
    return subprocess.run([sys.executable, "app.py", "run", *args, "--db", str(db)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)


def test_the_issue_command_finishes_graded_with_real_token_counts(gpt2_path, tmp_path):
    p = _cli("--model", str(gpt2_path), "--verifier", "oracle", "--strategy", "best_of_n", "--budget", "4",
             "--problem", "What is 12 + 30?", "--answer", "42", "--json", db=tmp_path / "r.db")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "finished"
    assert out["problem"]["text"] == "What is 12 + 30?" and out["problem"]["answer"] == "42"
    # the model's own chat template, with the MATH-500 system turn
    assert out["prompt"] == f"<|system|>{math_grading.MATH_SYSTEM}\n<|user|>What is 12 + 30?\n<|assistant|>"
    assert isinstance(out["correct"], bool)  # graded (None would be ungraded)
    c = out["compute"]
    assert c["prompt_tokens"] > 0 and c["generated_tokens"] >= 4 and c["model_calls"] > 0
    assert len(out["candidates"]) == 4


def test_grading_follows_the_expected_answer(gpt2_path):
    cfg = RunConfig(model=str(gpt2_path), verifier="oracle", strategy="best_of_n", budget=2,
                    problem_text="What is 12 + 30?", answer=" 42 ")
    run = prepare(cfg, Limits()).domain_run
    assert run.grade("42") is True and run.grade("42.0") is True and run.grade("41") is False
    task = run.space(cfg, None).task
    assert task.extract("So 12 + 30 = 42.\n\nThe answer is 42.") == "42"
    assert task.extract("\\boxed{\\frac{84}{2}} and the answer is 7") == "\\frac{84}{2}"
    assert task.is_final_step("The answer is 42.") and not task.is_final_step("12 + 30 = 42")
    assert task.split("Step one.\n\nThe answer is 42.\n\n") == ["Step one.", "The answer is 42."]


def test_without_an_answer_the_run_is_ungraded_and_the_verifier_still_ranks(gpt2_path, store, monkeypatch):
    from backends.text import reasoning
    # short rollouts: the likelihood PRM reads prompt + steps, which must fit the 256 positions
    monkeypatch.setattr(reasoning, "MATH_MAX_STEPS", 2)
    monkeypatch.setattr(reasoning, "MATH_MAX_STEP_TOKENS", 16)
    cfg = RunConfig(model=str(gpt2_path), verifier=f"likelihood:{gpt2_path}", strategy="best_of_n", budget=3,
                    problem_text="What is 12 + 30?", seed=1)
    events = list(execute(cfg, store, limits=Limits()))
    end = events[-1]
    assert end["status"] == "finished", end["error"]
    assert end["correct"] is None and end["score"] is not None
    assert all(c["score"] is not None for c in end["candidates"]) and len(end["candidates"]) == 3
    assert end["compute"]["verifier_tokens"] > 0 and end["compute"]["generated_tokens"] > 0
    run = store.get_run(events[0]["run_id"])
    assert run["correct"] is None and run["status"] == "finished"


@pytest.mark.parametrize("args, needle", [
    (["--verifier", "oracle"], "the oracle grades against the expected answer"),
])
def test_the_oracle_needs_the_expected_answer(gpt2_path, tmp_path, args, needle):
    p = _cli("--model", str(gpt2_path), "--strategy", "best_of_n", "--budget", "2", "--problem", "What is 1 + 1?",
             *args, db=tmp_path / "r.db")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], p.stderr


def test_the_arithmetic_grammar_is_for_the_embedded_policies_only(store):
    with pytest.raises(ConfigError, match="grammar is for the embedded policies only"):
        list(execute(RunConfig(problem_text="What is 12 + 30?", verifier="oracle"), store, limits=Limits()))
    with pytest.raises(ConfigError, match="expected answer goes only with a typed question to your own model"):
        list(execute(RunConfig(problem_text="Start with 2. Add 3.", answer="5", verifier="oracle"), store,
                     limits=Limits()))
    assert store.list_runs() == []


def test_the_context_limit_ends_a_long_rollout_instead_of_failing(gpt2_path):
    from backends.text.transformers_lm import CausalLMPolicy
    policy = CausalLMPolicy(str(gpt2_path), delimiter="\n\n")
    prompt = policy.format_prompt("What is 12 + 30?")
    [[sample]] = policy.generate_steps([prompt], 1, temperature=1.0, seed=0, max_new_tokens=5000,
                                       stop_at_delimiter=False)
    assert sample.prompt_tokens + sample.generated_tokens <= 256
    with pytest.raises(ValueError, match="fills the model's context"):
        policy.generate_steps(["12 + 30 " * 200], 1, max_new_tokens=4)
    from backends.text import prm_families
    prm = prm_families.load("likelihood", str(gpt2_path), name="gpt2-prm")
    scores, _ = prm.score_steps(None, "What is 12 + 30?", [["12 + 30 = 42"]])
    assert len(scores[0]) == 1
    with pytest.raises(ValueError, match="gpt2-prm cannot score a solution of .* its position table has 256"):
        prm.score_steps(None, "What is 12 + 30?", [["12 + 30 = 42 " * 60]])


def test_explore_passes_the_expected_answer_of_a_typed_question():
    from engine.limits import Limits
    from ui.common import AppContext
    from ui.explore import make_config
    from ui.registry import param_fields

    fields = param_fields()
    ctx = AppContext(store=None, limits=Limits(max_budget=64))
    cfg = make_config(ctx, fields, "reasoning", "some/model", "oracle", "best_of_n", 4, 2, " What is 12 + 30? ", 0,
                      "last", 0.8, [None] * len(fields), answer_v=" 42 ")
    assert cfg.problem_text == "What is 12 + 30?" and cfg.answer == "42" and cfg.difficulty is None
    cfg = make_config(ctx, fields, "reasoning", "tiny-arith-s", "oracle", "best_of_n", 4, 2, "", 0, "last", 0.8,
                      [None] * len(fields), answer_v="")
    assert cfg.answer is None
