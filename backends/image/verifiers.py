"""Image verifiers for the digits domain: two CNN classifiers (search verifier and held-out judge) and
attribute rewards written as plain functions.

* ``digit-classifier`` (:class:`SmallCNN`): the search verifier. Its score is P(asked class | image) on
  the predicted clean image x0-hat. Two conv layers with max-pooling and one linear layer; trained on
  split A of ``load_digits`` with one-pixel shifts.
* ``digit-judge`` (:class:`JudgeNet`): the held-out judge that exposes verifier hacking. A different
  architecture (strided convolutions, batch norm, global average pooling, dropout), trained on the
  disjoint split B with a different augmentation (small rotations, scaling, translations and pixel noise).
  Its verdict is "the judge's most likely class is the asked class".
* ``digit-thickness`` and ``digit-centred``: attribute rewards in [0, 1] that ignore the class: the mean
  ink of the image, and how close the ink's centre of mass is to the image centre.

All verifiers take a batch of images ``(B, 1, H, W)`` in [-1, 1] (-1 = background) with the asked class
per image, score the whole batch at once and count the images they evaluate in ``calls``. Weights are
stored as ``model.safetensors`` beside a ``config.json`` that names the architecture, written by
``python -m backends.embedded.digits.train``.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import torch
from torch import nn

from strategies.core import Compute


class SmallCNN(nn.Module):
    """The search verifier's network: conv-pool-conv-pool-linear."""

    def __init__(self, size: int = 16, channels: tuple[int, int] = (16, 32), classes: int = 10) -> None:
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(c2 * (size // 4) ** 2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class JudgeNet(nn.Module):
    """The judge's network: strided convolutions with batch norm, global average pooling, dropout."""

    def __init__(self, size: int = 16, width: int = 32, classes: int = 10) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 5, padding=2), nn.BatchNorm2d(w), nn.GELU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.GELU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.GELU())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(2 * w, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


ARCHITECTURES = {"SmallCNN": SmallCNN, "JudgeNet": JudgeNet}


def build(config: dict) -> nn.Module:
    cls = ARCHITECTURES[config["architecture"]]
    return cls(**config.get("kwargs", {}))


def save(model: nn.Module, folder: Path, config: dict) -> None:
    from safetensors.torch import save_file
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")


class ClassifierVerifier:
    """A trained digit classifier used as a verifier: P(asked class) per image, batched, calls counted."""

    kind = "classifier"

    def __init__(self, folder: str | Path, name: str) -> None:
        from safetensors.torch import load_file
        folder = Path(folder)
        self.name = name
        self.config = json.loads((folder / "config.json").read_text())
        self.model = build(self.config)
        self.model.load_state_dict(load_file(str(folder / "model.safetensors")))
        self.model.eval()
        self.size = int(self.config.get("size", 16))
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.calls = 0
        self._lock = threading.Lock()

    def _fit(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.size:
            images = nn.functional.interpolate(images, size=(self.size, self.size), mode="bilinear",
                                               align_corners=False)
        return images.clamp(-1, 1)

    @torch.inference_mode()
    def probs(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, 10)`` of a batch of images in [-1, 1]."""
        with self._lock:
            self.calls += images.shape[0]
        return torch.softmax(self.model(self._fit(images.float())), dim=-1)

    def score(self, images: torch.Tensor, labels: list[int]) -> tuple[list[float], Compute]:
        """P(label | image) for each image, and the compute spent (one verifier call per image)."""
        started = time.perf_counter()
        p = self.probs(images)
        out = [float(p[i, c]) for i, c in enumerate(labels)]
        cost = Compute(verifier_calls=images.shape[0], wall_s=time.perf_counter() - started)
        return out, cost

    def verdicts(self, images: torch.Tensor, labels: list[int]) -> list[dict]:
        """The judge's view: predicted class, its probability, P(asked class), and whether it matches."""
        p = self.probs(images)
        out = []
        for i, c in enumerate(labels):
            pred = int(p[i].argmax())
            out.append({"predicted": pred, "p_predicted": float(p[i, pred]), "p_asked": float(p[i, c]),
                        "correct": pred == int(c)})
        return out


def ink(images: torch.Tensor) -> torch.Tensor:
    """Ink per pixel in [0, 1] (1 = stroke) from images in [-1, 1]."""
    return ((images.float().clamp(-1, 1) + 1) / 2)


def thickness(images: torch.Tensor) -> torch.Tensor:
    """Stroke thickness as mean ink, rescaled so that typical digits (about 0.1 to 0.5 mean ink) span [0, 1]."""
    return ((ink(images).mean(dim=(1, 2, 3)) - 0.05) / 0.5).clamp(0, 1)


def centredness(images: torch.Tensor) -> torch.Tensor:
    """1 at a perfectly centred ink mass, 0 when the centre of mass sits at a corner."""
    m = ink(images)[:, 0]
    h, w = m.shape[-2:]
    total = m.sum(dim=(1, 2)).clamp_min(1e-6)
    ys = torch.arange(h, dtype=m.dtype).view(1, h, 1)
    xs = torch.arange(w, dtype=m.dtype).view(1, 1, w)
    cy = (m * ys).sum(dim=(1, 2)) / total - (h - 1) / 2
    cx = (m * xs).sum(dim=(1, 2)) / total - (w - 1) / 2
    dist = torch.sqrt(cy ** 2 + cx ** 2) / (((h - 1) / 2) ** 2 + ((w - 1) / 2) ** 2) ** 0.5
    return (1 - dist).clamp(0, 1)


ATTRIBUTES = {"thickness": thickness, "centred": centredness}


class AttributeReward:
    """A plain-function reward on the image (the asked class is ignored): batched, calls counted."""

    kind = "reward"

    def __init__(self, attribute: str, name: str) -> None:
        if attribute not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {attribute!r}; choose one of {', '.join(ATTRIBUTES)}")
        self.name = name
        self.fn = ATTRIBUTES[attribute]
        self.calls = 0

    def score(self, images: torch.Tensor, labels: list[int]) -> tuple[list[float], Compute]:
        started = time.perf_counter()
        self.calls += images.shape[0]
        vals = [float(v) for v in self.fn(images)]
        return vals, Compute(verifier_calls=images.shape[0], wall_s=time.perf_counter() - started)
