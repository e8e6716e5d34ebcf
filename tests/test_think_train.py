"""tiny-think's traces and tokenizer (backends/embedded/think_train.py), and the committed model's size."""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from backends.embedded import arith
from backends.embedded import think_train as T

MODELS = Path(__file__).resolve().parents[1] / "backends" / "embedded" / "models"
_LINE = re.compile(r"^(?:Wait, )?(\d+) ([-+*]) (\d+) = (\d+)$")


@pytest.fixture(scope="module")
def tok():
    return T.build_think_tokenizer()


def _text(segs):
    return "".join(t for t, _ in segs)


def _cut(segs) -> bool:
    return any(t.endswith("</think>") and not keep for t, keep in segs)


def test_trace_is_think_scratchpad_then_the_solution():
    rng = random.Random(0)
    for seed in range(200):
        p = arith.generate(seed, seed % 5 + 1)
        segs = T.trace_segments(p, rng)
        text = _text(segs)
        assert text.startswith("<think>\n")
        thought, answer = text[len("<think>\n"):].split("</think>\n")
        assert answer == p.solution and arith.extract_answer(answer) == str(p.answer)
        lines = [x for x in thought.split("\n") if x]
        for line in lines[:-1] if _cut(segs) else lines:  # a cut thought may end mid-line
            assert _LINE.match(line), line


def test_every_line_that_carries_loss_is_right_and_slips_are_fixed():
    rng = random.Random(1)
    slips = 0
    for seed in range(300):
        p = arith.generate(seed, 5)
        segs = T.trace_segments(p, rng)
        if _cut(segs):
            continue
        for (text, keep), nxt in zip(segs, segs[1:] + [("", True)]):
            m = _LINE.match(text.strip())
            if m and keep:
                a, op, b, c = m.groups()
                assert eval(f"{a} {op} {b}") == int(c)
            if not keep and text.strip().isdigit():  # a slip's value carries no loss; the re-check fixes it
                slips += 1
                assert nxt[0].startswith("Wait, ") and nxt[1]
    assert slips > 50


def test_sample_lengths_vary_between_samples_of_one_problem_and_long_hand_multiplies():
    p = arith.Problem(start=37, ops=(("*", 26), ("-", 125)))
    rng = random.Random(2)
    texts = [_text(T.trace_segments(p, rng)) for _ in range(40)]
    assert len({len(t) for t in texts}) > 5
    assert "37 * 6 = 222\n37 * 20 = 740\n222 + 740 = 962\n" in max(texts, key=len)


def test_forced_end_and_forced_wait_carry_no_loss():
    rng = random.Random(3)
    forced_close = forced_wait = 0
    for seed in range(400):
        for text, keep in T.trace_segments(arith.generate(seed, 4), rng):
            if text.endswith("</think>") and not keep:
                forced_close += 1
            if text == "Wait, " and not keep:
                forced_wait += 1
    assert forced_close > 50 and forced_wait > 10


def test_tokenizer_keeps_delimiters_whole_and_round_trips(tok):
    text = "Start with 37. Multiply by 26.\n<think>\n37 * 6 = 222\nWait, 37 * 6 = 222\n</think>\nThe answer is 962"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    pieces = tok.convert_ids_to_tokens(ids)
    assert "<think>" in pieces and "</think>" in pieces and tok.unk_token not in pieces


def test_committed_model_is_no_larger_than_tiny_arith_l(tok):
    import json

    cfg = {n: json.loads((MODELS / n / "config.json").read_text()) for n in ("tiny-think", "tiny-arith-l")}

    def params(c):
        h, i, n, v = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
        return n * (4 * h * h + 3 * h * i + 2 * h) + v * h + h

    assert cfg["tiny-think"]["vocab_size"] == len(tok)
    assert params(cfg["tiny-think"]) <= params(cfg["tiny-arith-l"]) == 1_918_080
