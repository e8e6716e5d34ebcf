"""Loading the reasoning domain's policies and verifiers from their catalog entries.

The catalog (``backends.catalog``) says what an id is and whether it is available here; this module builds
the object: a transformers, vLLM or OpenAI-compatible policy, a PRM of its family, a judge, a critic, the oracle.
Loaded models are kept (a few at a time) for the process, so a second run does not reload them.
"""
from __future__ import annotations

import functools

from backends.catalog import available, guarded_load, resolve


@functools.lru_cache(maxsize=4)
def _load_policy(model_id: str, trust_remote_code: bool, delimiter: str | None = None):
    entry = resolve(model_id, "policy")
    delimiter = delimiter or entry.delimiter
    if entry.backend == "openai":
        from backends.text.openai_backend import OpenAIPolicy
        return OpenAIPolicy.from_source(entry.source, delimiter=delimiter)
    if entry.backend == "vllm":
        from backends.text.vllm_backend import VLLMPolicy
        return VLLMPolicy(entry.source, delimiter=delimiter, trust_remote_code=trust_remote_code,
                          chat_template=entry.chat_template)
    from backends.text.transformers_lm import CausalLMPolicy
    return CausalLMPolicy(entry.source, trust_remote_code=trust_remote_code, delimiter=delimiter,
                          chat_template=entry.chat_template)


@functools.lru_cache(maxsize=4)
def _load_verifier(model_id: str, trust_remote_code: bool):
    entry = resolve(model_id, "verifier")
    if entry.kind == "oracle":
        from backends.text.math_grading import AnyOracle
        return AnyOracle()  # ArithOracle for arithmetic chains, MathOracle for MATH-500 / GSM8K
    if entry.kind == "critic":
        from backends.text.critic import GenerativeCritic
        return GenerativeCritic(entry.source, name=entry.id, trust_remote_code=trust_remote_code)
    if entry.kind == "judge":
        from backends.text.judge import load_judge
        return load_judge(entry.source, name=entry.id, trust_remote_code=trust_remote_code)
    if entry.family:
        from backends.text import prm_families
        return prm_families.load(entry.family, entry.source, name=entry.id, trust_remote_code=trust_remote_code)
    from backends.text.verifiers import TokenClassificationPRM
    return TokenClassificationPRM(entry.source, name=entry.id, delimiter=entry.delimiter,
                                  trust_remote_code=trust_remote_code)


def load_policy(model_id: str, trust_remote_code: bool = False, delimiter: str | None = None):
    """A loaded policy; ``delimiter`` overrides the entry's step delimiter (math problems use blank lines)."""
    available(model_id, "policy")
    extra = () if delimiter is None else (delimiter,)
    return guarded_load(model_id, _load_policy, model_id, trust_remote_code, *extra)


def load_verifier(model_id: str, trust_remote_code: bool = False):
    available(model_id, "verifier")
    return guarded_load(model_id, _load_verifier, model_id, trust_remote_code)
