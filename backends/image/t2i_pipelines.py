"""Diffusers text-to-image pipelines driven one denoising step at a time by our own loop.

A pipeline folder or hub id (``model_index.json`` plus one folder per component) is loaded with
``DiffusionPipeline.from_pretrained`` (no remote code; the safety checker, feature extractor and image
encoder are left out, and components a repository lacks, such as SD3's T5, are passed as ``None``). Four
families are driven, told apart by the pipeline class the index names:

- ``sd`` (``StableDiffusionPipeline``: UNet2DConditionModel + AutoencoderKL + CLIP text encoder) and
  ``sdxl`` (``StableDiffusionXLPipeline``: two text encoders, pooled embeddings and size ids as added
  conditions): DDIM (``eta``: 0 deterministic, 1 DDPM-like) or DDPM from the pipeline's scheduler config,
  stepped by diffusers' ``step``, which returns x0-hat (``pred_original_sample``) beside x_{t-1};
- ``sd3`` (``StableDiffusion3Pipeline``: SD3Transformer2DModel) and ``flux`` (``FluxPipeline``:
  FluxTransformer2DModel, packed 2x2 latents): flow matching, x_σ = (1 - σ) x0 + σ ε, on the σ grid of the
  pipeline's ``FlowMatchEulerDiscreteScheduler`` (``set_timesteps``, with FLUX's resolution-dependent shift).
  The transformer predicts the velocity v = ε - x0, so x0-hat = x - σ v and ε-hat = x + (1 - σ) v. One step
  from σ to σ' is x' = (1 - σ') x0-hat + σ' (sqrt(1 - η²) ε-hat + η z): at ``eta`` η = 0 this is exactly the
  Euler step x + (σ' - σ) v (what the pipeline's scheduler does), at η = 1 it is diffusers'
  ``stochastic_sampling`` (x0-hat re-noised with fresh noise), in between the fresh share of the noise is η.
  Particle and evolutionary methods need η > 0: with η = 0 resampled copies stay identical. ``flow_sde`` is
  the flow-models paper's SDE conversion on the same grid, the step of ``backends.image.flow`` on the linear
  interpolant (Euler-Maruyama with the score -ε-hat / σ and g = ``diffusion`` × σ²), as the digits sampler uses.

The step is ours, not the scheduler's ``step`` (FlowMatchEuler keeps a step index, which particles at
different steps and resampled copies cannot share); the scheduler gives the schedule. Prompts are encoded by
the pipeline's own ``encode_prompt``. Classifier-free guidance (``sd``, ``sdxl``, ``sd3``, guidance > 1)
evaluates the denoiser on the prompt and on the empty prompt: 2 NFE per image per step. FLUX-dev takes its
guidance as an input of the transformer (1 NFE); FLUX-schnell has none.

Latents are kept as float32 on the CPU in the pipeline's latent space (``(z - shift) x scaling`` of the VAE's
z), unpacked (C, h, w) for every family, so perturbations, recipes and resampling do not depend on the
device; each forward moves the batch to the model's device and dtype (CUDA: bfloat16; CPU: float32).

Images: ``decode`` runs the VAE (``vae.decode(x / scaling + shift)``), batched, to RGB in [-1, 1]; that is
what verifiers see (the final image, or the decoded x0-hat of an intermediate step). Previews of
intermediate steps use a linear latent-to-RGB map instead, fitted once per pipeline on the VAE itself: a
few smooth colour images are encoded, and RGB (pooled to latent resolution) is regressed on the latent
channels by least squares. No per-model table, and any VAE gets one.

Counters: ``evaluations`` (denoiser NFE), ``forward_calls`` (batched forwards), ``decodes`` (images
decoded by the VAE); FLOPs per evaluation and per decode are measured on the first call of each.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

import torch

from backends.image import flow
from backends.errors import InputError
from backends.image.diffusion import Latent, derive, gaussian
from strategies.core import CancelToken, Compute

log = logging.getLogger(__name__)

# pipeline class -> family; guidance is the pipeline's default scale
FAMILIES = {"StableDiffusionPipeline": "sd", "StableDiffusionXLPipeline": "sdxl",
            "StableDiffusion3Pipeline": "sd3", "FluxPipeline": "flux"}
FLOW_FAMILIES = ("sd3", "flux")
DEFAULT_GUIDANCE = {"sd": 7.5, "sdxl": 5.0, "sd3": 7.0, "flux": 3.5}
UNUSED_COMPONENTS = ("safety_checker", "feature_extractor", "image_encoder")
SCHEDULERS = {"sd": ("ddim", "ddpm"), "sdxl": ("ddim", "ddpm"), "sd3": ("euler", "flow_sde"),
              "flux": ("euler", "flow_sde")}
FLOW_STEPS = ("euler", "flow_sde")  # both on the σ grid of FlowMatchEulerDiscreteScheduler


class Pipeline:
    """A loaded text-to-image pipeline: family, denoiser, VAE, schedules, and counters."""

    def __init__(self, source: str, name: str = "", device: str | None = None) -> None:
        import diffusers
        from diffusers import DiffusionPipeline
        self.name = name or source
        index = dict(DiffusionPipeline.load_config(source))
        cls_name = index.get("_class_name", "")
        if cls_name not in FAMILIES:
            raise InputError(f"{self.name} is a {cls_name or 'folder without a pipeline class'}; the text-to-image "
                             f"domain drives {', '.join(FAMILIES)}")
        self.family = FAMILIES[cls_name]
        cls = getattr(diffusers, cls_name)
        expected, _optional = cls._get_signature_keys(cls)
        # components we never call are not loaded; ones a repository lacks (SD3 without T5) are None
        absent = {k: None for k in expected
                  if k in UNUSED_COMPONENTS or not any(v is not None for v in (index.get(k) or [None]))}
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        pipe = cls.from_pretrained(source, dtype=self.dtype, **absent)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(self.device)
        self.denoiser = (pipe.unet if self.family in ("sd", "sdxl") else pipe.transformer).eval()
        self.vae = pipe.vae.eval()
        vcfg = self.vae.config
        self.vae_scale = 2 ** (len(vcfg.block_out_channels) - 1)
        self.scaling = float(vcfg.scaling_factor)
        self.shift = float(getattr(vcfg, "shift_factor", None) or 0.0)
        dcfg = self.denoiser.config
        self.channels = int(dcfg.in_channels) // (4 if self.family == "flux" else 1)
        # FLUX packs 2x2 latent patches; SD3 patchifies inside the transformer: latent sides must be even
        self.size_multiple = self.vae_scale * (2 if self.family in FLOW_FAMILIES else 1)
        sample = getattr(dcfg, "sample_size", None) if self.family != "flux" else None
        self.default_size = int(sample * self.vae_scale) if sample else int(pipe.default_sample_size * self.vae_scale)
        self.scheduler_config = dict(pipe.scheduler.config)
        self.num_train_timesteps = int(self.scheduler_config.get("num_train_timesteps", 1000))
        self.default_guidance = DEFAULT_GUIDANCE[self.family]
        self.n_params = sum(p.numel() for p in self.denoiser.parameters())
        self.weight_bytes = sum(p.numel() * p.element_size() for p in self.denoiser.parameters())
        self.vae_weight_bytes = sum(p.numel() * p.element_size() for p in self.vae.parameters())
        self.evaluations = 0
        self.forward_calls = 0
        self.decodes = 0
        self.flops_per_eval: float | None = None
        self.flops_per_decode: float | None = None
        self._schedules: dict[tuple, object] = {}
        self._embeds: dict[str, dict] = {}
        self._preview_map: torch.Tensor | None = None
        self._lock = threading.RLock()
        log.info("loaded %s: %s family, %.3g M denoiser parameters, %s %s", self.name, self.family,
                 self.n_params / 1e6, self.device, self.dtype)

    # -- sizes and schedules --

    def check_size(self, size: int) -> None:
        if size < self.size_multiple or size % self.size_multiple or size > 4096:
            raise InputError(f"size must be a multiple of {self.size_multiple} up to 4096 for {self.name}")

    def latent_shape(self, size: int) -> tuple[int, int, int]:
        side = size // self.vae_scale
        return (self.channels, side, side)

    def scheduler(self, kind: str, steps: int, size: int):
        """A scheduler of ``kind`` (ddim / ddpm / euler) from the pipeline's config after ``set_timesteps``."""
        kind = "euler" if kind in FLOW_STEPS else kind
        key = (kind, steps, size if self.family == "flux" else 0)
        with self._lock:
            s = self._schedules.get(key)
            if s is not None:
                return s
            from diffusers import DDIMScheduler, DDPMScheduler, FlowMatchEulerDiscreteScheduler
            if kind == "euler":
                s = FlowMatchEulerDiscreteScheduler.from_config(self.scheduler_config)
                if self.scheduler_config.get("use_dynamic_shifting"):  # FLUX: shift grows with the image size
                    import numpy as np
                    from diffusers.pipelines.flux.pipeline_flux import calculate_shift
                    c = self.scheduler_config
                    side = size // self.vae_scale // 2
                    mu = calculate_shift(side * side, c.get("base_image_seq_len", 256),
                                         c.get("max_image_seq_len", 4096), c.get("base_shift", 0.5),
                                         c.get("max_shift", 1.15))
                    s.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
                else:
                    s.set_timesteps(steps)
            else:
                s = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler}[kind].from_config(self.scheduler_config)
                s.set_timesteps(steps)
            self._schedules[key] = s
            return s

    def level(self, kind: str, steps: int, size: int, step: int) -> tuple[float, float]:
        """(signal, noise) scales of a latent after ``step`` of ``steps`` steps: x = a x0 + s ε; (1, 0) when done."""
        if step >= steps:
            return 1.0, 0.0
        s = self.scheduler(kind, steps, size)
        if kind in FLOW_STEPS:
            sigma = float(s.sigmas[step])
            return 1.0 - sigma, sigma
        a = float(s.alphas_cumprod[int(s.timesteps[step])])
        return math.sqrt(a), math.sqrt(1.0 - a)

    # -- prompts and the denoiser --

    @torch.inference_mode()
    def embeddings(self, prompt: str, size: int) -> dict:
        """The prompt's conditioning (``pos``) and the empty prompt's (``neg``; None for FLUX), cached."""
        key = f"{size}\x00{prompt}"
        with self._lock:
            if key in self._embeds:
                return self._embeds[key]
            p, dev = self.pipe, self.device
            if self.family == "sd":
                pe, ne = p.encode_prompt(prompt, dev, 1, True, None)
                out = {"pos": {"encoder_hidden_states": pe}, "neg": {"encoder_hidden_states": ne}}
            elif self.family == "sdxl":
                pe, ne, pp, npp = p.encode_prompt(prompt=prompt, device=dev, num_images_per_prompt=1,
                                                  do_classifier_free_guidance=True)
                proj = p.text_encoder_2.config.projection_dim if p.text_encoder_2 is not None else pp.shape[-1]
                ids = p._get_add_time_ids((size, size), (0, 0), (size, size), dtype=pe.dtype,
                                          text_encoder_projection_dim=int(proj)).to(dev)
                out = {"pos": {"encoder_hidden_states": pe, "text_embeds": pp, "time_ids": ids},
                       "neg": {"encoder_hidden_states": ne, "text_embeds": npp, "time_ids": ids}}
            elif self.family == "sd3":
                pe, ne, pp, npp = p.encode_prompt(prompt=prompt, prompt_2=None, prompt_3=None, device=dev,
                                                  do_classifier_free_guidance=True)
                out = {"pos": {"encoder_hidden_states": pe, "pooled_projections": pp},
                       "neg": {"encoder_hidden_states": ne, "pooled_projections": npp}}
            else:
                pe, pp, text_ids = p.encode_prompt(prompt=prompt, prompt_2=None, device=dev)
                out = {"pos": {"encoder_hidden_states": pe, "pooled_projections": pp}, "neg": None,
                       "txt_ids": text_ids}
            self._embeds[key] = out
            return out

    def guided(self, guidance: float) -> bool:
        """Whether a step runs classifier-free guidance (two evaluations per image): above 1, as the pipelines do."""
        return self.family != "flux" and guidance > 1.0

    def _forward(self, x: torch.Tensor, t: torch.Tensor, cond: dict, emb: dict, guidance: float) -> torch.Tensor:
        if self.family == "sd":
            return self.denoiser(x, t, encoder_hidden_states=cond["encoder_hidden_states"]).sample
        if self.family == "sdxl":
            return self.denoiser(x, t, encoder_hidden_states=cond["encoder_hidden_states"],
                                 added_cond_kwargs={"text_embeds": cond["text_embeds"],
                                                    "time_ids": cond["time_ids"]}).sample
        if self.family == "sd3":
            return self.denoiser(hidden_states=x, timestep=t, encoder_hidden_states=cond["encoder_hidden_states"],
                                 pooled_projections=cond["pooled_projections"]).sample
        b, c, h, w = x.shape
        packed = self.pipe._pack_latents(x, b, c, h, w)
        img_ids = self.pipe._prepare_latent_image_ids(b, h // 2, w // 2, x.device, x.dtype)
        g = torch.full((b,), guidance, device=x.device, dtype=torch.float32) \
            if self.denoiser.config.guidance_embeds else None
        out = self.denoiser(hidden_states=packed, timestep=t / 1000, guidance=g,
                            pooled_projections=cond["pooled_projections"],
                            encoder_hidden_states=cond["encoder_hidden_states"], txt_ids=emb["txt_ids"],
                            img_ids=img_ids).sample
        return self.pipe._unpack_latents(out, h * self.vae_scale, w * self.vae_scale, self.vae_scale)

    @torch.inference_mode()
    def predict(self, x: torch.Tensor, t: torch.Tensor, emb: dict, guidance: float) -> tuple[torch.Tensor, int]:
        """The denoiser's output (ε, v or velocity, as the family predicts) for a batch, guided; (float32 CPU, NFE)."""
        b = x.shape[0]
        guided = self.guided(guidance)
        xs = x.to(self.device, self.dtype)
        ts = t.to(self.device)
        if guided:
            xs, ts = torch.cat([xs, xs]), torch.cat([ts, ts])
            cond = {k: torch.cat([emb["neg"][k].expand(b, *emb["neg"][k].shape[1:]),
                                  v.expand(b, *v.shape[1:])]) for k, v in emb["pos"].items()}
        else:
            cond = {k: v.expand(b, *v.shape[1:]) for k, v in emb["pos"].items()}
        nfe = 2 * b if guided else b
        if self.flops_per_eval is None:
            from torch.utils.flop_counter import FlopCounterMode
            with FlopCounterMode(display=False) as fc:
                out = self._forward(xs, ts, cond, emb, guidance)
            self.flops_per_eval = float(fc.get_total_flops()) / nfe
        else:
            out = self._forward(xs, ts, cond, emb, guidance)
        out = out.float()
        if guided:
            uncond, c = out[:b], out[b:]
            out = uncond + guidance * (c - uncond)
        with self._lock:
            self.evaluations += nfe
            self.forward_calls += 1
        return out.cpu(), nfe

    # -- images --

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor, chunk: int = 8) -> tuple[torch.Tensor, float, float]:
        """VAE decode of latents (B, C, h, w) to RGB (B, 3, H, W) in [-1, 1], float32 CPU; returns the FLOPs and
        the memory bytes (the VAE's weights once per chunk's forward)."""
        outs = []
        flops = 0.0
        mem = 0.0
        for i in range(0, latents.shape[0], chunk):
            z = (latents[i:i + chunk] / self.scaling + self.shift).to(self.device, self.vae.dtype)
            if self.flops_per_decode is None:
                from torch.utils.flop_counter import FlopCounterMode
                with FlopCounterMode(display=False) as fc:
                    img = self.vae.decode(z).sample
                self.flops_per_decode = float(fc.get_total_flops()) / z.shape[0]
            else:
                img = self.vae.decode(z).sample
            outs.append(img.float().clamp(-1, 1).cpu())
            flops += self.flops_per_decode * z.shape[0]
            mem += self.vae_weight_bytes
        with self._lock:
            self.decodes += latents.shape[0]
        return torch.cat(outs), flops, mem

    @torch.inference_mode()
    def preview_map(self) -> torch.Tensor:
        """The linear latent-to-RGB map ``(C + 1, 3)`` (last row: bias), fitted once on the VAE (see the docstring)."""
        with self._lock:
            if self._preview_map is not None:
                return self._preview_map
            side = 8 * self.vae_scale
            g = torch.Generator().manual_seed(0)
            # smooth colour fields (random 3x3 colours, bilinear) and flat colours: natural-image-like statistics
            coarse = torch.rand((12, 3, 3, 3), generator=g) * 2 - 1
            coarse[:4] = coarse[:4, :, :1, :1].expand(4, 3, 3, 3)
            images = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=True)
            z = self.vae.encode(images.to(self.device, self.vae.dtype)).latent_dist.mean.float().cpu()
            lat = (z - self.shift) * self.scaling
            rgb = torch.nn.functional.avg_pool2d(images, self.vae_scale)
            a = torch.cat([lat.permute(0, 2, 3, 1).reshape(-1, lat.shape[1]), torch.ones(lat[:, :1].numel(), 1)], 1)
            self._preview_map = torch.linalg.lstsq(a, rgb.permute(0, 2, 3, 1).reshape(-1, 3)).solution
            return self._preview_map

    def preview(self, latent: torch.Tensor) -> torch.Tensor:
        """A cheap RGB view (3, h, w) in [-1, 1] of a latent (C, h, w): the fitted linear map, no VAE."""
        m = self.preview_map()
        return (torch.einsum("chw,cd->dhw", latent.float(), m[:-1]) + m[-1].view(3, 1, 1)).clamp(-1, 1)


@dataclass
class T2ISampling:
    """How a text-to-image space samples: scheduler (ddim / ddpm / euler / flow_sde), steps, eta, guidance,
    image size, and the SDE's diffusion strength (``flow_sde``)."""

    steps: int = 30
    eta: float = 1.0
    guidance: float = 7.5
    scheduler: str = "ddim"
    size: int = 512
    diffusion: float = 3.0


class PromptGenerator:
    """A pipeline bound to one prompt and one sampling setup: what :class:`backends.image.t2i.T2ISpace` steps.

    It offers what ``ImageSpace`` reads of its model (``shape``, ``num_train_timesteps``) and the family's
    one-step ``denoise`` and ``renoise``.
    """

    def __init__(self, pipeline: Pipeline, prompt: str, sampling: T2ISampling) -> None:
        self.pipeline = pipeline
        self.prompt = prompt
        self.sampling = sampling
        self.shape = pipeline.latent_shape(sampling.size)
        self.num_train_timesteps = pipeline.num_train_timesteps
        self.emb = pipeline.embeddings(prompt, sampling.size)

    def _sched(self, steps: int):
        return self.pipeline.scheduler(self.sampling.scheduler, steps, self.sampling.size)

    def level(self, steps: int, step: int) -> tuple[float, float]:
        return self.pipeline.level(self.sampling.scheduler, steps, self.sampling.size, step)

    def denoise(self, latents: list[Latent], cancel: CancelToken | None = None) -> tuple[list[Latent], Compute]:
        """One denoising step for every latent, batched through the denoiser; each keeps the x0-hat of its step."""
        cost = Compute()
        if not latents:
            return [], cost
        if cancel is not None:
            cancel.check()
        started = time.perf_counter()
        p, s = self.pipeline, self.sampling
        x = torch.stack([lat.x for lat in latents])
        ts = torch.tensor([float(self._sched(lat.steps).timesteps[lat.step]) for lat in latents])
        out, nfe = p.predict(x, ts, self.emb, s.guidance)
        cost.nfe, cost.model_calls, cost.flops = nfe, 1, nfe * (p.flops_per_eval or 0.0)
        cost.mem_bytes = float(p.weight_bytes)  # the denoiser's weights, once per batched forward
        nxt: list[Latent | None] = [None] * len(latents)
        if s.scheduler in FLOW_STEPS:
            for i, lat in enumerate(latents):
                sig = self.level(lat.steps, lat.step)[1]
                sig_next = self.level(lat.steps, lat.step + 1)[1]
                x0 = x[i] - sig * out[i]
                if s.scheduler == "flow_sde":
                    z = gaussian(lat.key, tuple(lat.x.shape)) if sig_next > 0 else None
                    g = flow.diffusion_coefficient(s.diffusion, sig)
                    nxt[i] = self._next(lat, flow.step("linear", x[i], x0, sig, sig_next, g, z), x0)
                    continue
                eps = x[i] + (1.0 - sig) * out[i]
                if s.eta > 0 and sig_next > 0:
                    eps = math.sqrt(1.0 - s.eta ** 2) * eps + s.eta * gaussian(lat.key, tuple(lat.x.shape))
                nxt[i] = self._next(lat, (1.0 - sig_next) * x0 + sig_next * eps, x0)
        else:
            groups: dict[tuple[int, int], list[int]] = {}
            for i, lat in enumerate(latents):
                groups.setdefault((lat.steps, lat.step), []).append(i)
            for (steps, step), idx in groups.items():
                sched = self._sched(steps)
                gens = [torch.Generator().manual_seed(latents[i].key) for i in idx]
                kwargs = {"eta": s.eta} if s.scheduler == "ddim" else {}
                res = sched.step(out[idx], sched.timesteps[step], x[idx], generator=gens, **kwargs)
                for j, i in enumerate(idx):
                    nxt[i] = self._next(latents[i], res.prev_sample[j], res.pred_original_sample[j])
        cost.wall_s = time.perf_counter() - started
        return nxt, cost  # type: ignore[return-value]

    @staticmethod
    def _next(lat: Latent, x: torch.Tensor, x0: torch.Tensor) -> Latent:
        return Latent(x.clone(), lat.step + 1, lat.steps, derive(lat.key, "next"), lat.recipe + (("step", lat.key),),
                      lat.seed, x0.clone())

    def renoise(self, lat: Latent, key: int, to_step: int) -> Latent:
        """The forward process back to the noise level of ``to_step``: x' = r x + sqrt(s'² - r² s²) z, r = a'/a."""
        if not 0 <= to_step <= lat.step:
            raise ValueError(f"renoise goes back to an earlier step: {to_step} is not in 0..{lat.step}")
        a, s = self.level(lat.steps, lat.step)
        a2, s2 = self.level(lat.steps, to_step)
        if a == 0.0:  # pure noise (a flow latent at σ = 1) can only stay where it is
            x = lat.x.clone()
        else:
            r = a2 / a
            x = r * lat.x + math.sqrt(max(0.0, s2 * s2 - r * r * s * s)) * gaussian(key, tuple(lat.x.shape))
        return Latent(x, to_step, lat.steps, derive(key, "step"), lat.recipe + (("renoise", key, to_step),),
                      lat.seed, None)
