"""The domains a run can search in: each maps a request to a loaded ``*Run`` that builds its SearchSpace.

A domain's ``prepare(config, uses_verifier)`` resolves the problem, loads the models and raises
``InputError`` with a one-line message when anything is unusable. The returned object offers
``problem_record()``, ``prompt``, ``space(config, cancel)``, ``grade(answer)`` and
``result_extras(space, result)`` (domain-specific figures for the stored result).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from backends.embedded import arith
from backends.text import reasoning



def _image_prepare(config, uses_verifier: bool):
    from backends.image import digits  # torch and diffusers load only when an image run is asked for
    return digits.prepare(config, uses_verifier)


def _image_problem(split: str, index: int):
    from backends.image import digits
    return digits.problem_at(split, index)


def _t2i_prepare(config, uses_verifier: bool):
    from backends.image import t2i  # diffusers pipelines and CLIP verifiers load only for a text-to-image run
    return t2i.prepare(config, uses_verifier)


def _t2i_problem(split: str, index: int):
    from backends.image import t2i
    return t2i.problem_at(split, index)


DOMAINS: dict[str, Callable] = {
    "reasoning": reasoning.prepare,
    "image": _image_prepare,
    "t2i": _t2i_prepare,
}

# Domains whose nodes are latents with PNG previews and whose results carry ``candidates_judged`` (image views).
IMAGE_DOMAINS = ("image", "t2i")



@dataclass(frozen=True)
class ProblemSet:
    """What a sweep walks in a domain: ``problem_at(split, index)`` gives an object with ``uid``, ``difficulty``
    and ``answer``; ``is_correct(problem, answer)`` grades a sample's answer where the run's extras do not
    (the image domains' judge grades every candidate itself)."""

    problem_at: Callable[[str, int], Any]
    splits: tuple[str, ...]
    is_correct: Callable[[Any, str | None], bool]


def _answer_is(problem, answer: str | None) -> bool:
    return answer == problem.answer


PROBLEM_SETS: dict[str, ProblemSet] = {
    "reasoning": ProblemSet(arith.problem_at, arith.SPLITS, arith.is_correct),
    "image": ProblemSet(_image_problem, ("test", "train"), _answer_is),
    "t2i": ProblemSet(_t2i_problem, ("test",), _answer_is),
}
