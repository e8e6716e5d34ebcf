"""vLLM backend: imported only when chosen; its tests run where vLLM and a CUDA device are present."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from backends.text.loaders import load_policy

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


def test_the_app_never_imports_vllm_unless_chosen(random_lm_path):
    load_policy(str(random_lm_path))
    assert "vllm" not in sys.modules or HAVE_VLLM


@pytest.mark.skipif(HAVE_VLLM, reason="vLLM is installed here: the unavailable path is not reachable")
def test_vllm_ids_are_unavailable_with_the_reason():
    from backends import catalog
    ok, reason = catalog.resolve("vllm:Qwen/Qwen2.5-Math-1.5B-Instruct", "policy").availability()
    assert not ok and "requirements-gpu.txt" in reason
    with pytest.raises(catalog.ModelLoadError, match="not available here"):
        load_policy("vllm:Qwen/Qwen2.5-Math-1.5B-Instruct")
    from backends.text.vllm_backend import VLLMPolicy
    with pytest.raises(ImportError, match="requirements-gpu.txt"):
        VLLMPolicy("x")


needs_vllm_gpu = pytest.mark.skipif(
    not HAVE_VLLM or not __import__("torch").cuda.is_available(),
    reason="vLLM is not installed or there is no CUDA device (pip install -r requirements-gpu.txt on a GPU machine)")


@needs_vllm_gpu
def test_vllm_policy_steps_samples_and_counts(random_lm_path):
    from backends.text.vllm_backend import VLLMPolicy
    policy = VLLMPolicy(str(random_lm_path), delimiter="\n", chat_template=False, gpu_memory_utilization=0.2,
                        logprobs=1, enforce_eager=True)
    groups = policy.generate_steps(["Start with 5. Add 3.\n", "Start with 2.\n"], k=3, temperature=1.0,
                                   max_new_tokens=8)
    assert [len(g) for g in groups] == [3, 3]
    assert all("\n" not in s.text for g in groups for s in g)
    assert groups[0][0].cost.prompt_tokens > 0 and groups[0][1].cost.prompt_tokens == 0
    assert all(s.generated_tokens <= 8 for g in groups for s in g)
    assert len(policy.last_logprobs) == 2
