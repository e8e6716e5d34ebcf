"""Budget caps, so that a public Space (or a careless sweep) cannot exhaust the machine, and the accelerator whose
FLOPs per byte price memory traffic in eFLOPs (``TTS_FLOPS_PER_BYTE``; H100 by default, see ``strategies.core``)."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from strategies.core import H100_FLOPS_PER_BYTE


def on_space() -> bool:
    return bool(os.environ.get("SPACE_ID")) or os.environ.get("SYSTEM") == "spaces"


@dataclass(frozen=True)
class Limits:
    max_budget: int = 64
    max_problems: int = 500
    max_seeds: int = 5
    max_sweep_runs: int = 20_000
    flops_per_byte: float = H100_FLOPS_PER_BYTE
    # the web app's model downloads (backends.download): the owner's decision on a public Space, so off there
    # unless TTS_ALLOW_DOWNLOADS=1; on by default elsewhere; TTS_ALLOW_DOWNLOADS=0 turns them off anywhere
    allow_downloads: bool = True

    @classmethod
    def from_env(cls) -> "Limits":
        """Caps from TTS_MAX_BUDGET / TTS_MAX_PROBLEMS / TTS_MAX_SEEDS (tighter defaults on a public Space) and
        TTS_ALLOW_DOWNLOADS."""
        base = cls(max_budget=16, max_problems=20, max_seeds=2, max_sweep_runs=400) if on_space() else cls()

        def read(name: str, default: int) -> int:
            raw = os.environ.get(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
            return value

        raw = os.environ.get("TTS_ALLOW_DOWNLOADS")
        if raw is not None and raw not in ("0", "1"):
            raise ValueError(f"TTS_ALLOW_DOWNLOADS must be 0 or 1, got {raw!r}")
        return cls(allow_downloads=raw == "1" if raw is not None else not on_space(),
                   max_budget=read("TTS_MAX_BUDGET", base.max_budget),
                   max_problems=read("TTS_MAX_PROBLEMS", base.max_problems),
                   max_seeds=read("TTS_MAX_SEEDS", base.max_seeds),
                   max_sweep_runs=read("TTS_MAX_SWEEP_RUNS", base.max_sweep_runs),
                   flops_per_byte=check_flops_per_byte(os.environ.get("TTS_FLOPS_PER_BYTE", H100_FLOPS_PER_BYTE),
                                                       "TTS_FLOPS_PER_BYTE"))


def check_flops_per_byte(raw: object, name: str = "FLOPs per byte") -> float:
    """A positive, finite FLOPs-per-byte figure, or a ValueError naming ``name``."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {raw!r}")
    return value
