"""The image domains' search space: diffusion latents as nodes, one denoising step at a time.

A node's payload is a :class:`backends.image.diffusion.Latent`; the prompt root of a search has no latent
(payload ``None``): stepping or completing it draws a fresh, seeded initial noise per child, which is what
makes best-of-N over the root a random search over noises. :class:`ImageSpace` serves the digits domain and,
subclassed, text-to-image (``backends.image.t2i.T2ISpace``); :class:`CandidateRun` is what both domains' run
objects share.

Previews: each node's images are written once, when the node is made, as small PNGs in a run-specific
folder under ``images_root()``: ``<node>.png`` holds x0-hat (the final image once finished, the noise
itself at step 0) and ``<node>_xt.png`` the latent x_t (steps before the last). ``Node.preview`` is the
path of ``<node>.png``; the prompt root's preview is its text.
"""
from __future__ import annotations

import functools
import itertools
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from strategies.core import CancelToken, Compute, Node, Score
from backends.image.diffusion import DiffusionModel, FLOW_SCHEDULERS, Latent, MAX_STEPS, PREVIEWS, Sampling, denoise, derive, flow_predict, images_root, noise_latent, perturb_latent, regenerate, renoise_latent, to_png

# ---- the search space ---------------------------------------------------------------------------------------

@dataclass
class ImageSpace:
    """The image domain on the search-space interface (plus ``ImageSearchSpace``'s extension methods)."""

    model: DiffusionModel
    verifier: object | None
    label: int
    sampling: Sampling = field(default_factory=Sampling)
    seed: int = 0
    images_dir: Path | None = None
    previews: str = "all"
    cancel: CancelToken | None = None
    meter: Compute = field(default_factory=Compute)

    def __post_init__(self) -> None:
        if self.previews not in PREVIEWS:
            raise ValueError(f"previews must be one of {', '.join(PREVIEWS)}")
        self.max_steps = self.sampling.steps
        self.max_schedule = min(MAX_STEPS, self.model.num_train_timesteps)
        self._ids = itertools.count()
        self._seeds = itertools.count()
        self._scores: dict[str, float] = {}
        self.finished_nodes: dict[str, Node] = {}

    # -- node bookkeeping --

    def _new_seed(self) -> int:
        return derive("noise", self.seed, next(self._seeds))

    def _node(self, parent: Node | None, lat: Latent | None, cost: Compute) -> Node:
        nid = f"n{next(self._ids)}"
        finished = lat is not None and lat.finished
        node = Node(id=nid, parent=parent.id if parent else None, depth=lat.step if lat else 0,
                    preview=self._write_preview(nid, lat), finished=finished,
                    answer=str(self.label) if finished else None, payload=lat, cost=cost,
                    seed=lat.seed if lat else self.seed)
        if finished:
            self.finished_nodes[nid] = node
        return node

    def _write_preview(self, nid: str, lat: Latent | None) -> str:
        if lat is None:
            return f"digit {self.label}"
        if self.images_dir is None or self.previews == "none" or (self.previews == "final" and not lat.finished):
            return ""
        self.images_dir.mkdir(parents=True, exist_ok=True)
        path = self.images_dir / f"{nid}.png"
        to_png(lat.x if lat.finished or lat.x0 is None else lat.x0, path)
        if not lat.finished and lat.x0 is not None:
            to_png(lat.x, self.images_dir / f"{nid}_xt.png")
        return str(path)

    def _roots_to_noise(self, nodes: list[Node], steps: int | None = None) -> list[Latent]:
        """The latent each node continues from: prompt roots draw a fresh seeded noise per occurrence."""
        out = []
        seen: dict[str, int] = {}
        for n in nodes:
            if n.payload is None:
                out.append(noise_latent(self.model, self._new_seed(), steps or self.sampling.steps))
            else:
                occ = seen.get(n.id, 0)
                seen[n.id] = occ + 1
                lat = n.payload
                if lat.finished:
                    raise ValueError(f"node {n.id} is already a finished image")
                # a node given several times in one call gets a distinct key per occurrence
                out.append(lat if occ == 0 else lat.clone(derive(lat.key, "occurrence", occ)))
        return out

    def _spend(self, cost: Compute) -> None:
        self.meter.add(cost)

    def _predict(self, nodes: list[Node]) -> None:
        """Flow samplers: x0-hat at the nodes' own points where missing (once per node, before any copy)."""
        if self.sampling.scheduler in FLOW_SCHEDULERS:
            seen: dict[str, Latent] = {n.id: n.payload for n in nodes if n.payload is not None}
            self._spend(flow_predict(self.model, self.sampling, self.label, list(seen.values()), self.cancel))

    # -- what a generator family overrides (the text-to-image space of backends/image/t2i.py subclasses this one) --

    def _denoise(self, lats: list[Latent]) -> tuple[list[Latent], Compute]:
        """One denoising step for each latent, batched (the class label conditions the UNet)."""
        return denoise(self.model, self.sampling, self.label, lats, self.cancel)

    def _renoise(self, lat: Latent, key: int, to_step: int) -> Latent:
        return renoise_latent(self.model, self.sampling, lat, key, to_step)

    def _images(self, nodes: list[Node]) -> torch.Tensor:
        """What the verifier sees of each node: x0-hat, or the final image once finished."""
        return torch.stack([_image_of(n.payload) for n in nodes])

    # -- SearchSpace --

    def initial(self, n: int) -> list[Node]:
        """``n`` prompt roots (no latent yet: their children draw their own initial noises)."""
        return [self._node(None, None, Compute()) for _ in range(n)]

    def extend(self, nodes: list[Node], k: int, temperature: float | None = None) -> list[list[Node]]:
        """One denoising step from each node, ``k`` children each (each child with its own step noise)."""
        self._predict(nodes)
        parents = [n for n in nodes for _ in range(k)]
        lats = self._roots_to_noise(parents)  # the j-th child of a node gets a key (a step noise) of its own
        stepped, cost = self._denoise(lats)
        self._spend(cost)
        per = _split_cost(cost, len(stepped))
        kids = [self._node(p, lat, per) for p, lat in zip(parents, stepped)]
        return [kids[i * k:(i + 1) * k] for i in range(len(nodes))]

    def complete(self, nodes: list[Node], temperature: float | None = None) -> list[Node]:
        """Each node denoised to the end of its schedule, all in one batched loop."""
        out: list[Node | None] = [None] * len(nodes)
        todo = [i for i, n in enumerate(nodes) if not (n.payload is not None and n.payload.finished)]
        for i, n in enumerate(nodes):
            if i not in todo:
                out[i] = n
        self._predict([nodes[i] for i in todo])
        lats = self._roots_to_noise([nodes[i] for i in todo])
        costs = [Compute() for _ in todo]
        active = list(range(len(todo)))
        while active:
            stepped, cost = self._denoise([lats[a] for a in active])
            self._spend(cost)
            per = _split_cost(cost, len(active))
            for a, lat in zip(active, stepped):
                lats[a] = lat
                costs[a].add(per)
            active = [a for a in active if not lats[a].finished]
        for j, i in enumerate(todo):
            out[i] = self._node(nodes[i], lats[j], costs[j])
        return out  # type: ignore[return-value]

    def score(self, nodes: list[Node]) -> list[Score]:
        """The verifier on x0-hat (the final image once finished), batched; cached per node."""
        if self.verifier is None:
            raise ValueError("this strategy needs a verifier, and none was chosen")
        self._predict([n for n in nodes if n.id not in self._scores])  # flow: a noise is scored on its own x0-hat
        todo = [n for n in nodes if n.id not in self._scores and n.payload is not None and n.payload.x0 is not None]
        if todo:
            if self.cancel is not None:
                self.cancel.check()
            images = self._images(todo)
            values, cost = self.verifier.score(images, [self.label] * len(todo))
            self._spend(cost)
            for n, v in zip(todo, values):
                self._scores[n.id] = v
        return [Score(self._scores.get(n.id, 0.0), [self._scores.get(n.id, 0.0)]) for n in nodes]

    def extract(self, node: Node) -> str | None:
        return node.answer

    # -- ImageSearchSpace --

    def noises(self, parent: Node, n: int, steps: int | None = None) -> list[Node]:
        """``n`` fresh initial noises (step 0) under a prompt root, optionally with a longer schedule."""
        if steps is not None and not 1 <= steps <= min(MAX_STEPS, self.model.num_train_timesteps):
            raise ValueError(f"steps must be from 1 to {min(MAX_STEPS, self.model.num_train_timesteps)}")
        return [self._node(parent, noise_latent(self.model, self._new_seed(), steps or self.sampling.steps),
                           Compute()) for _ in range(n)]

    def perturb(self, nodes: list[Node], cosine: float, k: int) -> list[list[Node]]:
        """``k`` neighbours of each node's latent on the sphere of its norm, at the given cosine to it."""
        if not -1.0 <= cosine <= 1.0:
            raise ValueError("cosine must be in [-1, 1]")
        out = []
        for n in nodes:
            lat = n.payload
            if lat is None or lat.finished:
                raise ValueError("perturb needs a noise or an intermediate latent")
            keys = [derive(lat.key, "perturb", j, next(self._seeds)) for j in range(k)]
            out.append([self._node(n, perturb_latent(lat, key, cosine), Compute()) for key in keys])
        return out

    def renoise(self, nodes: list[Node], to_step: int, k: int) -> list[list[Node]]:
        """``k`` copies of each node pushed back by the forward process to the noise level of ``to_step``."""
        out = []
        for n in nodes:
            lat = n.payload
            keys = [derive(lat.key, "renoise", j, next(self._seeds)) for j in range(k)]
            out.append([self._node(n, self._renoise(lat, key, to_step),
                                   Compute()) for key in keys])
        return out

    def resample(self, nodes: list[Node], ancestors: list[int]) -> list[Node]:
        """The new population: for each ancestor index a copy of that particle's whole state.

        A copy keeps the node id (the particle is the same state) and gets a deep copy of the payload:
        latent, x0-hat, step and schedule (the scheduler is stateless beyond them), recipe and seed; its
        RNG key is re-derived per copy so that copies of one particle draw different noise from here on.
        """
        counts: dict[int, int] = {}
        out = []
        for a in ancestors:
            src = nodes[a]
            j = counts.get(a, 0)
            counts[a] = j + 1
            lat = src.payload
            copy = lat.clone(derive(lat.key, "copy", j)) if lat is not None else None
            out.append(Node(id=src.id, parent=src.parent, depth=src.depth, preview=src.preview,
                            finished=src.finished, answer=src.answer, payload=copy, cost=Compute(), seed=src.seed))
        return out

    def regenerate(self, node: Node) -> torch.Tensor:
        return regenerate(self.model, self.sampling, self.label, node.payload.recipe)


def _image_of(lat: Latent) -> torch.Tensor:
    return lat.x if lat.finished else lat.x0


def _split_cost(cost: Compute, n: int) -> Compute:
    """One node's share of a batched call's compute."""
    if n <= 0:
        return Compute()
    return Compute(nfe=cost.nfe // n, flops=cost.flops / n, mem_bytes=cost.mem_bytes / n, wall_s=cost.wall_s / n)


# ---- the run -------------------------------------------------------------------------------------------------

class CandidateRun:
    """What the image domains' run objects (``ImageRun``, ``backends.image.t2i.T2IRun``) share. Subclasses are dataclasses
    with ``problem`` (``text``, ``to_dict()``), ``verifier``, ``judge``, ``options`` and ``images_dir``."""

    @property
    def prompt(self) -> str:
        return self.problem.text

    def problem_record(self) -> dict:
        return self.problem.to_dict()

    def preview_dir(self) -> Path | None:
        """The run's own preview folder, named once (None when previews are off)."""
        if self.images_dir is None and self.options["previews"] != "none":
            self.images_dir = images_root() / f"run-{uuid.uuid4().hex[:12]}"
        return self.images_dir

    def candidate_extras(self, space: ImageSpace, result, label, images: Callable[[list[Node]], torch.Tensor],
                         judge: Callable[[list[Node], Callable[[], torch.Tensor]], list[dict]]) -> dict:
        """The result extras: the models' names, the sampling, the preview folder, and every finished candidate of
        ``result`` with its search-verifier score, the judge's fields, its seed, preview and recipe
        (``candidates_judged``), and the chosen candidate's and the mean scores.

        ``images(nodes)`` gives the candidates' final images and is called at most once, only when needed;
        ``judge(nodes, images)`` gives one dict of judge fields per node (``judge_correct`` None: not graded). A
        candidate the search left unscored is scored here, a diagnostic that does not count as search compute."""
        out = {"judge": getattr(self.judge, "name", None), "verifier": getattr(self.verifier, "name", None),
               "sampling": dict(self.options), "images_dir": str(self.images_dir) if self.images_dir else None}
        rows = [r for r in (result.candidates if result else []) if r["id"] in space.finished_nodes]
        if not rows:
            return {**out, "candidates_judged": []}
        nodes = [space.finished_nodes[r["id"]] for r in rows]
        stacked = functools.cache(lambda: images(nodes))
        vscores = [r.get("score") for r in rows]
        if self.verifier is not None and any(v is None for v in vscores):
            fresh, _ = self.verifier.score(stacked(), [label] * len(nodes))
            vscores = [v if v is not None else f for v, f in zip(vscores, fresh)]
        judged = [{"id": r["id"], "verifier_score": v, **j, "seed": n.seed, "preview": n.preview,
                   "recipe": [list(op) for op in n.payload.recipe]}
                  for r, n, v, j in zip(rows, nodes, vscores, judge(nodes, stacked))]
        chosen = next((j for j in judged if result is not None and j["id"] == result.node_id), None)
        scored = [j["verifier_score"] for j in judged if j["verifier_score"] is not None]
        out.update(chosen_verifier_score=chosen["verifier_score"] if chosen else None,
                   chosen_judge_correct=chosen["judge_correct"] if chosen else None,
                   mean_verifier_score=sum(scored) / len(scored) if scored else None, candidates_judged=judged)
        if all(j["judge_correct"] is not None for j in judged):
            out["candidates_judge_accuracy"] = sum(j["judge_correct"] for j in judged) / len(judged)
            out["candidates_correct"] = {j["id"]: j["judge_correct"] for j in judged}
        return out
