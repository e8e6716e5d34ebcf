"""Catalog additions of issue 6: suggested hub models with sizes and memory estimates, prefixed ids, families."""
from __future__ import annotations

import pytest

from backends import catalog
from backends.text.loaders import load_verifier
from backends.text.judge import LLMJudge
from backends.text.prm_families import QwenMathPRM, SkyworkPRM
from tests.test_prm_families import qwen_prm, skywork  # noqa: F401 - fixtures


def test_suggested_models_have_sizes_hardware_and_a_memory_estimate():
    ids = {"Qwen/Qwen2.5-Math-1.5B-Instruct", "Qwen/Qwen2.5-Math-7B-Instruct", "meta-llama/Llama-3.2-1B-Instruct",
           "meta-llama/Llama-3.2-3B-Instruct", "Qwen/Qwen2.5-Math-PRM-7B", "peiyi9979/math-shepherd-mistral-7b-prm",
           "RLHFlow/Llama3.1-8B-PRM-Deepseek-Data", "Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B",
           "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2", "Qwen/Qwen2.5-7B-Instruct"}
    assert ids <= set(catalog.CATALOG)
    for i in ids:
        e = catalog.CATALOG[i]
        assert e.size and e.hardware and e.params_b > 0
        assert e.memory_estimate() == int(e.params_b * 1e9) * 2  # bf16 bytes, from the listed size (not cached)
        d = e.to_dict()
        assert d["available"] is False and d["memory_estimate_bytes"] > 0
    assert catalog.CATALOG["Qwen/Qwen2.5-Math-PRM-7B"].family == "qwen-prm"
    assert catalog.CATALOG["peiyi9979/math-shepherd-mistral-7b-prm"].delimiter == "\n"
    assert catalog.CATALOG["Qwen/Qwen2.5-7B-Instruct"].kind == "judge"


def test_memory_estimate_from_a_local_config(random_lm_path):
    e = catalog.resolve(str(random_lm_path), "policy")
    est = e.memory_estimate()
    from transformers import AutoModelForCausalLM
    n = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(random_lm_path).parameters())
    assert abs(est - 2 * n) <= 0.05 * 2 * n


def test_prefixed_and_detected_verifiers_load_their_family(qwen_prm, skywork):  # noqa: F811
    v = load_verifier(f"qwen-prm:{qwen_prm[0]}")
    assert isinstance(v, QwenMathPRM)
    assert isinstance(load_verifier(str(skywork[0])), SkyworkPRM)  # detected from the config
    with pytest.raises(catalog.ModelLoadError, match="not a policy"):
        catalog.resolve(f"rlhflow:{qwen_prm[0]}", "policy")


def test_judge_prefix_loads_an_llm_judge(random_lm_path):
    j = load_verifier(f"judge:{random_lm_path}")
    assert isinstance(j, LLMJudge) and not j.is_oracle


def test_oracle_still_grades_arithmetic():
    from backends.embedded import arith
    oracle = load_verifier("oracle")
    p = arith.parse_problem("Start with 5. Multiply by 3.")
    scores, _ = oracle.score_steps(p, "", [["5 * 3 = 15", "The answer is 15"]])
    assert scores == [[1.0, 1.0]]
