"""Verifiers for the text-to-image domain: CLIP score, a LAION-style aesthetic predictor, and ImageReward and
HPS v2 where their packages are installed.

All take a batch of RGB images ``(B, 3, H, W)`` in [-1, 1] with the prompt of each image, score the whole
batch at once, count the images they score in ``calls`` (and ``verifier_calls`` of the returned compute),
and carry a ``pass_mark``: the score at which a held-out judge calls an image good, so any of them can
judge another's search (``backends.image.t2i``).

- :class:`CLIPScore`: cosine of the CLIP image embedding and the prompt's text embedding (transformers
  ``CLIPModel`` and its processor; both embeddings are the projected ones, L2-normalised). The raw cosine,
  not the 100 x max(cos, 0) of the CLIPScore paper: FK steering's λ is then on the cosine's scale (matching
  pairs sit around 0.25-0.35 for ViT-L/14). Pass mark 0.25.
- :class:`AestheticScore`: the LAION aesthetic predictor format: an MLP head (the improved-aesthetic-predictor
  ``sac+logos+ava1-l14-linearMSE`` layout: Linear 768-1024-128-64-16-1, dropout between, no activations) or a
  single linear layer (the first LAION predictor), on L2-normalised CLIP image embeddings; scores about 1-10.
  A folder holds ``config.json`` (``{"clip": <hub id or folder>, "head": <file>}``) and the head's weights
  (``.safetensors``, or the published ``.pth`` read with ``weights_only=True``). Pass mark 5 (LAION's
  "aesthetic" subsets start there).
- :class:`VLMJudge`: a vision-language model as a generative verifier (``backends.text.judge``'s verdict parsing
  and aggregation over k sampled critiques); scores in [0, 1], pass mark 0.5.
- :class:`ImageRewardScore` (package ``image-reward``) and :class:`HPSScore` (package ``hpsv2``): the
  packages' own loaders and scorers; pass marks 0 (ImageReward is standardised on its training set) and 0.25.
"""
from __future__ import annotations

import functools
import json
import threading
import time
from pathlib import Path

import torch
from torch import nn

from strategies.core import Compute

def to_pil(images: torch.Tensor) -> list:
    """RGB tensors in [-1, 1] as PIL images (what processors and the scorer packages read)."""
    from PIL import Image
    arr = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a, mode="RGB") for a in arr]


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.lru_cache(maxsize=4)
def load_clip(source: str):
    """A CLIPModel and its processor from a hub id or folder (shared by the CLIP score and aesthetic heads)."""
    from transformers import CLIPModel, CLIPProcessor
    model = CLIPModel.from_pretrained(source).to(_device()).eval()
    return model, CLIPProcessor.from_pretrained(source)


def _embedding(out) -> torch.Tensor:
    """The projected embedding from ``get_*_features`` (a tensor, or an output whose pooler_output it is)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class _Counted:
    """Call counting shared by the verifiers."""

    name = ""
    pass_mark = 0.0
    kind = "reward"

    def _count(self, n: int, started: float) -> Compute:
        with self._lock:
            self.calls += n
        return Compute(verifier_calls=n, wall_s=time.perf_counter() - started)


class CLIPScore(_Counted):
    """Cosine similarity of CLIP image and prompt embeddings (see the module docstring)."""

    pass_mark = 0.25

    def __init__(self, source: str, name: str) -> None:
        self.name = name
        self.model, self.processor = load_clip(source)
        self.calls = 0
        self._lock = threading.Lock()
        self._text: dict[str, torch.Tensor] = {}

    @torch.inference_mode()
    def image_embeds(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised projected image embeddings ``(B, D)``."""
        pixels = self.processor(images=to_pil(images), return_tensors="pt")["pixel_values"]
        emb = _embedding(self.model.get_image_features(pixel_values=pixels.to(self.model.device))).float().cpu()
        return emb / emb.norm(dim=-1, keepdim=True)

    @torch.inference_mode()
    def text_embeds(self, prompts: list[str]) -> torch.Tensor:
        """L2-normalised projected text embeddings ``(B, D)``, cached per prompt."""
        todo = list(dict.fromkeys(p for p in prompts if p not in self._text))
        if todo:
            tok = self.processor(text=todo, return_tensors="pt", padding=True, truncation=True)
            tok = {k: v.to(self.model.device) for k, v in tok.items()}
            emb = _embedding(self.model.get_text_features(**tok)).float().cpu()
            for p, e in zip(todo, emb / emb.norm(dim=-1, keepdim=True)):
                self._text[p] = e
        return torch.stack([self._text[p] for p in prompts])

    def score(self, images: torch.Tensor, prompts: list[str]) -> tuple[list[float], Compute]:
        started = time.perf_counter()
        cos = (self.image_embeds(images) * self.text_embeds(list(prompts))).sum(-1)
        return [float(c) for c in cos], self._count(images.shape[0], started)


class AestheticHead(nn.Module):
    """The LAION aesthetic head: the improved-aesthetic-predictor MLP, or one linear layer (``linear=True``)."""

    def __init__(self, dim: int = 768, linear: bool = False) -> None:
        super().__init__()
        self.linear = linear
        if linear:
            self.layers = nn.Sequential(nn.Linear(dim, 1))
        else:
            self.layers = nn.Sequential(nn.Linear(dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                                        nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(-1)


def load_head(path: Path) -> AestheticHead:
    """A head from ``.safetensors`` or the published ``.pth`` state dicts (MLP keys ``layers.N.*``; a bare
    linear layer has ``weight``/``bias``)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    if set(state) == {"weight", "bias"}:
        state = {f"layers.0.{k}": v for k, v in state.items()}
    linear = "layers.2.weight" not in state
    head = AestheticHead(int(state["layers.0.weight"].shape[1]), linear=linear)
    head.load_state_dict(state)
    return head.eval()


def save_aesthetic(folder: Path, head: AestheticHead, clip: str) -> None:
    """Write an aesthetic folder: the head as safetensors and a config naming its CLIP."""
    from safetensors.torch import save_file
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(folder / "head.safetensors"))
    (folder / "config.json").write_text(json.dumps({"architecture": "laion-aesthetic", "clip": clip,
                                                    "head": "head.safetensors"}, indent=2) + "\n")


class AestheticScore(_Counted):
    """An aesthetic head on L2-normalised CLIP image embeddings; the prompt is ignored."""

    pass_mark = 5.0

    def __init__(self, folder: str | Path, name: str) -> None:
        folder = Path(folder)
        cfg = json.loads((folder / "config.json").read_text())
        clip = cfg["clip"]
        if (folder / clip).is_dir():  # a CLIP folder given relative to the aesthetic folder
            clip = str(folder / clip)
        self.name = name
        self.clip = CLIPScore(clip, name=f"{name}/clip")
        self.head = load_head(folder / cfg["head"])
        self.calls = 0
        self._lock = threading.Lock()

    @torch.inference_mode()
    def score(self, images: torch.Tensor, prompts: list[str]) -> tuple[list[float], Compute]:
        started = time.perf_counter()
        values = self.head(self.clip.image_embeds(images))
        return [float(v) for v in values], self._count(images.shape[0], started)


class ImageRewardScore(_Counted):
    """ImageReward (Xu et al.) through the ``image-reward`` package; its checkpoint comes from its own loader."""

    pass_mark = 0.0

    def __init__(self, version: str, name: str) -> None:
        import ImageReward as RM
        self.name = name
        self.model = RM.load(version, device=_device())
        self.calls = 0
        self._lock = threading.Lock()

    @torch.inference_mode()
    def score(self, images: torch.Tensor, prompts: list[str]) -> tuple[list[float], Compute]:
        started = time.perf_counter()
        pils = to_pil(images)
        out: list[float] = [0.0] * len(pils)
        for prompt in dict.fromkeys(prompts):  # one batched call per distinct prompt
            idx = [i for i, p in enumerate(prompts) if p == prompt]
            vals = self.model.score(prompt, [pils[i] for i in idx])
            vals = vals if isinstance(vals, list) else [vals]
            for i, v in zip(idx, vals):
                out[i] = float(v)
        return out, self._count(len(pils), started)


class HPSScore(_Counted):
    """Human Preference Score v2 through the ``hpsv2`` package (``hpsv2.score``)."""

    pass_mark = 0.25

    def __init__(self, version: str, name: str) -> None:
        import hpsv2
        self.name = name
        self.version = version
        self._score = hpsv2.score
        self.calls = 0
        self._lock = threading.Lock()

    def score(self, images: torch.Tensor, prompts: list[str]) -> tuple[list[float], Compute]:
        started = time.perf_counter()
        pils = to_pil(images)
        out: list[float] = [0.0] * len(pils)
        for prompt in dict.fromkeys(prompts):
            idx = [i for i, p in enumerate(prompts) if p == prompt]
            vals = self._score([pils[i] for i in idx], prompt, hps_version=self.version)
            for i, v in zip(idx, vals):
                out[i] = float(v)
        return out, self._count(len(pils), started)


VLM_TEMPLATE = (
    "Does this image match the description \"{prompt}\"? Check the objects, colours, counts, positions and any "
    "written text. Write a short critique, then end with exactly one line, either \"Verdict: yes\" or "
    "\"Verdict: no\".")


class VLMJudge(_Counted):
    """A vision-language model as a generative verifier: ``k`` sampled critiques ending in a verdict per image.

    The image-side twin of ``backends.text.judge.LLMJudge``, with its verdict parser and aggregation rules: the model
    (``AutoModelForImageTextToText`` with its processor and chat template, no remote code) is shown the image
    and ``VLM_TEMPLATE``; ``parse_verdict`` reads yes/no (or a score out of 10) from each sample, and ``rule``
    (vote / mean / min) turns the ``k`` values into the score; all-abstain gives 0.5. Sampling is seeded per
    call, so a run is reproducible. Cost: ``verifier_calls`` counts images judged, ``verifier_tokens`` the
    prompt tokens times ``k`` plus every generated token. ``last_judgments`` keeps the texts for display.
    """

    pass_mark = 0.5

    def __init__(self, source: str, name: str, k: int = 4, rule: str = "mean", temperature: float = 0.7,
                 max_new_tokens: int = 128, seed: int = 0) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from backends.text.judge import RULES
        if rule not in RULES:
            raise ValueError(f"unknown judge rule {rule!r}; choose one of {', '.join(RULES)}")
        self.name = name
        self.k, self.rule, self.temperature, self.max_new_tokens, self.seed = k, rule, temperature, max_new_tokens, seed
        self.processor = AutoProcessor.from_pretrained(source)
        self.processor.tokenizer.padding_side = "left"  # batched generation continues every row at its end
        dtype = torch.bfloat16 if _device() == "cuda" else torch.float32
        self.model = AutoModelForImageTextToText.from_pretrained(source, dtype=dtype).to(_device()).eval()
        self.calls = 0
        self._lock = threading.Lock()
        self.last_judgments: list[list[str]] = []

    def _chat(self, prompt: str) -> str:
        messages = [{"role": "user", "content": [{"type": "image"},
                                                 {"type": "text", "text": VLM_TEMPLATE.format(prompt=prompt)}]}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    @torch.inference_mode()
    def score(self, images: torch.Tensor, prompts: list[str]) -> tuple[list[float], Compute]:
        from backends.image.diffusion import derive
        from backends.text.judge import aggregate_judgments, parse_verdict
        started = time.perf_counter()
        inputs = self.processor(images=to_pil(images), text=[self._chat(p) for p in prompts], return_tensors="pt",
                                padding=True).to(self.model.device)
        with torch.random.fork_rng(devices=[]):  # seeded sampling without touching the caller's RNG
            torch.manual_seed(derive("vlm-judge", self.seed, list(prompts), self.calls) % 2 ** 63)
            out = self.model.generate(**inputs, do_sample=True, temperature=self.temperature, top_p=1.0,
                                      num_return_sequences=self.k, max_new_tokens=self.max_new_tokens)
        new = out[:, inputs["input_ids"].shape[1]:]
        texts = self.processor.batch_decode(new, skip_special_tokens=True)
        groups = [texts[i * self.k:(i + 1) * self.k] for i in range(len(prompts))]
        self.last_judgments = groups
        scores = [aggregate_judgments([parse_verdict(t) for t in g], self.rule) for g in groups]
        pad = self.processor.tokenizer.pad_token_id
        generated = int((new != pad).sum()) if pad is not None else new.numel()
        cost = self._count(len(prompts), started)
        cost.verifier_tokens = int(inputs["attention_mask"].sum()) * self.k + generated
        return scores, cost
