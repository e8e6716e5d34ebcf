"""The digits domain: draw the asked digit with the class-conditional ``tiny-digits`` diffusion model.

A problem ``split:index`` asks for class ``index % 10`` with a noise seed derived from split and index;
a typed problem names a digit ('digit 7'). The held-out judge (``digit-judge``) grades the chosen image.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from backends.image import flow
from backends.errors import InputError
from backends.problem_ids import check_problem_index, resolve_problem_with
from strategies.core import CancelToken, Node
from backends.image.diffusion import (CLASSES, DEFAULTS, DETERMINISTIC_STRATEGIES, FLOW_ONLY_STRATEGIES, FLOW_SCHEDULERS,
                                      PREVIEWS, SCHEDULERS, DiffusionModel, Sampling, check_deterministic, derive)
from backends.image.space import CandidateRun, ImageSpace

SPLITS = ("test", "train")


# ---- problems ---------------------------------------------------------------------------------------------

@dataclass
class DigitProblem:
    """A problem of the image domain: draw the digit ``label``; ``seed`` seeds the search's noises."""

    uid: str
    label: int
    seed: int

    @property
    def text(self) -> str:
        return f"digit {self.label}"

    @property
    def answer(self) -> str:
        return str(self.label)

    difficulty = None

    def to_dict(self) -> dict:
        return {"uid": self.uid, "text": self.text, "answer": self.answer, "difficulty": None,
                "label": self.label, "seed": self.seed}


def problem_at(split: str, index: int) -> DigitProblem:
    """Problem ``split:index``: the class is index % 10, the noise seed is derived from split and index."""
    check_problem_index(split, index, SPLITS)
    return DigitProblem(f"{split}:{index}", index % CLASSES, derive("problem", split, index) % 1_000_000_007)


def parse_problem(text: str) -> DigitProblem:
    """'digit 7', '7' or 'seven' -> class 7 (seed 0)."""
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    t = text.strip().lower()
    if t.startswith("digit"):
        t = t[5:].strip()
    if t.isdigit() and len(t) == 1:
        label = int(t)
    elif t in words:
        label = words.index(t)
    else:
        raise InputError(f"an image problem names one digit, like 'digit 7'; got {text[:60]!r}")
    return DigitProblem(f"digit:{label}", label, 0)


def _typed_problem(text: str) -> DigitProblem:
    if len(text) > 200:
        raise InputError("the problem text is too long")
    return parse_problem(text)


def resolve_problem(problem_text: str | None, problem_id: str | None) -> DigitProblem:
    return resolve_problem_with(problem_text, problem_id, _typed_problem, problem_at)


# numeric sampler options: (type, lowest, highest)
RANGES = {"steps": (int, 1, 200), "eta": (float, 0.0, 1.0), "guidance": (float, 0.0, 20.0),
          "diffusion": (float, 0.0, 10.0)}


def parse_options(options: dict | None) -> dict:
    """Validated sampler options: steps, eta, guidance, scheduler, previews, diffusion, interpolant (strings
    allowed)."""
    out = dict(DEFAULTS)
    for name, raw in (options or {}).items():
        if name not in DEFAULTS:
            raise InputError(f"unknown image option {name!r}; known: {', '.join(DEFAULTS)}")
        try:
            if name in RANGES:
                kind, lo, hi = RANGES[name]
                v = kind(raw)
                if not lo <= v <= hi:
                    raise InputError(f"{name} must be from {lo} to {hi}" if kind is int
                                     else f"{name} must be between {lo:g} and {hi:g}")
            else:
                v = str(raw)
                allowed = {"scheduler": SCHEDULERS, "interpolant": flow.INTERPOLANTS}.get(name, PREVIEWS)
                if v not in allowed:
                    raise InputError(f"{name} must be one of {', '.join(allowed)}")
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"image option {name} has a bad value {raw!r}") from None
        out[name] = v
    return out


# ---- the run -------------------------------------------------------------------------------------------------

@dataclass
class ImageRun(CandidateRun):
    """An image request with its models loaded: builds the space, grades with the judge, reports extras."""

    problem: DigitProblem
    model: DiffusionModel
    verifier: object | None
    judge: object
    options: dict
    seed_offset: int = 0
    images_dir: Path | None = None

    def sampling(self) -> Sampling:
        o = self.options
        return Sampling(steps=int(o["steps"]), eta=float(o["eta"]), guidance=float(o["guidance"]),
                        scheduler=str(o["scheduler"]), diffusion=float(o["diffusion"]),
                        interpolant=str(o["interpolant"]))

    def space(self, config, cancel: CancelToken) -> ImageSpace:
        return ImageSpace(self.model, self.verifier, self.problem.label, self.sampling(),
                          seed=derive("space", self.problem.seed, config.seed) % 2 ** 31,
                          images_dir=self.preview_dir(), previews=self.options["previews"], cancel=cancel)

    def grade(self, answer: str | None) -> bool:
        """Without the image only the asked class can be checked; the engine prefers ``grade_result``."""
        return answer == self.problem.answer

    def grade_result(self, space: ImageSpace, result) -> bool | None:
        """The judge's verdict on the chosen final image: does it see the asked class?"""
        node = space.finished_nodes.get(result.node_id) if result is not None else None
        if node is None:
            return False
        return bool(self.judge.verdicts(node.payload.x.unsqueeze(0), [self.problem.label])[0]["correct"])

    def result_extras(self, space: ImageSpace, result) -> dict:
        """Judge verdict and search-verifier score of every candidate (hacking shows as high score, wrong verdict)."""

        def judge(nodes: list[Node], images: Callable[[], torch.Tensor]) -> list[dict]:
            verdicts = self.judge.verdicts(images(), [self.problem.label] * len(nodes))
            return [{"judge_predicted": v["predicted"], "judge_p_asked": round(v["p_asked"], 4),
                     "judge_correct": v["correct"]} for v in verdicts]

        return self.candidate_extras(space, result, self.problem.label,
                                     lambda nodes: torch.stack([n.payload.x for n in nodes]), judge)


DEFAULT_JUDGE = "digit-judge"


def prepare(config, uses_verifier: bool) -> ImageRun:
    """Resolve the (class, seed) problem, load the diffusion model, the verifier and the judge."""
    from backends.image.loaders import load_image_model, load_image_verifier
    problem = resolve_problem(config.problem_text, config.problem_id)
    given = dict(getattr(config, "options", None) or {})
    if config.strategy in FLOW_ONLY_STRATEGIES:
        given.setdefault("scheduler", "flow_sde")
    if config.strategy in DETERMINISTIC_STRATEGIES:
        given.setdefault("eta", 0.0)
    options = parse_options(given)
    if config.strategy in FLOW_ONLY_STRATEGIES and options["scheduler"] not in FLOW_SCHEDULERS:
        raise InputError(f"{config.strategy} scores each candidate on its own x0-hat: choose a flow sampler "
                         f"(scheduler=flow_sde, or flow_ode), not {options['scheduler']}")
    check_deterministic(config.strategy, options["scheduler"], options["eta"])
    model = load_image_model(config.model)
    verifier = None
    if config.verifier:
        verifier = load_image_verifier(config.verifier)
    elif uses_verifier:
        raise InputError(f"{config.strategy} needs a verifier; choose one (for example digit-classifier)")
    judge = load_image_verifier(config.judge or DEFAULT_JUDGE)
    if not hasattr(judge, "verdicts"):
        raise InputError(f"{config.judge} cannot judge: a judge must be a classifier (for example digit-judge)")
    return ImageRun(problem, model, verifier, judge, options)
