"""The text-to-image domain (``--domain t2i``): a diffusers pipeline searched one denoising step at a time.

Why a domain of its own rather than more of ``image``: a problem here is a (prompt, seed) pair, not a
(class, seed) pair; the verifiers read the prompt (CLIP score, preference models), not a class; the models
and verifiers of the two domains cannot be mixed; and sweeps walk a prompt set, not digit classes. What is
shared is everything about latents: :class:`T2ISpace` is ``backends.image.space.ImageSpace`` (node bookkeeping,
prompt roots, noises, perturbation, re-noising, resampling, recipes, the preview files and their names)
with the generator's step, its re-noising, and its images swapped for the pipeline's
(``backends.image.t2i_pipelines``). Node previews and result extras have the image domain's shapes.

Problems: ``test:<i>`` is prompt i of ``backends/image/prompts/t2i.jsonl`` (40 prompts written for this project in
the spirit of DrawBench: colours, counting, positions, text, conflicting scenes, long descriptions, rare
words, misspellings; the category is the problem's difficulty, so sweeps break results down by it) with a
seed derived from the index; a typed prompt is its own problem with seed 0.

Images the verifiers see are VAE decodes: the final image, or x0-hat of an intermediate latent (decoded
once per scored node). Previews: ``<node>.png`` is the decoded final image, or for an intermediate latent
the cheap linear preview of its x0-hat; ``<node>_xt.png`` the linear preview of x_t.

The held-out judge (``--judge``, any text-to-image verifier) scores every candidate; a candidate counts as
correct when the judge's score reaches its pass mark (the verifier's own, or the ``judge_pass`` option).
Without a judge a run is not graded (``correct`` is None); a sweep needs one.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from backends.errors import InputError
from backends.image.diffusion import (DETERMINISTIC_STRATEGIES, PREVIEWS, Latent, check_deterministic, derive,
                                      noise_latent, perturb_latent)
from backends.image.space import CandidateRun, ImageSpace
from backends.problem_ids import check_problem_index, resolve_problem_with
from backends.image.t2i_pipelines import SCHEDULERS, Pipeline, PromptGenerator, T2ISampling
from strategies.core import CancelToken, Compute, Node

PROMPTS_FILE = Path(__file__).resolve().parent / "prompts" / "t2i.jsonl"
SPLITS = ("test",)
PROMPT_MAX = 500
# None: the pipeline's own (guidance: the family default; size: the model's native resolution;
# scheduler: DDIM for the UNet families, Euler for the flow ones; judge_pass: the judge's pass mark)
DEFAULTS = {"steps": 30, "eta": 1.0, "guidance": None, "scheduler": None, "size": None, "previews": "all",
            "judge_pass": None, "diffusion": 3.0}


# ---- problems -------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def prompt_set() -> tuple[dict, ...]:
    rows = [json.loads(line) for line in PROMPTS_FILE.read_text().splitlines() if line.strip()]
    return tuple(rows)


@dataclass
class PromptProblem:
    """A text-to-image problem: draw ``prompt``; ``seed`` seeds the search's noises."""

    uid: str
    prompt: str
    seed: int
    category: str | None = None

    @property
    def text(self) -> str:
        return self.prompt

    @property
    def difficulty(self) -> str | None:
        return self.category

    answer = None

    def to_dict(self) -> dict:
        return {"uid": self.uid, "text": self.prompt, "answer": None, "difficulty": self.category,
                "category": self.category, "seed": self.seed}


def problem_at(split: str, index: int) -> PromptProblem:
    """Problem ``split:index``: prompt ``index`` of the prompt set (cycling), seed derived from split and index."""
    check_problem_index(split, index, SPLITS)
    row = prompt_set()[index % len(prompt_set())]
    return PromptProblem(f"{split}:{index}", row["prompt"], derive("t2i-problem", split, index) % 1_000_000_007,
                         row.get("category"))


def _typed_problem(problem_text: str) -> PromptProblem:
    """A typed prompt, white space folded, is its own problem with seed 0."""
    text = " ".join(problem_text.split())
    if len(text) > PROMPT_MAX:
        raise InputError(f"the prompt is too long (at most {PROMPT_MAX} characters)")
    return PromptProblem(f"prompt:{derive(text) % 10 ** 8}", text, 0)


def resolve_problem(problem_text: str | None, problem_id: str | None) -> PromptProblem:
    return resolve_problem_with(problem_text, problem_id, _typed_problem, problem_at)


def parse_options(options: dict | None, pipeline: Pipeline) -> dict:
    """Validated options with the pipeline's defaults filled in (strings allowed, as the CLI gives them)."""
    out = dict(DEFAULTS)
    for name, raw in (options or {}).items():
        if name not in DEFAULTS:
            raise InputError(f"unknown text-to-image option {name!r}; known: {', '.join(DEFAULTS)}")
        if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "auto")):
            continue
        try:
            if name in ("steps", "size"):
                v = int(raw)
            elif name == "scheduler":
                v = str(raw)
            elif name == "previews":
                v = str(raw)
                if v not in PREVIEWS:
                    raise InputError(f"previews must be one of {', '.join(PREVIEWS)}")
            else:
                v = float(raw)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"text-to-image option {name} has a bad value {raw!r}") from None
        out[name] = v
    allowed = SCHEDULERS[pipeline.family]
    out["scheduler"] = out["scheduler"] or allowed[0]
    if out["scheduler"] not in allowed:
        raise InputError(f"{pipeline.name} samples with {', '.join(allowed)}, not {out['scheduler']!r}")
    out["guidance"] = pipeline.default_guidance if out["guidance"] is None else out["guidance"]
    out["size"] = out["size"] or pipeline.default_size
    if not 1 <= out["steps"] <= 200:
        raise InputError("steps must be from 1 to 200")
    if not 0.0 <= out["eta"] <= 1.0:
        raise InputError("eta must be between 0 and 1")
    if not 0.0 <= out["guidance"] <= 30.0:
        raise InputError("guidance must be between 0 and 30")
    if not 0.0 <= out["diffusion"] <= 20.0:
        raise InputError("diffusion must be between 0 and 20")
    pipeline.check_size(out["size"])
    return out


# ---- the search space ---------------------------------------------------------------------------------------

class T2ISpace(ImageSpace):
    """``ImageSpace`` over a :class:`PromptGenerator`: ``label`` is the prompt, handed to the verifier."""

    def __post_init__(self) -> None:
        super().__post_init__()
        # node id -> decoded final image as uint8 RGB: lossless for the verifiers (they read 8-bit images) and a
        # quarter of the memory of float32 at 1024 px
        self._decoded: dict[str, torch.Tensor] = {}

    @property
    def pipeline(self) -> Pipeline:
        return self.model.pipeline

    def _denoise(self, lats: list[Latent]) -> tuple[list[Latent], Compute]:
        return self.model.denoise(lats, self.cancel)

    def _renoise(self, lat: Latent, key: int, to_step: int) -> Latent:
        return self.model.renoise(lat, key, to_step)

    def _decode(self, latents: list[torch.Tensor]) -> torch.Tensor:
        images, flops, mem = self.pipeline.decode(torch.stack(latents))
        self._spend(Compute(flops=flops, mem_bytes=mem))
        return images

    def _keep(self, nid: str, image: torch.Tensor) -> None:
        self._decoded[nid] = ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)

    def final_image(self, node: Node) -> torch.Tensor:
        """The decoded final image of a finished node (decoded once), RGB in [-1, 1]."""
        if node.id not in self._decoded:
            self._keep(node.id, self._decode([node.payload.x])[0])
        return self._decoded[node.id].float() / 127.5 - 1

    def _images(self, nodes: list[Node]) -> torch.Tensor:
        """Decoded images for the verifier: the final image once finished, else the decoded x0-hat."""
        out: list[torch.Tensor | None] = [self.final_image(n) if n.finished and n.id in self._decoded else None
                                          for n in nodes]
        todo = [i for i, o in enumerate(out) if o is None]
        if todo:
            fresh = self._decode([nodes[i].payload.x if nodes[i].finished else nodes[i].payload.x0 for i in todo])
            for j, i in enumerate(todo):
                out[i] = fresh[j]
                if nodes[i].finished:
                    self._keep(nodes[i].id, fresh[j])
        return torch.stack(out)  # type: ignore[arg-type]

    def _write_preview(self, nid: str, lat: Latent | None) -> str:
        if lat is None:
            return self.label
        if self.images_dir is None or self.previews == "none" or (self.previews == "final" and not lat.finished):
            return ""
        self.images_dir.mkdir(parents=True, exist_ok=True)
        path = self.images_dir / f"{nid}.png"
        if lat.finished:
            image = self._decode([lat.x])[0]
            self._keep(nid, image)
            rgb_png(image, path)
        else:
            rgb_png(self.pipeline.preview(lat.x if lat.x0 is None else lat.x0), path)
            if lat.x0 is not None:
                rgb_png(self.pipeline.preview(lat.x), self.images_dir / f"{nid}_xt.png")
        return str(path)

    def regenerate(self, node: Node) -> torch.Tensor:
        """Rebuild a node's latent from its recipe, one operation at a time."""
        lat: Latent | None = None
        for op in node.payload.recipe:
            name = op[0]
            if name == "noise":
                lat = noise_latent(self.model, int(op[1]), int(op[2]))
            elif name == "step":
                lat = Latent(lat.x, lat.step, lat.steps, int(op[1]), lat.recipe, lat.seed, lat.x0)
                lat = self.model.denoise([lat])[0][0]
            elif name == "perturb":
                lat = perturb_latent(lat, int(op[1]), float(op[2]))
            elif name == "renoise":
                lat = self.model.renoise(lat, int(op[1]), int(op[2]))
            else:
                raise ValueError(f"unknown recipe operation {name!r}")
        if lat is None:
            raise ValueError("empty recipe")
        return lat.x


def rgb_png(img: torch.Tensor, path: Path, min_side: int = 64, max_side: int = 512) -> None:
    """An RGB image (3, H, W) in [-1, 1] as a PNG, enlarged (nearest) to ``min_side`` or shrunk to ``max_side``."""
    from PIL import Image
    a = ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    im = Image.fromarray(a, mode="RGB")
    side = max(im.size)
    if side < min_side:
        k = -(-min_side // side)
        im = im.resize((im.size[0] * k, im.size[1] * k), Image.NEAREST)
    elif side > max_side:
        im.thumbnail((max_side, max_side), Image.BICUBIC)
    im.save(path, optimize=False, compress_level=1)


# ---- the run ------------------------------------------------------------------------------------------------

@dataclass
class T2IRun(CandidateRun):
    """A text-to-image request with its models loaded: builds the space, grades with the judge, reports extras."""

    problem: PromptProblem
    pipeline: Pipeline
    verifier: object | None
    judge: object | None
    options: dict
    images_dir: Path | None = None

    def sampling(self) -> T2ISampling:
        o = self.options
        return T2ISampling(steps=int(o["steps"]), eta=float(o["eta"]), guidance=float(o["guidance"]),
                           scheduler=str(o["scheduler"]), size=int(o["size"]), diffusion=float(o["diffusion"]))

    def space(self, config, cancel: CancelToken) -> T2ISpace:
        sampling = self.sampling()
        generator = PromptGenerator(self.pipeline, self.problem.prompt, sampling)
        return T2ISpace(generator, self.verifier, self.problem.prompt, sampling,
                        seed=derive("space", self.problem.seed, config.seed) % 2 ** 31,
                        images_dir=self.preview_dir(), previews=self.options["previews"], cancel=cancel)

    def grade(self, answer: str | None) -> bool | None:
        return None  # an image is graded by the judge (grade_result), never by its answer text

    def _pass_mark(self) -> float:
        return self.options["judge_pass"] if self.options["judge_pass"] is not None else self.judge.pass_mark

    def _judge_scores(self, images: torch.Tensor) -> list[float]:
        scores, _ = self.judge.score(images, [self.problem.prompt] * len(images))  # grading, not search compute
        return scores

    def grade_result(self, space: T2ISpace, result) -> bool | None:
        """The judge's verdict on the chosen final image: does its score reach the pass mark?"""
        node = space.finished_nodes.get(result.node_id) if result is not None else None
        if self.judge is None or node is None:
            return None
        return self._judge_scores(space.final_image(node).unsqueeze(0))[0] >= self._pass_mark()

    def result_extras(self, space: T2ISpace, result) -> dict:
        """Judge score and verdict, and the search verifier's score, of every candidate (as the image domain)."""
        mark = self._pass_mark() if self.judge is not None else None

        def judge(nodes: list[Node], images: Callable[[], torch.Tensor]) -> list[dict]:
            scores = self._judge_scores(images()) if self.judge is not None else [None] * len(nodes)
            return [{"judge_score": j, "judge_predicted": None if j is None else f"score {j:.3g}",
                     "judge_p_asked": None, "judge_correct": None if j is None else j >= mark} for j in scores]

        extras = {**self.candidate_extras(space, result, self.problem.prompt,
                                          lambda nodes: torch.stack([space.final_image(n) for n in nodes]), judge),
                  "model_family": self.pipeline.family}
        judged = extras["candidates_judged"]
        if judged:
            chosen = next((j for j in judged if result is not None and j["id"] == result.node_id), None)
            extras.update(judge_pass=mark, chosen_judge_score=chosen["judge_score"] if chosen else None)
            if self.judge is not None:
                extras["mean_judge_score"] = sum(j["judge_score"] for j in judged) / len(judged)
        return extras


def prepare(config, uses_verifier: bool) -> T2IRun:
    """Resolve the (prompt, seed) problem, load the pipeline, the verifier and the judge."""
    from backends.image.loaders import load_t2i_model, load_t2i_verifier
    problem = resolve_problem(config.problem_text, config.problem_id)
    pipeline = load_t2i_model(config.model)
    given = dict(getattr(config, "options", None) or {})
    if config.strategy in DETERMINISTIC_STRATEGIES:
        given.setdefault("eta", 0.0)  # DDIM at eta 0 for the UNet families; the flow families' euler is the ODE
    options = parse_options(given, pipeline)
    check_deterministic(config.strategy, options["scheduler"], options["eta"], ode="euler")
    verifier = None
    if config.verifier:
        verifier = load_t2i_verifier(config.verifier)
    elif uses_verifier:
        raise InputError(f"{config.strategy} needs a verifier; choose one (for example clip-score)")
    judge = load_t2i_verifier(config.judge) if config.judge else None
    if judge is None and getattr(config, "sweep_id", None):
        raise InputError("a text-to-image sweep needs a held-out judge (--judge, for example clip-score)")
    return T2IRun(problem, pipeline, verifier, judge, options)
