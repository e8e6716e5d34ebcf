"""Fast checks of the committed embedded models (backends/embedded/models), loaded offline."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import random  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from backends.embedded import arith  # noqa: E402

MODELS = Path(__file__).resolve().parents[1] / "backends" / "embedded" / "models"
S, L, PRM = MODELS / "tiny-arith-s", MODELS / "tiny-arith-l", MODELS / "tiny-prm"

pytestmark = pytest.mark.skipif(not all(p.is_dir() for p in (S, L, PRM)), reason="embedded models not trained")


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(S))


@pytest.fixture(scope="module")
def policy_s():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(S)).eval()


@pytest.fixture(scope="module")
def prm():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(PRM)).eval()


def test_models_load_offline(policy_s, prm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    policy_l = AutoModelForCausalLM.from_pretrained(str(L))
    n_s = sum(p.numel() for p in policy_s.parameters())
    n_l = sum(p.numel() for p in policy_l.parameters())
    assert 4 <= n_l / n_s <= 8
    assert type(policy_s).__name__ == type(policy_l).__name__ == "LlamaForCausalLM"
    assert type(prm).__name__ == "LlamaForCausalLM"  # a generative PRM (the likelihood family)
    for model in (policy_s, policy_l, prm):
        assert next(model.parameters()).dtype == torch.float32
    for path in (S, L, PRM):
        t = AutoTokenizer.from_pretrained(str(path))
        assert t.eos_token == "<eos>" and t.pad_token is not None
    for model in (policy_s, policy_l):
        assert model.config.eos_token_id == model.generation_config.eos_token_id == t.eos_token_id
        assert model.config.pad_token_id == t.pad_token_id


def test_tokenizer_round_trip_and_digits(tok):
    for i in range(100):
        p = arith.problem_at("test", i)
        for text in (p.text, p.solution, p.text + "\n" + p.solution, p.text + "\n" + "\n".join(p.steps) + "\n"):
            ids = tok(text, add_special_tokens=False)["input_ids"]
            assert tok.unk_token_id not in ids
            assert tok.decode(ids) == text
    for d in "0123456789\n":
        assert len(tok(d, add_special_tokens=False)["input_ids"]) == 1
    ids = tok("12345 * 67 = 827115\n", add_special_tokens=False)["input_ids"]
    toks = tok.convert_ids_to_tokens(ids)
    assert toks[:5] == list("12345") and toks[-1] == "\n"
    assert tok.decode(tok("7", add_special_tokens=False)["input_ids"] + [tok.eos_token_id],
                      skip_special_tokens=True) == "7"


def test_small_policy_greedy_solution_is_well_formed(tok, policy_s):
    p = arith.problem_at("test", 0)
    assert p.difficulty == 1
    enc = tok(p.text + "\n", return_tensors="pt", add_special_tokens=False)
    out = policy_s.generate(**enc, do_sample=False, max_new_tokens=64)
    text = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    steps = arith.split_steps(text)
    assert "The answer is" in text
    assert steps[-1].startswith("The answer is ") and len(steps) == len(p.ops) + 1
    assert out[0, -1].item() == tok.eos_token_id


def test_prm_prefers_correct_steps():
    """Through the app's loader: one score per step in (0, 1], never rising, and a wrong result scores lower."""
    from backends.text.loaders import load_verifier

    prm = load_verifier("tiny-prm")
    rng = random.Random(0)
    pairs = []
    for i in range(20):
        p = arith.problem_at("test", i)
        steps = list(p.steps)
        j = rng.randrange(len(p.ops))
        a, _, result = steps[j].rpartition(" ")
        corrupted = steps[:j] + [f"{a} {int(result) + rng.choice([-10, -2, -1, 1, 2, 10])}"]
        assert arith.step_labels(p, corrupted)[j] == 0
        (good, bad), _ = prm.score_steps(p, p.text + "\n", [steps, corrupted])
        assert len(good) == len(steps) and len(bad) == len(corrupted)
        assert all(0 < x <= 1 for x in good + bad)
        assert all(x >= y for x, y in zip(good, good[1:]))
        pairs.append((good[j], bad[j]))
    assert sum(g > b for g, b in pairs) >= 18, pairs
