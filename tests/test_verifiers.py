"""The token-classification PRM reads one score per step at the step's delimiter, and caches prefixes."""
from __future__ import annotations

import pytest
import torch

from backends.embedded import arith
from backends.text.verifiers import ArithOracle, TokenClassificationPRM
from tests.conftest import build_char_tokenizer


@pytest.fixture(scope="module")
def prm(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForTokenClassification
    path = tmp_path_factory.mktemp("random-prm")
    tok = build_char_tokenizer()
    torch.manual_seed(1)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, num_labels=2, pad_token_id=0)
    LlamaForTokenClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return TokenClassificationPRM(str(path), name="random-prm", device="cpu")


def test_one_score_per_step_read_at_the_delimiter(prm):
    prompt = "Start with 5. Multiply by 3.\n"
    steps = ["5 * 3 = 15", "The answer is 15"]
    (scores,), cost = prm.score_steps(None, prompt, [steps])
    assert len(scores) == 2
    text = prompt + "5 * 3 = 15\nThe answer is 15\n"
    ids = prm.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        probs = torch.softmax(prm.model(input_ids=ids).logits[0].float(), -1)[:, 1]
    newline_positions = [i for i, t in enumerate(ids[0].tolist()) if prm.tokenizer.decode([t]) == "\n"]
    # the prompt's own newline is not a step; the two step delimiters are
    assert scores == pytest.approx([float(probs[newline_positions[1]]), float(probs[newline_positions[2]])], abs=1e-5)
    assert cost.verifier_tokens == ids.shape[1] and cost.verifier_calls == 1


def test_scores_of_a_prefix_do_not_depend_on_later_steps(prm):
    prompt = "Start with 2. Add 2.\n"
    (a,), _ = prm.score_steps(None, prompt, [["2 + 2 = 4", "The answer is 4"]])
    (b,), _ = prm.score_steps(None, prompt, [["2 + 2 = 4"]])
    assert a[0] == pytest.approx(b[0], abs=1e-5)


def test_a_run_scores_each_prefix_once_and_the_next_run_pays_again(prm):
    prompt = "Start with 9. Add 1.\n"
    run_cache: dict = {}
    _, c1 = prm.score_steps(None, prompt, [["9 + 1 = 10", "The answer is 10"]], cache=run_cache)
    _, c2 = prm.score_steps(None, prompt, [["9 + 1 = 10"], ["9 + 1 = 10", "The answer is 10"]], cache=run_cache)
    assert c1.verifier_calls == 1 and c1.verifier_tokens > 0
    assert c2.verifier_calls == 0 and c2.verifier_tokens == 0
    _, c3 = prm.score_steps(None, prompt, [["9 + 1 = 10", "The answer is 10"]], cache={})
    assert (c3.verifier_calls, c3.verifier_tokens) == (c1.verifier_calls, c1.verifier_tokens)


def test_oracle_labels_steps_exactly():
    p = arith.parse_problem("Start with 5. Multiply by 3.")
    scores, cost = ArithOracle().score_steps(p, "", [["5 * 3 = 15", "The answer is 15"], ["5 * 3 = 16", "x"]])
    assert scores == [[1.0, 1.0], [0.0, 0.0]] and cost.verifier_calls == 0
