"""The flow view of an epsilon-prediction diffusion model: an ODE sampler and its SDE conversion.

Follows "Inference-Time Scaling for Flow Models via Stochastic Generation and Rollover Budget Forcing"
(Kim et al.), sections on inference-time SDE conversion and interpolant conversion, applied to a model
that was trained as a DDPM (no new training): the embedded ``tiny-digits`` UNet predicts the noise.

Interpolants (time s in [0, 1], s = 0 data, s = 1 noise): x_s = α_s x0 + σ_s ε with

- ``linear`` (rectified flow, what flow models are trained on): α_s = 1 - s, σ_s = s;
- ``vp`` (variance preserving, the paper's interpolant conversion): α_s = exp(-¼ s² (β_max - β_min) - ½ s β_min),
  σ_s = sqrt(1 - α_s²), with the VP-SDE's β_min = 0.1, β_max = 20.

Reparameterisation: a point x_s has the signal-to-noise ratio α_s² / σ_s², the same as DDPM's
ᾱ / (1 - ᾱ) at ᾱ = α_s² / (α_s² + σ_s²), and x_s / sqrt(α_s² + σ_s²) is distributed like the DDPM latent at
that ᾱ. The UNet is evaluated there, at the (fractional) DDPM timestep whose ᾱ matches (log-SNR interpolated
between the trained integer timesteps), and gives ε-hat; x0-hat = (x_s - σ_s ε-hat) / α_s, clipped as the
model's scheduler config says (``clip_sample``). ε-hat is then recomputed from the clipped x0-hat, so the pair
is consistent with x_s: the velocity u = α'_s x0-hat + σ'_s ε-hat and the score ∇log p_s(x) = -ε-hat / σ_s.

Samplers, from s to s - Δ (Δ > 0):

- ``flow_ode``: Euler on the velocity, x ← x - Δ u (deterministic: a point has exactly one future);
- ``flow_sde``: Euler-Maruyama on the reverse SDE with the same marginals (the paper's Proposition 1),
  dx = [u - ½ g_s² ∇log p_s] ds + g_s dw, so x ← x - Δ (u - ½ g_s² ∇log p_s) + g_s sqrt(Δ) z, with the
  paper's diffusion coefficient g_s = ``diffusion`` × s² (the paper uses a scale of 3).

Choices where the paper is silent, or that our model forces:

- the time grid is uniform in the interpolant's own time, from s_max down to 0, where s_max is the largest
  s whose noise level the UNet was trained on (ᾱ of its last timestep); the sampler starts from a standard
  Gaussian there (σ_s_max is 1 to four decimals), as a DDPM sampler starts from pure noise;
- the last step (to s = 0) returns x0-hat itself, without noise, for both samplers (the Tweedie estimate the
  paper also returns);
- every point's x0-hat is evaluated once, at that point: a candidate x_{s-Δ} costs one NFE, the evaluation
  that scores it and also gives the velocity of its next step (the official code reuses it the same way).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

INTERPOLANTS = ("linear", "vp")
VP_BETA_MIN = 0.1
VP_BETA_MAX = 20.0


def alpha_sigma(interpolant: str, s: float) -> tuple[float, float, float, float]:
    """(α_s, σ_s, dα/ds, dσ/ds) of the interpolant at time s."""
    if interpolant == "linear":
        return 1.0 - s, s, -1.0, 1.0
    if interpolant == "vp":
        log_a = -0.25 * s * s * (VP_BETA_MAX - VP_BETA_MIN) - 0.5 * s * VP_BETA_MIN
        a = math.exp(log_a)
        da = a * (-0.5 * s * (VP_BETA_MAX - VP_BETA_MIN) - 0.5 * VP_BETA_MIN)
        sig = math.sqrt(max(0.0, 1.0 - a * a))
        dsig = -a * da / sig if sig > 0 else float("inf")
        return a, sig, da, dsig
    raise ValueError(f"unknown interpolant {interpolant!r}; choose one of {', '.join(INTERPOLANTS)}")


def snr_alpha_bar(interpolant: str, s: float) -> float:
    """The DDPM ᾱ with the same signal-to-noise ratio as the interpolant at s."""
    a, sig, _, _ = alpha_sigma(interpolant, s)
    return a * a / (a * a + sig * sig)


@dataclass(frozen=True)
class FlowGrid:
    """A sampling schedule in interpolant time: ``times[0] = s_max`` > ... > ``times[steps] = 0``, and for each
    point before the last the DDPM timestep (fractional) at which the UNet is evaluated."""

    interpolant: str
    times: tuple[float, ...]
    timesteps: tuple[float, ...]

    @property
    def steps(self) -> int:
        return len(self.times) - 1


def ddpm_timestep(alphas_cumprod: torch.Tensor, alpha_bar: float) -> float:
    """The fractional DDPM timestep whose ᾱ equals ``alpha_bar``: log-SNR interpolated between the trained
    integer timesteps, clamped to the trained range."""
    ac = alphas_cumprod.double()
    lam = torch.log(ac / (1 - ac))                     # decreasing in the timestep
    target = math.log(alpha_bar / (1 - alpha_bar)) if 0 < alpha_bar < 1 else (math.inf if alpha_bar >= 1 else -math.inf)
    if target >= float(lam[0]):
        return 0.0
    if target <= float(lam[-1]):
        return float(len(ac) - 1)
    hi = int(torch.searchsorted(-lam, torch.tensor([-target], dtype=torch.float64)).item())  # first k with lam_k <= target
    lo = hi - 1
    frac = (float(lam[lo]) - target) / (float(lam[lo]) - float(lam[hi]))
    return lo + frac


def s_max(interpolant: str, alphas_cumprod: torch.Tensor) -> float:
    """The largest s in (0, 1] whose noise level the model was trained on (ᾱ of the last timestep), by bisection."""
    floor = float(alphas_cumprod[-1])
    if snr_alpha_bar(interpolant, 1.0) >= floor:
        return 1.0
    lo, hi = 0.0, 1.0  # snr_alpha_bar decreases in s: ᾱ(lo) >= floor > ᾱ(hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if snr_alpha_bar(interpolant, mid) >= floor:
            lo = mid
        else:
            hi = mid
    return lo


def make_grid(interpolant: str, steps: int, alphas_cumprod: torch.Tensor,
              times: list[float] | None = None) -> FlowGrid:
    """The uniform grid of ``steps`` steps from s_max to 0 (or the given ``times``, for tests)."""
    if times is None:
        top = s_max(interpolant, alphas_cumprod)
        times = [top * (1 - i / steps) for i in range(steps)] + [0.0]
    if len(times) != steps + 1 or times[-1] != 0.0 or any(b >= a for a, b in zip(times, times[1:])):
        raise ValueError("a flow grid decreases strictly to 0 in steps + 1 points")
    ts = tuple(ddpm_timestep(alphas_cumprod, snr_alpha_bar(interpolant, s)) for s in times[:-1])
    return FlowGrid(interpolant, tuple(float(s) for s in times), ts)


def ddpm_input(interpolant: str, x: torch.Tensor, s: float) -> torch.Tensor:
    """The DDPM latent with the same SNR as the interpolant point x at time s."""
    a, sig, _, _ = alpha_sigma(interpolant, s)
    return x / math.sqrt(a * a + sig * sig)


def x0_from_eps(interpolant: str, x: torch.Tensor, eps: torch.Tensor, s: float,
                clip: float | None) -> torch.Tensor:
    """x0-hat = (x_s - σ_s ε-hat) / α_s, clipped to [-clip, clip] when the model's config clips."""
    a, sig, _, _ = alpha_sigma(interpolant, s)
    x0 = (x - sig * eps) / a
    return x0.clamp(-clip, clip) if clip is not None else x0


def step(interpolant: str, x: torch.Tensor, x0: torch.Tensor, s: float, s_next: float, g: float,
         noise: torch.Tensor | None) -> torch.Tensor:
    """One Euler (``noise`` None or g = 0) or Euler-Maruyama step from s to s_next < s, given x0-hat at x."""
    if s_next <= 0.0:
        return x0.clone()
    a, sig, da, dsig = alpha_sigma(interpolant, s)
    eps = (x - a * x0) / sig                # consistent with the (clipped) x0-hat
    u = da * x0 + dsig * eps                # velocity dx/ds
    dt = s - s_next
    if noise is None or g == 0.0:
        return x - dt * u
    score = -eps / sig
    return x - dt * (u - 0.5 * g * g * score) + g * math.sqrt(dt) * noise


def diffusion_coefficient(strength: float, s: float) -> float:
    """g_s = strength × s² (the paper's schedule; strength 3 in its experiments)."""
    return strength * s * s


def level(interpolant: str, s: float) -> tuple[float, float]:
    """(α_s, σ_s): what the forward process (re-noising) needs."""
    a, sig, _, _ = alpha_sigma(interpolant, s)
    return a, sig
