"""The domains a run can search in: each maps a request to a loaded ``*Run`` that builds its SearchSpace.

A domain's ``prepare(config, uses_verifier)`` resolves the problem, loads the models and raises
``InputError`` with a one-line message when anything is unusable. The returned object offers
``problem_record()``, ``prompt``, ``space(config, cancel)``, ``grade(answer)`` and
``result_extras(space, result)`` (domain-specific figures for the stored result).
"""
from __future__ import annotations

from typing import Callable

from backends import reasoning



def _image_prepare(config, uses_verifier: bool):
    from backends import image  # torch and diffusers load only when an image run is asked for
    return image.prepare(config, uses_verifier)


def _image_problem(split: str, index: int):
    from backends import image
    return image.problem_at(split, index)


def _t2i_prepare(config, uses_verifier: bool):
    from backends import t2i  # diffusers pipelines and CLIP verifiers load only for a text-to-image run
    return t2i.prepare(config, uses_verifier)


def _t2i_problem(split: str, index: int):
    from backends import t2i
    return t2i.problem_at(split, index)


DOMAINS: dict[str, Callable] = {
    "reasoning": reasoning.prepare,
    "image": _image_prepare,
    "t2i": _t2i_prepare,
}

# Domains whose nodes are latents with PNG previews and whose results carry ``candidates_judged`` (image views).
IMAGE_DOMAINS = ("image", "t2i")

# Problem sets a sweep can walk, per domain other than reasoning (which uses backends.embedded.arith):
# (problem_at(split, index) -> an object with uid, difficulty, answer; the splits it knows).
PROBLEM_SETS: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "image": (_image_problem, ("test", "train")),
    "t2i": (_t2i_problem, ("test",)),
}
