"""The image domain: a class-conditional diffusion model searched one denoising step at a time.

The generator is a diffusers ``UNet2DModel`` (class labels, with a null class for classifier-free
guidance) loaded with ``from_pretrained`` beside its scheduler config; the embedded one is ``tiny-digits``
(``python -m backends.embedded.digits.train``). Sampling is our own loop over diffusers' ``DDIMScheduler``
(``eta`` = 0 deterministic, 1 DDPM-like) or ``DDPMScheduler``, configured from the saved config with
``set_timesteps(steps)``, so that every step exposes the latent x_t and the predicted clean image x0-hat.
The flow samplers (``flow_ode``, ``flow_sde``; ``backends.flow``) run the same ε-prediction UNet as a flow
model on the linear (rectified-flow) or variance-preserving interpolant, the ODE by Euler and its SDE
conversion by Euler-Maruyama with the diffusion coefficient ``diffusion`` × s².

A node's payload is a :class:`Latent`: the latent, the steps done and the schedule length, the RNG key
of its next random draw, and its *recipe*, the list of operations that rebuild it from nothing (initial
noise seed, one entry per denoising step with the key of its noise, perturbations and re-noisings with
theirs). :func:`regenerate` replays a recipe, so any candidate can be regenerated exactly. The prompt
root of a search has no latent (payload ``None``): stepping or completing it draws a fresh, seeded
initial noise per child, which is what makes best-of-N over the root a random search over noises.

x0-hat: with the DDIM/DDPM schedulers a latent carries the x0-hat predicted at the step that made it
(from its parent's x_t); with the flow samplers it carries the x0-hat of its own point, evaluated once when
the latent is made (a fresh noise, a perturbed or re-noised latent gets its own when first stepped or
scored), and the next step reuses it, so every candidate is scored on its own x0-hat at one NFE each.

Cost: ``Compute.nfe`` counts UNet evaluations per image (two per step with classifier-free guidance,
one at guidance 1; a full trajectory costs ``steps`` evaluations with every sampler), ``model_calls`` the batched UNet forwards, ``verifier_calls`` the images a verifier
scored, ``flops`` the UNet's measured FLOPs per evaluation times NFE.

Previews: each node's images are written once, when the node is made, as small PNGs in a run-specific
folder under :func:`images_root`: ``<node>.png`` holds x0-hat (the final image once finished, the noise
itself at step 0) and ``<node>_xt.png`` the latent x_t (steps before the last). ``Node.preview`` is the
path of ``<node>.png``; the prompt root's preview is its text.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import math
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from backends import flow
from backends.errors import InputError
from backends.problem_ids import check_problem_index, resolve_problem_with
from strategies.core import CancelToken, Compute, Node, Score

NULL_CLASS = 10
CLASSES = 10
SPLITS = ("test", "train")
FLOW_SCHEDULERS = ("flow_ode", "flow_sde")
SCHEDULERS = ("ddim", "ddpm") + FLOW_SCHEDULERS
PREVIEWS = ("all", "final", "none")
DEFAULTS = {"steps": 20, "eta": 1.0, "guidance": 1.0, "scheduler": "ddim", "previews": "all",
            "diffusion": 3.0, "interpolant": "linear"}
# strategies that score each candidate on its own x0-hat right after one step: with DDIM/DDPM, siblings
# share their parent's x0-hat, so these need a flow sampler (flow_sde unless the user chose one)
FLOW_ONLY_STRATEGIES = ("rollover_budget_forcing",)
# strategies that search near a pivot noise: with a stochastic sampler a neighbour's image is as far from the
# pivot's as an independent noise's, so these need DDIM with eta 0 (given them unless the user chose) or flow_ode
DETERMINISTIC_STRATEGIES = ("zero_order",)
MAX_STEPS = 1000


def derive(*parts) -> int:
    """A 63-bit seed from any parts (stable across processes, unlike ``hash``)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2 ** 63 - 1)


def gaussian(key: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(key))


def images_root() -> Path:
    """Where run image folders live (TTS_IMAGES_DIR, else a folder in the temp dir): the UI's allowed path."""
    root = Path(os.environ.get("TTS_IMAGES_DIR") or Path(tempfile.gettempdir()) / "tts-explorer-images")
    return root


# ---- the model and one sampler step -------------------------------------------------------------------

class DiffusionModel:
    """A class-conditional UNet with its scheduler config, loaded from a local diffusers folder.

    The folder holds ``unet/`` (``UNet2DModel.save_pretrained``) and ``scheduler/`` (a scheduler config).
    """

    def __init__(self, folder: str | Path, name: str = "") -> None:
        from diffusers import DDPMScheduler, UNet2DModel
        folder = Path(folder)
        self.name = name or folder.name
        self.unet = UNet2DModel.from_pretrained(str(folder / "unet")).eval()
        self.scheduler_config = dict(DDPMScheduler.load_config(str(folder / "scheduler")))
        self._init(self.unet, self.scheduler_config)

    @classmethod
    def from_parts(cls, unet, scheduler_config: dict, name: str = "random") -> "DiffusionModel":
        """A model from an in-memory UNet (tests build a tiny random one)."""
        self = cls.__new__(cls)
        self.name = name
        self.unet = unet.eval()
        self.scheduler_config = dict(scheduler_config)
        self._init(self.unet, self.scheduler_config)
        return self

    def _init(self, unet, scheduler_config: dict) -> None:
        cfg = unet.config
        if getattr(cfg, "num_class_embeds", None) is None or cfg.num_class_embeds < CLASSES + 1:
            raise InputError(f"{self.name} is not class-conditional with a null class (num_class_embeds >= 11)")
        self.shape = (int(cfg.in_channels), int(cfg.sample_size), int(cfg.sample_size))
        self.n_params = sum(p.numel() for p in unet.parameters())
        self.num_train_timesteps = int(scheduler_config["num_train_timesteps"])
        self.evaluations = 0          # UNet evaluations (images), for tests and benchmarks
        self.forward_calls = 0        # batched forwards
        self._schedulers: dict[tuple[str, int], object] = {}
        self._grids: dict[tuple[str, int], flow.FlowGrid] = {}
        self._lock = threading.Lock()
        self.flops_per_eval = self._measure_flops()

    def _measure_flops(self) -> float:
        try:
            from torch.utils.flop_counter import FlopCounterMode
            x = torch.zeros((1, *self.shape))
            with torch.inference_mode(), FlopCounterMode(display=False) as fc:
                self.unet(x, torch.tensor([500]), class_labels=torch.tensor([0]))
            return float(fc.get_total_flops())
        except Exception:  # noqa: BLE001 - FLOPs are informative only
            return 2.0 * self.n_params * self.shape[1] * self.shape[2]

    def scheduler(self, kind: str, steps: int):
        """A diffusers scheduler of ``kind`` with ``set_timesteps(steps)``, from the saved config (cached)."""
        from diffusers import DDIMScheduler, DDPMScheduler
        with self._lock:
            s = self._schedulers.get((kind, steps))
            if s is None:
                cls = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler}[kind]
                s = cls.from_config(self.scheduler_config)
                s.set_timesteps(steps)
                self._schedulers[(kind, steps)] = s
            return s

    def alpha_bar(self, kind: str, steps: int, step: int) -> float:
        """ᾱ at the noise level of a latent that has done ``step`` of ``steps`` denoising steps (1 when clean)."""
        s = self.scheduler(kind, steps)
        if step >= steps:
            return 1.0
        return float(s.alphas_cumprod[int(s.timesteps[step])])

    def flow_grid(self, interpolant: str, steps: int) -> flow.FlowGrid:
        """The flow samplers' time grid of ``steps`` steps on ``interpolant`` (cached)."""
        with self._lock:
            g = self._grids.get((interpolant, steps))
        if g is None:
            g = flow.make_grid(interpolant, steps, self.scheduler("ddpm", 1).alphas_cumprod)
            with self._lock:
                self._grids[(interpolant, steps)] = g
        return g

    def level(self, sampling: "Sampling", steps: int, step: int) -> tuple[float, float]:
        """(signal, noise) scales of a latent after ``step`` of ``steps`` steps: x = signal x0 + noise ε."""
        if sampling.scheduler in FLOW_SCHEDULERS:
            return flow.level(sampling.interpolant, self.flow_grid(sampling.interpolant, steps).times[step])
        a = self.alpha_bar(sampling.scheduler, steps, step)
        return math.sqrt(a), math.sqrt(1 - a)

    @property
    def clip(self) -> float | None:
        """x0-hat clipping range from the scheduler config (None when it does not clip)."""
        if not self.scheduler_config.get("clip_sample", True):
            return None
        return float(self.scheduler_config.get("clip_sample_range", 1.0))

    @torch.inference_mode()
    def eps(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, guidance: float) -> tuple[torch.Tensor, int]:
        """Predicted noise with classifier-free guidance; returns it and the NFE spent (2 per image if guided)."""
        b = x.shape[0]
        if guidance == 1.0:
            out = self.unet(x, t, class_labels=labels).sample
            nfe = b
        else:
            both = self.unet(torch.cat([x, x]), torch.cat([t, t]),
                             class_labels=torch.cat([labels, torch.full_like(labels, NULL_CLASS)])).sample
            cond, uncond = both[:b], both[b:]
            out = uncond + guidance * (cond - uncond)
            nfe = 2 * b
        with self._lock:
            self.evaluations += nfe
            self.forward_calls += 1
        return out, nfe


def x0_formula(x: torch.Tensor, eps: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """x0-hat = (x_t - sqrt(1 - ᾱ_t) ε) / sqrt(ᾱ_t)."""
    return (x - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)


@dataclass
class Sampling:
    """How a space samples: scheduler kind, default schedule length, eta (DDIM), guidance scale, and for the
    flow samplers the diffusion strength (``flow_sde``: g_s = diffusion × s²) and the interpolant."""

    steps: int = 20
    eta: float = 1.0
    guidance: float = 1.0
    scheduler: str = "ddim"
    diffusion: float = 3.0
    interpolant: str = "linear"


@dataclass
class Latent:
    """Everything a particle carries; copying it copies the particle (see :meth:`ImageSpace.resample`)."""

    x: torch.Tensor              # (C, H, W): x_T at step 0, x_t in between, the sample once finished
    step: int                    # denoising steps done
    steps: int                   # length of this trajectory's schedule
    key: int                     # RNG key of the next random draw
    recipe: tuple                # operations that rebuild x from nothing (see regenerate)
    seed: int                    # seed of the initial noise
    x0: torch.Tensor | None = None  # x0-hat predicted at the step that made this latent (None for a noise)

    @property
    def finished(self) -> bool:
        return self.step >= self.steps

    def clone(self, key: int) -> "Latent":
        return Latent(self.x.clone(), self.step, self.steps, key, self.recipe, self.seed,
                      None if self.x0 is None else self.x0.clone())


def denoise(model: DiffusionModel, sampling: Sampling, label: int, latents: list[Latent],
            cancel: CancelToken | None = None) -> tuple[list[Latent], Compute]:
    """One denoising step for every latent (batched through the UNet; one scheduler step per group)."""
    cost = Compute()
    if not latents:
        return [], cost
    if cancel is not None:
        cancel.check()
    if sampling.scheduler in FLOW_SCHEDULERS:
        return _flow_denoise(model, sampling, label, latents, cancel)
    started = time.perf_counter()
    kind = sampling.scheduler
    x = torch.stack([lat.x for lat in latents])
    ts = torch.tensor([int(model.scheduler(kind, lat.steps).timesteps[lat.step]) for lat in latents])
    labels = torch.full((len(latents),), label, dtype=torch.long)
    eps, nfe = model.eps(x, ts, labels, sampling.guidance)
    cost.nfe += nfe
    cost.model_calls += 1
    cost.flops += nfe * model.flops_per_eval
    out: list[Latent | None] = [None] * len(latents)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, lat in enumerate(latents):
        groups.setdefault((lat.steps, lat.step), []).append(i)
    for (steps, step), idx in groups.items():
        sched = model.scheduler(kind, steps)
        t = sched.timesteps[step]
        gens = [torch.Generator().manual_seed(latents[i].key) for i in idx]
        kwargs = {"eta": sampling.eta} if kind == "ddim" else {}
        res = sched.step(eps[idx], t, x[idx], generator=gens, **kwargs)
        for j, i in enumerate(idx):
            lat = latents[i]
            out[i] = Latent(res.prev_sample[j].clone(), lat.step + 1, lat.steps, derive(lat.key, "next"),
                            lat.recipe + (("step", lat.key),), lat.seed, res.pred_original_sample[j].clone())
    cost.wall_s = time.perf_counter() - started
    return out, cost  # type: ignore[return-value]


def flow_predict(model: DiffusionModel, sampling: Sampling, label: int, latents: list[Latent],
                 cancel: CancelToken | None = None) -> Compute:
    """x0-hat at each latent's own point (flow samplers), batched, stored on the latent; returns the cost.

    Stored in place: x0-hat is a deterministic function of the latent's point, so it is a cache of the
    payload, shared by every copy of it.
    """
    cost = Compute()
    todo = [lat for lat in latents if lat.x0 is None and not lat.finished]
    if not todo:
        return cost
    if cancel is not None:
        cancel.check()
    started = time.perf_counter()
    grids = [model.flow_grid(sampling.interpolant, lat.steps) for lat in todo]
    times = [g.times[lat.step] for g, lat in zip(grids, todo)]
    x = torch.stack([flow.ddpm_input(sampling.interpolant, lat.x, s) for lat, s in zip(todo, times)])
    ts = torch.tensor([g.timesteps[lat.step] for g, lat in zip(grids, todo)], dtype=torch.float32)
    eps, nfe = model.eps(x, ts, torch.full((len(todo),), label, dtype=torch.long), sampling.guidance)
    for i, (lat, s) in enumerate(zip(todo, times)):
        lat.x0 = flow.x0_from_eps(sampling.interpolant, lat.x, eps[i], s, model.clip)
    cost.nfe += nfe
    cost.model_calls += 1
    cost.flops += nfe * model.flops_per_eval
    cost.wall_s = time.perf_counter() - started
    return cost


def _flow_denoise(model: DiffusionModel, sampling: Sampling, label: int, latents: list[Latent],
                  cancel: CancelToken | None) -> tuple[list[Latent], Compute]:
    """One flow step per latent: x0-hat where missing, the ODE/SDE step, then x0-hat at each new point."""
    cost = flow_predict(model, sampling, label, latents, cancel)
    started = time.perf_counter()
    out = []
    for lat in latents:
        grid = model.flow_grid(sampling.interpolant, lat.steps)
        s, s_next = grid.times[lat.step], grid.times[lat.step + 1]
        stochastic = sampling.scheduler == "flow_sde"
        g = flow.diffusion_coefficient(sampling.diffusion, s) if stochastic else 0.0
        z = gaussian(lat.key, tuple(lat.x.shape)) if stochastic and s_next > 0 else None
        x = flow.step(sampling.interpolant, lat.x, lat.x0, s, s_next, g, z)
        finished = lat.step + 1 >= lat.steps
        out.append(Latent(x, lat.step + 1, lat.steps, derive(lat.key, "next"), lat.recipe + (("step", lat.key),),
                          lat.seed, x.clone() if finished else None))
    cost.wall_s += time.perf_counter() - started
    cost.add(flow_predict(model, sampling, label, out, cancel))
    return out, cost


def noise_latent(model: DiffusionModel, seed: int, steps: int) -> Latent:
    return Latent(gaussian(seed, model.shape), 0, steps, derive(seed, "step"), (("noise", seed, steps),), seed)


def perturb_latent(lat: Latent, key: int, cosine: float) -> Latent:
    """A point on the sphere of ``lat.x``'s norm at the given cosine to it (a fresh direction from ``key``)."""
    x = lat.x.flatten().double()
    d = gaussian(key, tuple(lat.x.shape)).flatten().double()
    d = d - (d @ x) / (x @ x) * x
    norm = x.norm()
    new = norm * (cosine * x / norm + math.sqrt(max(0.0, 1 - cosine * cosine)) * d / d.norm())
    return Latent(new.float().view_as(lat.x), lat.step, lat.steps, derive(key, "step"),
                  lat.recipe + (("perturb", key, cosine),), lat.seed, None)


def renoise_latent(model: DiffusionModel, sampling: Sampling, lat: Latent, key: int, to_step: int) -> Latent:
    """The forward process from ``lat``'s noise level back to the (noisier) level of step ``to_step``:
    x_to = (a_to / a_from) x + sqrt(s_to² - (a_to / a_from)² s_from²) z for x = a x0 + s ε (DDPM: a = sqrt(ᾱ))."""
    if not 0 <= to_step <= lat.step:
        raise ValueError(f"renoise goes back to an earlier step: {to_step} is not in 0..{lat.step}")
    a_from, s_from = model.level(sampling, lat.steps, lat.step)
    a_to, s_to = model.level(sampling, lat.steps, to_step)
    r = a_to / a_from
    x = r * lat.x + math.sqrt(max(0.0, s_to * s_to - r * r * s_from * s_from)) * gaussian(key, tuple(lat.x.shape))
    return Latent(x, to_step, lat.steps, derive(key, "step"), lat.recipe + (("renoise", key, to_step),),
                  lat.seed, None)


def regenerate(model: DiffusionModel, sampling: Sampling, label: int, recipe: tuple | list) -> torch.Tensor:
    """Rebuild a latent from its recipe, one operation at a time (what makes every candidate reproducible)."""
    lat: Latent | None = None
    for op in recipe:
        name = op[0]
        if name == "noise":
            lat = noise_latent(model, int(op[1]), int(op[2]))
        elif name == "step":
            lat = Latent(lat.x, lat.step, lat.steps, int(op[1]), lat.recipe, lat.seed, lat.x0)
            lat = denoise(model, sampling, label, [lat])[0][0]
        elif name == "perturb":
            lat = perturb_latent(lat, int(op[1]), float(op[2]))
        elif name == "renoise":
            lat = renoise_latent(model, sampling, lat, int(op[1]), int(op[2]))
        else:
            raise ValueError(f"unknown recipe operation {name!r}")
    if lat is None:
        raise ValueError("empty recipe")
    return lat.x


def sample(model: DiffusionModel, sampling: Sampling, labels: list[int], seeds: list[int],
           steps: int | None = None) -> torch.Tensor:
    """Plain batched sampling of one image per (label, seed): the training script's and benchmark's path."""
    steps = steps or sampling.steps
    by_label: dict[int, list[int]] = {}
    for i, c in enumerate(labels):
        by_label.setdefault(c, []).append(i)
    out = torch.empty((len(labels), *model.shape))
    for c, idx in by_label.items():
        lats = [noise_latent(model, seeds[i], steps) for i in idx]
        for _ in range(steps):
            lats, _cost = denoise(model, sampling, c, lats)
        for j, i in enumerate(idx):
            out[i] = lats[j].x
    return out


# ---- previews ----------------------------------------------------------------------------------------------

def to_png(img: torch.Tensor, path: Path, scale: int = 4) -> None:
    from PIL import Image
    a = ((img[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    a = a.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    Image.fromarray(a.numpy(), mode="L").save(path, optimize=False, compress_level=1)


def grid_png(images: torch.Tensor, rows: int, path: Path, scale: int = 3, pad: int = 2) -> None:
    """A grid of images (B, 1, H, W) in [-1, 1], row-major, as one PNG."""
    from PIL import Image
    b, _, h, w = images.shape
    cols = math.ceil(b / rows)
    canvas = torch.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 255, dtype=torch.uint8)
    for i in range(b):
        r, c = divmod(i, cols)
        tile = ((images[i, 0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = tile
    canvas = canvas.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    Image.fromarray(canvas.numpy(), mode="L").save(path)


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

    # -- what a generator family overrides (the text-to-image space of backends/t2i.py subclasses this one) --

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
    return Compute(nfe=cost.nfe // n, flops=cost.flops / n, wall_s=cost.wall_s / n)


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


def parse_options(options: dict | None) -> dict:
    """Validated sampler options: steps, eta, guidance, scheduler, previews, diffusion, interpolant (strings
    allowed)."""
    out = dict(DEFAULTS)
    for name, raw in (options or {}).items():
        if name not in DEFAULTS:
            raise InputError(f"unknown image option {name!r}; known: {', '.join(DEFAULTS)}")
        try:
            if name == "steps":
                v = int(raw)
                if not 1 <= v <= 200:
                    raise InputError("steps must be from 1 to 200")
            elif name == "eta":
                v = float(raw)
                if not 0.0 <= v <= 1.0:
                    raise InputError("eta must be between 0 and 1")
            elif name == "guidance":
                v = float(raw)
                if not 0.0 <= v <= 20.0:
                    raise InputError("guidance must be between 0 and 20")
            elif name == "diffusion":
                v = float(raw)
                if not 0.0 <= v <= 10.0:
                    raise InputError("diffusion must be between 0 and 10")
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

class CandidateRun:
    """What the image domains' run objects (``ImageRun``, ``backends.t2i.T2IRun``) share. Subclasses are dataclasses
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
    from backends import catalog
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
    if config.strategy in DETERMINISTIC_STRATEGIES and not (
            options["scheduler"] == "flow_ode" or (options["scheduler"] == "ddim" and options["eta"] == 0.0)):
        sampler = f"ddim with eta {options['eta']:g}" if options["scheduler"] == "ddim" else options["scheduler"]
        raise InputError(f"{config.strategy} searches near a pivot noise and needs a deterministic sampler "
                         f"(scheduler=ddim with eta=0, or scheduler=flow_ode), not {sampler}")
    model = catalog.load_image_model(config.model)
    verifier = None
    if config.verifier:
        verifier = catalog.load_image_verifier(config.verifier)
    elif uses_verifier:
        raise InputError(f"{config.strategy} needs a verifier; choose one (for example digit-classifier)")
    judge = catalog.load_image_verifier(config.judge or DEFAULT_JUDGE)
    if not hasattr(judge, "verdicts"):
        raise InputError(f"{config.judge} cannot judge: a judge must be a classifier (for example digit-judge)")
    return ImageRun(problem, model, verifier, judge, options)

