"""Model-free speculative sampling (backends/text/drafting.py): the sampled distribution is the plain sampler's
(a two-sample chi-square test that a biased acceptance fails), greedy decoding is unchanged, and drafting on the
embedded models saves forward passes and keeps DeepConf's log-probabilities, the stop rule and KV reuse."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chi2_contingency

from backends.text import drafting
from backends.text.transformers_lm import CausalLMPolicy
from engine.run import RunConfig, run_events
from tests.conftest import build_char_tokenizer, embedded_models_ready

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ready, why = embedded_models_ready()
needs_embedded = pytest.mark.skipif(not ready, reason=why)


@pytest.fixture(scope="module")
def peaked_policy(tmp_path_factory):
    """A random 2-layer Llama whose weights (std 0.3) give distributions far from uniform and from one-hot, so
    drafts are sometimes accepted and sometimes not."""
    from transformers import LlamaConfig, LlamaForCausalLM
    path = tmp_path_factory.mktemp("peaked-lm")
    tok = build_char_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=0, eos_token_id=1, bos_token_id=1, initializer_range=0.3)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return CausalLMPolicy(str(path), device="cpu")


N = 3000


def samples(policy, drafter, seed):
    groups = policy.generate_steps(["abcabc"], N, temperature=1.0, seed=seed, max_new_tokens=4,
                                   stop_at_delimiter=False, drafter=drafter)
    cost = groups[0][0].cost
    return [policy.tokenizer(s.text, add_special_tokens=False)["input_ids"] + [1] * 4 for s in groups[0]], cost


def p_values(a, b):
    """Two-sample chi-square p-value of the token at positions 2, 3 and 4 (the first token is never drafted);
    categories under 10 samples pooled."""
    out = []
    for pos in (1, 2, 3):
        va, vb = [x[pos] for x in a], [x[pos] for x in b]
        cats = sorted(set(va) | set(vb))
        table = np.array([[va.count(c) for c in cats], [vb.count(c) for c in cats]])
        small = table.sum(0) < 10
        if small.any():
            table = np.concatenate([table[:, ~small], table[:, small].sum(1, keepdims=True)], 1)
        out.append(chi2_contingency(table)[1])
    return out


def test_drafting_leaves_the_sampled_distribution_unchanged_and_a_biased_acceptance_fails(peaked_policy,
                                                                                          monkeypatch):
    """3,000 samples of 4 tokens with drafting off and on (other seeds: the draws differ, the law must not): the
    token frequencies at each drafted position agree (every p-value above 0.001). The same test rejects a
    sampler that accepts a draft with probability 1.2 p(x) instead of p(x) (p-values below 1e-4), and one that
    accepts every draft: so it can fail, and would for an acceptance as little as 20% too eager."""
    plain, _ = samples(peaked_policy, None, seed=1)
    drafted, cost = samples(peaked_policy, peaked_policy.new_drafter(), seed=2)
    assert cost.draft_tokens > N and 0 < cost.draft_accepted < cost.draft_tokens  # drafts were tried and judged
    assert min(p_values(plain, drafted)) > 1e-3
    for biased in (lambda p: (1.2 * p).clamp(max=1.0), torch.ones_like):
        monkeypatch.setattr(drafting, "acceptance_probability", biased)
        wrong, _ = samples(peaked_policy, peaked_policy.new_drafter(), seed=2)
        assert min(p_values(plain, wrong)) < 1e-4


def test_greedy_decoding_is_the_same_with_drafts(peaked_policy):
    prefixes = ["abcabc", "Start with 3. Add 4.\n"]
    plain = peaked_policy.generate_steps(prefixes, 2, temperature=0.0, max_new_tokens=12, stop_at_delimiter=False)
    drafter = peaked_policy.new_drafter()
    drafted = peaked_policy.generate_steps(prefixes, 2, temperature=0.0, max_new_tokens=12,
                                           stop_at_delimiter=False, drafter=drafter)
    assert [[s.text for s in g] for g in drafted] == [[s.text for s in g] for g in plain]
    assert [[s.generated_tokens for s in g] for g in drafted] == [[s.generated_tokens for s in g] for g in plain]


def run(strategy: str, temperature: float = 0.8, **options) -> list[dict]:
    cfg = RunConfig(model="tiny-arith-s", verifier="tiny-prm", strategy=strategy, budget=16, problem_id="test:3",
                    temperature=temperature, options=options)
    return list(run_events(cfg))


@needs_embedded
def test_best_of_n_with_drafts_makes_fewer_forward_passes_and_counts_its_drafts():
    off, on = run("best_of_n", drafting="off"), run("best_of_n", drafting="ngram")
    t_off, t_on = off[-1]["totals"], on[-1]["totals"]
    assert t_on["model_calls"] < t_off["model_calls"]
    assert 0 < t_on["draft_accepted"] < t_on["draft_tokens"]
    assert t_off["draft_tokens"] == 0
    assert abs(t_on["generated_tokens"] - t_off["generated_tokens"]) < 0.2 * t_off["generated_tokens"]


@needs_embedded
def test_greedy_steps_with_drafts_and_kv_reuse_are_the_plain_ones():
    """Drafted steps keep their caches without the rejected columns: greedy search over them reads the same."""
    plain = run("beam_search", temperature=0.0, drafting="off", kv_reuse="off")
    fast = run("beam_search", temperature=0.0, drafting="ngram", kv_reuse="on")
    nodes = lambda ev: [(e["id"], e["preview"]) for e in ev if e["type"] == "NodeAdded"]  # noqa: E731
    assert nodes(fast) == nodes(plain)
    assert fast[-1]["totals"]["prompt_tokens"] < plain[-1]["totals"]["prompt_tokens"]


def test_drafted_decoding_keeps_top_logprobs_per_token_and_obeys_the_stop_rule(peaked_policy):
    drafter = peaked_policy.new_drafter()
    groups = peaked_policy.generate_steps(["abcabc"], 8, temperature=1.0, seed=3, max_new_tokens=10,
                                          stop_at_delimiter=False, top_logprobs=3, drafter=drafter,
                                          stop=lambda lps: len(lps) == 4)
    assert groups[0][0].cost.draft_tokens > 0
    for s in groups[0]:
        if s.stopped:  # cut at its 4th position: three tokens kept, four positions' log-probabilities
            assert s.generated_tokens == 3 and len(s.top_logprobs) == 4
        else:  # ended by EOS before the 4th position
            assert s.finished and len(s.top_logprobs) == s.generated_tokens <= 3
        assert all(len(row) == 3 and row == sorted(row, reverse=True) for row in s.top_logprobs)
    assert any(s.stopped for s in groups[0])


@needs_embedded
def test_deepconf_with_drafts_reads_one_log_probability_per_generated_token():
    events = run("deepconf", drafting="ngram", kv_reuse="on")
    traces = [e for e in events if e["type"] == "TraceConfidence"]
    added = {e["id"]: e for e in events if e["type"] == "NodeAdded"}
    assert len(traces) == 16 and events[-1]["totals"]["draft_tokens"] > 0
    for t in traces:
        generated = added[t["id"]]["node_cost"]["generated_tokens"]
        assert t["tokens"] == generated + (t["stopped_at"] is not None)
