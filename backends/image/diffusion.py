"""Sampling a class-conditional diffusion model one denoising step at a time, by DDIM, DDPM or a flow sampler.

The generator is a diffusers ``UNet2DModel`` (class labels, with a null class for classifier-free
guidance) loaded with ``from_pretrained`` beside its scheduler config; the embedded one is ``tiny-digits``
(``python -m backends.embedded.digits.train``). Sampling is our own loop over diffusers' ``DDIMScheduler``
(``eta`` = 0 deterministic, 1 DDPM-like) or ``DDPMScheduler``, configured from the saved config with
``set_timesteps(steps)``, so that every step exposes the latent x_t and the predicted clean image x0-hat.
The flow samplers (``flow_ode``, ``flow_sde``; ``backends.image.flow``) run the same ε-prediction UNet as a flow
model on the linear (rectified-flow) or variance-preserving interpolant, the ODE by Euler and its SDE
conversion by Euler-Maruyama with the diffusion coefficient ``diffusion`` × s².

A :class:`Latent` carries the latent, the steps done and the schedule length, the RNG key of its next
random draw, and its *recipe*, the list of operations that rebuild it from nothing (initial noise seed,
one entry per denoising step with the key of its noise, perturbations and re-noisings with theirs).
:func:`regenerate` replays a recipe, so any candidate can be regenerated exactly.

x0-hat: with the DDIM/DDPM schedulers a latent carries the x0-hat predicted at the step that made it
(from its parent's x_t); with the flow samplers it carries the x0-hat of its own point, evaluated once when
the latent is made (a fresh noise, a perturbed or re-noised latent gets its own when first stepped or
scored), and the next step reuses it, so every candidate is scored on its own x0-hat at one NFE each.

Cost: ``Compute.nfe`` counts UNet evaluations per image (two per step with classifier-free guidance,
one at guidance 1; a full trajectory costs ``steps`` evaluations with every sampler), ``model_calls`` the
batched UNet forwards, ``verifier_calls`` the images a verifier scored, ``flops`` the UNet's measured FLOPs
per evaluation times NFE, ``mem_bytes`` the UNet's weights read once per batched forward (Kinetics' memory
term; a guided batch runs its conditional and unconditional halves in one forward, and activations are not
counted).
"""
from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from backends.image import flow
from backends.errors import InputError
from strategies.core import CancelToken, Compute

NULL_CLASS = 10
CLASSES = 10
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
def check_deterministic(strategy: str, scheduler: str, eta: float, ode: str = "flow_ode") -> None:
    """InputError unless ``strategy``, if it is one of ``DETERMINISTIC_STRATEGIES``, runs on a deterministic sampler:
    DDIM at eta 0, or the domain's flow ODE (``ode``: the digits' flow_ode, t2i's euler)."""
    if strategy in DETERMINISTIC_STRATEGIES and not (scheduler == ode or (scheduler == "ddim" and eta == 0)):
        sampler = f"ddim with eta {eta:g}" if scheduler == "ddim" else scheduler
        raise InputError(f"{strategy} searches near a pivot noise and needs a deterministic sampler "
                         f"(scheduler=ddim with eta=0, or scheduler={ode}), not {sampler}")


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
        self.weight_bytes = sum(p.numel() * p.element_size() for p in unet.parameters())
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
    cost.mem_bytes += model.weight_bytes
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
    cost.mem_bytes += model.weight_bytes
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
