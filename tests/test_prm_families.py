"""Each PRM family reads its scores at exactly the positions its model card uses, one per step.

Tiny random models of each architecture (Qwen2, Mistral, Llama; hidden 32, 2 layers) are saved in Hugging
Face format with tokenizers holding the family's special tokens and chat template, then loaded through the
same loaders a hub id takes; every score is compared with a manual forward pass.
"""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from backends.text import prm_families as pf
from backends.text.prm_base import split_steps

QUESTION = "What is 2 + 3?"
STEPS = ["2 + 3 = 5", "So the answer is \\boxed{5}."]

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
          "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
          "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


def char_tokenizer(special=(), added=(), chat_template=None, bos=None):
    """A byte-level tokenizer with one token per byte (no merges) plus the family's tokens.

    Byte-level like the real Qwen2 and Llama 3 tokenizers, so transformers 5 loads it unchanged even where it
    swaps in the model type's own tokenizer class (it does for qwen2).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1}
    for c in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(c, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    out = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    if special:
        out.add_special_tokens({"additional_special_tokens": list(special)})
    if bos:
        out.add_special_tokens({"bos_token": bos})
    if added:
        out.add_tokens(list(added))
    if chat_template:
        out.chat_template = chat_template
    return out


def small(cls, vocab, **kw):
    return cls(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=512, pad_token_id=0, eos_token_id=1, **kw)


def save_with_extra(model_state: dict, extra: dict, config, path):
    config.save_pretrained(path)
    state = {k: v.contiguous() for k, v in {**model_state, **extra}.items()}
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})


# --------------------------------------------------------------------------------------------------- Qwen
@pytest.fixture(scope="module")
def qwen_prm(tmp_path_factory):
    from transformers import Qwen2Config, Qwen2Model
    path = tmp_path_factory.mktemp("qwen-prm")
    tok = char_tokenizer(special=["<|im_start|>", "<|im_end|>", "<extra_0>"], chat_template=CHATML)
    torch.manual_seed(2)
    cfg = small(Qwen2Config, len(tok), num_labels=2)
    cfg.architectures = ["Qwen2ForProcessRewardModel"]
    cfg.auto_map = {"AutoModel": "modeling_qwen2_rm.Qwen2ForProcessRewardModel"}  # remote code, as on the hub
    backbone = Qwen2Model(cfg)
    head = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    save_with_extra({f"model.{k}": v for k, v in backbone.state_dict().items()},
                    {f"score.{k}": v for k, v in head.state_dict().items()}, cfg, path)
    tok.save_pretrained(path)
    return path, backbone.eval(), head.eval(), tok


def test_qwen_prm_reads_class_1_at_each_extra_0(qwen_prm):
    path, backbone, head, tok = qwen_prm
    prm = pf.load("qwen-prm", str(path), device="cpu")
    (scores,), cost = prm.score_steps(None, QUESTION, [STEPS])
    assert len(scores) == 2
    text = (f"<|im_start|>system\n{pf.QWEN_PRM_SYSTEM}<|im_end|>\n<|im_start|>user\n{QUESTION}<|im_end|>\n"
            f"<|im_start|>assistant\n{STEPS[0]}<extra_0>{STEPS[1]}<extra_0><|im_end|>\n")
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    sep = tok.convert_tokens_to_ids("<extra_0>")
    with torch.no_grad():
        probs = torch.softmax(head(backbone(input_ids=ids).last_hidden_state), -1)[0, :, 1]
    positions = (ids[0] == sep).nonzero().flatten().tolist()
    assert len(positions) == 2
    assert scores == pytest.approx([float(probs[p]) for p in positions], abs=1e-5)
    assert cost.verifier_tokens == ids.shape[1] and cost.verifier_calls == 1 and cost.flops > 0


def test_qwen_prm_batches_and_caches_prefixes(qwen_prm):
    path, *_ = qwen_prm
    prm = pf.load("qwen-prm", str(path), device="cpu")
    (alone,), _ = prm.score_steps(None, QUESTION, [STEPS[:1]])
    run_cache: dict = {}
    both, c1 = prm.score_steps(None, QUESTION, [STEPS, ["7 * 7 = 49"]], cache=run_cache)
    assert c1.verifier_calls == 1  # one padded batch
    assert both[0][0] == pytest.approx(alone[0], abs=1e-5)  # causal: later steps do not change earlier scores
    again, c2 = prm.score_steps(None, QUESTION, [STEPS[:1], STEPS], cache=run_cache)
    assert c2.verifier_calls == 0 and c2.verifier_tokens == 0
    assert again[1] == both[0]
    # another run (its own cache) is charged again: a verifier keeps nothing between runs
    _, c3 = prm.score_steps(None, QUESTION, [STEPS[:1], STEPS], cache={})
    assert c3.verifier_calls == 1 and c3.verifier_tokens > 0


def test_trailing_delimiter_makes_no_empty_step(qwen_prm):
    path, *_ = qwen_prm
    prm = pf.load("qwen-prm", str(path), device="cpu")
    assert split_steps("a\n\nb\n\n", "\n\n") == ["a", "b"]
    assert split_steps("a\n\n\n\nb", "\n\n") == ["a", "b"]
    scores, _ = prm.score_text(None, QUESTION, STEPS[0] + "\n\n" + STEPS[1] + "\n\n")
    (ref,), _ = prm.score_steps(None, QUESTION, [STEPS])
    assert scores == ref


def test_qwen_prm_refuses_a_checkpoint_without_its_head(tmp_path, random_lm_path):
    with pytest.raises(ValueError, match="score"):
        pf.load("qwen-prm", str(random_lm_path), device="cpu")


# -------------------------------------------------------------------------------------------- Math-Shepherd
@pytest.fixture(scope="module")
def shepherd(tmp_path_factory):
    from transformers import MistralConfig, MistralForCausalLM
    path = tmp_path_factory.mktemp("math-shepherd")
    tok = char_tokenizer(added=["ки"])
    torch.manual_seed(3)
    model = MistralForCausalLM(small(MistralConfig, len(tok)))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path, model.eval(), tok


def test_math_shepherd_reads_p_plus_at_each_tag(shepherd):
    path, model, tok = shepherd
    prm = pf.load("math-shepherd", str(path), device="cpu")
    (scores,), cost = prm.score_steps(None, QUESTION, [STEPS])
    text = f"{QUESTION} {STEPS[0]} ки\n{STEPS[1]} ки"
    ids = torch.tensor([tok(text)["input_ids"]])
    tag = tok.convert_tokens_to_ids("ки")
    plus, minus = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0][:, [plus, minus]]
    p_plus = torch.softmax(logits, -1)[:, 0]
    positions = (ids[0] == tag).nonzero().flatten().tolist()
    assert len(positions) == 2 and len(scores) == 2
    assert scores == pytest.approx([float(p_plus[p]) for p in positions], abs=1e-5)
    assert cost.verifier_tokens == ids.shape[1]


def test_likelihood_is_the_cumulative_probability_of_the_steps(shepherd):
    """The generative family: score after step i = product of the token probabilities of steps 1..i and
    their delimiters, the question's tokens excluded; a batch of two shares the first prefix's score."""
    path, model, tok = shepherd
    prm = pf.load("likelihood", str(path), device="cpu")
    (scores, first_only), cost = prm.score_steps(None, QUESTION, [STEPS, STEPS[:1]])
    q = tok(QUESTION + "\n")["input_ids"]
    ids = q + tok(STEPS[0] + "\n", add_special_tokens=False)["input_ids"]
    ends = [len(ids) - 1]
    ids += tok(STEPS[1] + "\n", add_special_tokens=False)["input_ids"]
    ends.append(len(ids) - 1)
    with torch.no_grad():
        logp = model(input_ids=torch.tensor([ids])).logits[0].log_softmax(-1)
    token = [float(logp[t - 1, ids[t]]) for t in range(len(ids))]
    expected = [torch.tensor(sum(token[len(q):e + 1])).exp().item() for e in ends]
    assert scores == pytest.approx(expected, rel=1e-4)
    assert first_only == [scores[0]] and scores[1] < scores[0] <= 1.0
    assert cost.verifier_calls == 1 and cost.verifier_tokens == len(ids)


def test_math_shepherd_step_text_with_a_tag_does_not_add_a_step(shepherd):
    path, *_ = shepherd
    prm = pf.load("math-shepherd", str(path), device="cpu")
    (scores,), _ = prm.score_steps(None, QUESTION, [["a ки b", "c"]])
    assert len(scores) == 2


# ------------------------------------------------------------------------------------------------- RLHFlow
@pytest.fixture(scope="module")
def rlhflow(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM
    path = tmp_path_factory.mktemp("rlhflow")
    tok = char_tokenizer(special=["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
                         chat_template=LLAMA3, bos="<|begin_of_text|>")
    torch.manual_seed(4)
    model = LlamaForCausalLM(small(LlamaConfig, len(tok)))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path, model.eval(), tok


def test_rlhflow_reads_p_plus_before_each_assistant_turn(rlhflow):
    path, model, tok = rlhflow
    prm = pf.load("rlhflow", str(path), device="cpu")
    (scores,), _ = prm.score_steps(None, QUESTION, [STEPS])
    conv = [{"role": "user", "content": f"{QUESTION} {STEPS[0]}"}, {"role": "assistant", "content": "+"},
            {"role": "user", "content": STEPS[1]}, {"role": "assistant", "content": "+"}]
    text = tok.apply_chat_template(conv, tokenize=False)
    assert text.startswith("<|begin_of_text|><|start_header_id|>user")
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    plus, minus = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    header_end = tok.convert_tokens_to_ids("<|end_header_id|>")
    seq = ids[0].tolist()
    # each assistant "+" follows "<|end_header_id|>\n\n"; the reference reads the logits one position earlier
    plus_positions = [i for i in range(len(seq)) if seq[i] == plus and seq[i - 3] == header_end]
    assert len(plus_positions) == 2
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0][:, [plus, minus]]
    p_plus = torch.softmax(logits, -1)[:, 0]
    assert scores == pytest.approx([float(p_plus[i - 1]) for i in plus_positions], abs=1e-5)
    # the last step's score is the reference's "-3" position (before "+", "<|eot_id|>")
    assert scores[-1] == pytest.approx(float(p_plus[len(seq) - 3]), abs=1e-5)


def test_rlhflow_needs_a_chat_template(shepherd):
    path, *_ = shepherd
    with pytest.raises(ValueError, match="chat template"):
        pf.load("rlhflow", str(path), device="cpu")


# ------------------------------------------------------------------------------------------------- Skywork
@pytest.fixture(scope="module")
def skywork(tmp_path_factory):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    path = tmp_path_factory.mktemp("skywork-prm")
    tok = char_tokenizer(special=["<|im_start|>", "<|im_end|>"], bos="<|endoftext|>")
    torch.manual_seed(5)
    cfg = small(Qwen2Config, len(tok))
    cfg.architectures = ["Qwen2ForPrmModel"]
    lm = Qwen2ForCausalLM(cfg)
    v_head = nn.Linear(32, 1)
    save_with_extra(lm.state_dict(), {"v_head.summary.weight": v_head.weight.data,
                                      "v_head.summary.bias": v_head.bias.data}, cfg, path)
    tok.save_pretrained(path)
    return path, lm.eval(), v_head.eval(), tok


def test_skywork_value_head_at_each_newline(skywork):
    path, lm, v_head, tok = skywork
    prm = pf.load("skywork-prm", str(path), device="cpu")
    steps = ["2 + 3 = 5", "line one\nline two", "The answer is 5"]
    (scores,), _ = prm.score_steps(None, QUESTION, [steps])
    assert len(scores) == 3
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    nl = enc("\n")[-1]
    ids = enc("<|endoftext|>" + QUESTION + "\n")
    ends = []
    for piece in ["2 + 3 = 5", "line one", "line two", "The answer is 5"]:
        ids += enc(piece) + [nl]
        ends.append(len(ids) - 1)
    x = torch.tensor([ids])
    with torch.no_grad():
        hidden = lm(input_ids=x, output_hidden_states=True).hidden_states[-1]
        values = torch.sigmoid(v_head(hidden).squeeze(-1))[0]
    # the step holding two lines is scored at its last line's newline, as Skywork scores "\n"-split pieces
    assert scores == pytest.approx([float(values[ends[0]]), float(values[ends[2]]), float(values[ends[3]])], abs=1e-5)
    assert x[0, 0] == tok.convert_tokens_to_ids("<|endoftext|>")


def test_skywork_refuses_a_checkpoint_without_a_value_head(shepherd):
    path, *_ = shepherd
    with pytest.raises(ValueError, match="v_head"):
        pf.load("skywork-prm", str(path), device="cpu")


# ------------------------------------------------------------------------------------------------------ ORM
@pytest.fixture(scope="module")
def orm(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForSequenceClassification
    path = tmp_path_factory.mktemp("orm")
    tok = char_tokenizer(special=["<|im_start|>", "<|im_end|>"], chat_template=CHATML)
    torch.manual_seed(6)
    model = LlamaForSequenceClassification(small(LlamaConfig, len(tok), num_labels=1))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path, model.eval(), tok


def test_orm_scores_the_whole_answer_once(orm):
    path, model, tok = orm
    v = pf.load("orm", str(path), device="cpu")
    whole, cost = v.score_whole(None, QUESTION, [STEPS, STEPS[:1]])
    assert len(whole) == 2 and cost.verifier_calls == 1
    text = tok.apply_chat_template([{"role": "user", "content": QUESTION},
                                    {"role": "assistant", "content": "\n\n".join(STEPS)}], tokenize=False)
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        ref = torch.sigmoid(model(input_ids=ids).logits[0, 0])
    assert whole[0] == pytest.approx(float(ref), abs=1e-5)
    run_cache: dict = {}
    per_step, c2 = v.score_steps(None, QUESTION, [STEPS], cache=run_cache)
    assert per_step[0][-1] == pytest.approx(whole[0], abs=1e-5) and per_step[0][0] == pytest.approx(whole[1], abs=1e-5)
    _, c3 = v.score_steps(None, QUESTION, [STEPS], cache=run_cache)
    assert c2.verifier_calls > 0 and c3.verifier_calls == 0
    _, c4 = v.score_steps(None, QUESTION, [STEPS], cache={})  # another run pays in full
    assert (c4.verifier_calls, c4.verifier_tokens) == (c2.verifier_calls, c2.verifier_tokens)


def test_family_detection_from_config(qwen_prm, skywork, orm, shepherd):
    assert pf.detect_family(str(qwen_prm[0])) == "qwen-prm"
    assert pf.detect_family(str(skywork[0])) == "skywork-prm"
    assert pf.detect_family(str(orm[0])) == "orm"
    assert pf.detect_family(str(shepherd[0])) is None
    assert json.loads((qwen_prm[0] / "config.json").read_text())["auto_map"]  # remote code never ran


def test_score_whole_treats_the_answer_as_one_step(shepherd):
    path, *_ = shepherd
    prm = pf.load("math-shepherd", str(path), device="cpu")
    whole, _ = prm.score_whole(None, QUESTION, [STEPS])
    (one,), _ = prm.score_steps(None, QUESTION, [[" ".join(STEPS)]])
    assert whole[0] == pytest.approx(one[0], abs=1e-6)


def test_catalog_prefixes_name_every_family():
    """The catalog keeps its own list of prefixes so it can parse ids without importing torch; it must not drift."""
    from backends import catalog

    assert set(catalog.FAMILY_PREFIXES) == set(pf.FAMILIES)
