"""The reasoning domain: a causal LM writes a solution one step (line or paragraph) at a time.

``reasoning`` is the domain (problems, the search space, grading); the policies are ``transformers_lm``,
``vllm_backend`` and ``openai_backend``; the verifiers are ``verifiers`` (the token-classification PRM and the
verifier protocol), ``prm_families`` (the published PRM families, on ``prm_base``), ``judge`` (LLM judges)
and ``math_grading`` (answer extraction and equivalence, the oracle); ``datasets_local`` reads MATH-500 and
GSM8K; ``loaders`` builds any of them from a catalog entry.
"""
