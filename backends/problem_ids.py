"""How every domain reads the problem a run asks for: typed text, else an id ``split:index``, else ``test:0``."""
from __future__ import annotations

from typing import Callable, TypeVar

from backends.errors import InputError

P = TypeVar("P")  # a domain's problem type


def check_problem_index(split: str, index: int, splits: tuple[str, ...]) -> None:
    """InputError unless ``split:index`` names a problem of a domain whose splits are ``splits``."""
    if split not in splits:
        raise InputError(f"unknown split {split!r}; choose one of {', '.join(splits)}")
    if index < 0:
        raise InputError("problem index must be 0 or more")


def resolve_problem_with(problem_text: str | None, problem_id: str | None, typed: Callable[[str], P],
                         at: Callable[[str, int], P]) -> P:
    """Typed text (``typed`` reads it) wins over an id ``split:index`` (``at`` looks it up); with neither,
    ``test:0``."""
    if problem_text and problem_text.strip():
        return typed(problem_text)
    if problem_id:
        split, _, index = problem_id.partition(":")
        if not index.isdigit():
            example = split if split.isidentifier() else "test"  # math500:x -> "like math500:17"
            raise InputError(f"problem id must look like {example}:17, got {problem_id!r}")
        return at(split, int(index))
    return at("test", 0)
