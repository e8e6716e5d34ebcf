"""The domains a run can search in: each maps a request to a loaded ``*Run`` that builds its SearchSpace.

A domain's ``prepare(config, uses_verifier)`` resolves the problem, loads the models and raises
``InputError`` with a one-line message when anything is unusable. The returned object offers
``problem_record()``, ``prompt``, ``space(config, cancel)``, ``grade(answer)`` and
``result_extras(space, result)`` (domain-specific figures for the stored result).
"""
from __future__ import annotations

from typing import Callable

from backends import reasoning

DOMAINS: dict[str, Callable] = {
    "reasoning": reasoning.prepare,
}
