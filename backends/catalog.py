"""Every model and verifier id the app knows: where it loads from, whether it is available here, and why not.

The embedded models load from their folders with the same ``from_pretrained`` calls as a hub model;
a hub id is available when its files are in the local Hugging Face cache (or the hub is reachable).
A local folder in Hugging Face format can be given as a policy id directly.

Prefixed ids pick a backend or a verifier family for any hub id or local folder:

- ``openai:<model>`` (optionally ``openai:<model>@<base_url>``): a policy served by an OpenAI-compatible
  ``/v1/completions`` endpoint (``backends.text.openai_backend``; base URL and key from ``OPENAI_BASE_URL`` and
  ``OPENAI_API_KEY`` unless given);
- ``vllm:<path or id>``: a policy run in process by vLLM (``backends.text.vllm_backend``, optional install);
- ``qwen-prm:``, ``math-shepherd:``, ``rlhflow:``, ``skywork-prm:``, ``likelihood:``, ``orm:`` + path or id: a verifier of that
  family (``backends.text.prm_families``); ``judge:<path or id>``: an LLM judge (``backends.text.judge``).

A local folder given as a verifier without a prefix is read as a PRM family when its config names one
(``prm_families.detect_family``), else as a token-classification PRM.

Each entry knows its size and the hardware it wants; ``memory_estimate`` gives the weights' bytes before
anything is loaded (from the config when it is on disk, else from the listed parameter count). Remote code
runs only when the caller passes ``trust_remote_code=True`` (the UI's tick box, the CLI's flag).
"""
from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from backends.errors import InputError

log = logging.getLogger(__name__)

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded" / "models"
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")  # owner/name


class ModelLoadError(InputError):
    """A model that cannot be used here, with the reason in one line."""


@dataclass(frozen=True)
class ModelEntry:
    id: str
    kind: str          # policy / prm / orm / judge / critic / classifier / oracle
    domain: str        # reasoning / image
    source: str        # a local path or a hub id
    description: str
    delimiter: str = "\n"
    chat_template: bool = False
    size: str = ""
    hardware: str = ""
    family: str = ""        # PRM family (backends.text.prm_families.FAMILIES) for prm/orm entries
    backend: str = "transformers"  # transformers / openai / vllm for policies
    params_b: float = 0.0   # listed parameter count in billions, for the memory estimate before download
    # A thinking model's (open, close) delimiters around its thought, which comes before the answer steps; empty
    # for a model that answers at once. ``wait`` is what budget forcing appends to make it think on.
    thinking: tuple[str, ...] = ()
    wait: str = "Wait,"

    def memory_estimate(self) -> int | None:
        """Bytes of bf16 weights (what the listed hardware assumes), before loading; None when unknown.

        Read from the config when it is on disk (a local folder or the Hugging Face cache), else from the
        listed parameter count. No torch import: the model list stays fast. At load time,
        ``backends.text.transformers_lm.memory_estimate_bytes`` gives the device-aware figure (float32 on CPU).
        """
        if self.kind == "oracle" or self.backend == "openai":
            return 0
        params = _config_params(self.source)
        if params is None and self.params_b:
            params = int(self.params_b * 1e9)
        return None if params is None else 2 * params

    def availability(self) -> tuple[bool, str]:
        if self.kind == "oracle":
            return True, "built in: grades against the ground truth"
        if self.backend == "openai":
            from backends.text.openai_backend import resolve_endpoint
            base, _, _ = resolve_endpoint(self.source)
            if not base:
                return False, "no endpoint: set OPENAI_BASE_URL or use openai:<model>@<base_url>"
            return True, f"OpenAI-compatible endpoint {base}"
        if self.backend == "vllm":
            import importlib.util
            if importlib.util.find_spec("vllm") is None:
                return False, "vLLM is not installed here (pip install -r requirements-gpu.txt on a CUDA machine)"
        if Path(self.source).is_absolute() or Path(self.source).is_dir():
            if (Path(self.source) / "config.json").exists():
                return True, f"local folder {self.source}"
            return False, f"no weights at {self.source} (python -m backends.embedded.train writes them)"
        return hub_availability(self.source)

    def to_dict(self) -> dict:
        ok, reason = self.availability()
        try:
            mem = self.memory_estimate()
        except Exception:  # noqa: BLE001 - an estimate never breaks the listing
            mem = None
        return {**asdict(self), "available": ok, "reason": reason, "memory_estimate_bytes": mem}


def _config_params(source: str) -> int | None:
    """Parameter count from a config.json on disk (local folder or hub cache), by the transformer formula."""
    import json
    path = Path(source) / "config.json"
    if not path.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache
            cached = try_to_load_from_cache(source, "config.json")
        except Exception:  # noqa: BLE001
            return None
        if not isinstance(cached, str):
            return None
        path = Path(cached)
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    cfg = cfg.get("text_config") or cfg
    hidden, layers = cfg.get("hidden_size") or 0, cfg.get("num_hidden_layers") or 0
    if not hidden or not layers:
        return None
    heads = cfg.get("num_attention_heads") or 1
    kv_width = (cfg.get("num_key_value_heads") or heads) * (cfg.get("head_dim") or hidden // heads)
    inter = cfg.get("intermediate_size") or 4 * hidden
    vocab = cfg.get("vocab_size") or 0
    tied = cfg.get("tie_word_embeddings", False)
    return layers * (2 * hidden * hidden + 2 * hidden * kv_width + 3 * hidden * inter) + (1 if tied else 2) * vocab * hidden


def hub_availability(repo_id: str, filename: str = "config.json") -> tuple[bool, str]:
    """A hub model is usable when its config (``filename``: a diffusers pipeline has ``model_index.json``) is in
    the local cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
        cached = try_to_load_from_cache(repo_id, filename)
    except Exception as exc:  # noqa: BLE001 - a malformed id is reported, not raised
        return False, f"not a valid hub id: {exc}"
    if isinstance(cached, str):
        return True, "in the local Hugging Face cache"
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False, "not in the local Hugging Face cache and HF_HUB_OFFLINE=1 (no download)"
    return False, "not in the local Hugging Face cache; download it first (the app never downloads during a run)"


_E = str(EMBEDDED_DIR)
THINK_DELIMITERS = ("<think>", "</think>")
# Hub families that think between <think> and </think> before answering (their chat templates say so).
_THINKING_HUB = re.compile(r"^(Qwen/Qwen3-|Qwen/QwQ-|deepseek-ai/DeepSeek-R1-Distill-)", re.IGNORECASE)


def thinking_delimiters(model_id: str) -> tuple[str, ...]:
    """The thinking delimiters of a hub id outside the catalog (Qwen3, QwQ, DeepSeek-R1 distills); () for others."""
    return THINK_DELIMITERS if _THINKING_HUB.match(model_id) else ()


CATALOG: dict[str, ModelEntry] = {e.id: e for e in [
    ModelEntry("tiny-arith-s", "policy", "reasoning", f"{_E}/tiny-arith-s",
               "Embedded small policy for arithmetic chains (trained by backends/embedded/train.py)."),
    ModelEntry("tiny-arith-l", "policy", "reasoning", f"{_E}/tiny-arith-l",
               "Embedded larger policy, same data, several times the parameters."),
    ModelEntry("tiny-think", "policy", "reasoning", f"{_E}/tiny-think",
               "Embedded thinking policy: a long-hand scratchpad between <think> and </think>, then the answer lines "
               "(tiny-arith-l trained on by backends/embedded/think_train.py).", thinking=THINK_DELIMITERS,
               wait="Wait, "),
    ModelEntry("tiny-prm", "prm", "reasoning", f"{_E}/tiny-prm",
               "Embedded generative process reward model: the probability it gives the steps so far "
               "(tiny-arith-l trained further on the task, then on the policies' labelled samples).", delimiter="\n",
               family="likelihood"),
    ModelEntry("tiny-critic", "critic", "reasoning", f"{_E}/tiny-critic",
               "Embedded generative critic: k sampled checks of every step and a verdict, voted (tiny-prm trained "
               "on by backends/embedded/critic_train.py on the policies' own labelled samples).", delimiter="\n"),
    ModelEntry("oracle", "oracle", "reasoning", "ground truth",
               "ORACLE: grades each step against the known solution. Not a real verifier: a ceiling."),
    ModelEntry("Qwen/Qwen2.5-Math-1.5B-Instruct", "policy", "reasoning", "Qwen/Qwen2.5-Math-1.5B-Instruct",
               "Hub math policy.", delimiter="\n\n", chat_template=True, size="1.5B", hardware="GPU, 8 GB"),
    ModelEntry("Qwen/Qwen2.5-Math-7B-Instruct", "policy", "reasoning", "Qwen/Qwen2.5-Math-7B-Instruct",
               "Hub math policy.", delimiter="\n\n", chat_template=True, size="7B", hardware="GPU, 24 GB"),
    ModelEntry("meta-llama/Llama-3.2-1B-Instruct", "policy", "reasoning", "meta-llama/Llama-3.2-1B-Instruct",
               "Hub general policy.", delimiter="\n\n", chat_template=True, size="1B", hardware="GPU, 6 GB"),
]}

# Suggested hub models (added with issue 6). Sizes are the listed parameter counts; hardware is what bf16
# inference with room for a KV cache wants. Step delimiters follow each family's training data.
_HUB = [
    ModelEntry("meta-llama/Llama-3.2-3B-Instruct", "policy", "reasoning", "meta-llama/Llama-3.2-3B-Instruct",
               "Hub general policy (the search-and-learn blog's policy).", delimiter="\n\n", chat_template=True,
               size="3B", hardware="GPU, 12 GB", params_b=3.2),
    ModelEntry("Qwen/Qwen2.5-1.5B-Instruct", "policy", "reasoning", "Qwen/Qwen2.5-1.5B-Instruct",
               "Hub general policy.", delimiter="\n\n", chat_template=True, size="1.5B", hardware="GPU, 8 GB",
               params_b=1.5),
    ModelEntry("Qwen/Qwen2.5-Math-PRM-7B", "prm", "reasoning", "Qwen/Qwen2.5-Math-PRM-7B",
               "Qwen PRM: steps joined by <extra_0>, P(class 1) at each (known head, no remote code).",
               delimiter="\n\n", size="7B", hardware="GPU, 24 GB", family="qwen-prm", params_b=7.1),
    ModelEntry("peiyi9979/math-shepherd-mistral-7b-prm", "prm", "reasoning", "peiyi9979/math-shepherd-mistral-7b-prm",
               "Math-Shepherd PRM: P(+) over (+, -) at each ' ки' step tag.", delimiter="\n",
               size="7B", hardware="GPU, 24 GB", family="math-shepherd", params_b=7.2),
    ModelEntry("RLHFlow/Llama3.1-8B-PRM-Deepseek-Data", "prm", "reasoning", "RLHFlow/Llama3.1-8B-PRM-Deepseek-Data",
               "RLHFlow PRM: one chat turn per step, P(+) vs P(-) at each assistant turn.", delimiter="\n\n",
               size="8B", hardware="GPU, 24 GB", family="rlhflow", params_b=8.0),
    ModelEntry("RLHFlow/Llama3.1-8B-PRM-Mistral-Data", "prm", "reasoning", "RLHFlow/Llama3.1-8B-PRM-Mistral-Data",
               "RLHFlow PRM trained on Mistral generations.", delimiter="\n\n", size="8B", hardware="GPU, 24 GB",
               family="rlhflow", params_b=8.0),
    ModelEntry("Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B", "prm", "reasoning",
               "Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B",
               "Skywork PRM: value head (no remote code) at each '\\n'-split step.", delimiter="\n",
               size="1.5B", hardware="GPU, 8 GB (runs on CPU, slowly)", family="skywork-prm", params_b=1.5),
    ModelEntry("Skywork/Skywork-o1-Open-PRM-Qwen-2.5-7B", "prm", "reasoning", "Skywork/Skywork-o1-Open-PRM-Qwen-2.5-7B",
               "Skywork PRM, 7B.", delimiter="\n", size="7B", hardware="GPU, 24 GB", family="skywork-prm",
               params_b=7.6),
    ModelEntry("Skywork/Skywork-Reward-Llama-3.1-8B-v0.2", "orm", "reasoning", "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2",
               "Outcome reward model: one score per whole answer (sequence classification).", delimiter="\n\n",
               size="8B", hardware="GPU, 24 GB", family="orm", params_b=7.5),
    ModelEntry("Qwen/Qwen2.5-7B-Instruct", "judge", "reasoning", "Qwen/Qwen2.5-7B-Instruct",
               "LLM judge: critique + verdict, k samples (generative verifier).", delimiter="\n\n",
               chat_template=True, size="7B", hardware="GPU, 24 GB", params_b=7.6),
]
for _e in _HUB:
    CATALOG.setdefault(_e.id, _e)
# params_b for the entries listed before issue 6, for their memory estimate
for _id, _b in (("Qwen/Qwen2.5-Math-1.5B-Instruct", 1.5), ("Qwen/Qwen2.5-Math-7B-Instruct", 7.6),
                ("meta-llama/Llama-3.2-1B-Instruct", 1.2)):
    if _id in CATALOG and not CATALOG[_id].params_b:
        from dataclasses import replace as _replace
        CATALOG[_id] = _replace(CATALOG[_id], params_b=_b)

# the names of prm_families.FAMILIES, repeated so ids parse without importing torch (a test keeps them equal)
FAMILY_PREFIXES = ("qwen-prm", "math-shepherd", "rlhflow", "skywork-prm", "likelihood", "orm")
MATH_DELIMITER = "\n\n"


def _prefixed(model_id: str, kind: str) -> ModelEntry | None:
    """The entry for a prefixed id (see the module docstring), or None when the id has no known prefix."""
    prefix, sep, rest = model_id.partition(":")
    if not sep or not rest:
        return None
    if prefix == "openai":
        if kind != "policy":
            raise ModelLoadError(f"{model_id} is a policy endpoint, not a verifier")
        return ModelEntry(model_id, "policy", "reasoning", rest, "OpenAI-compatible completions endpoint.",
                          delimiter=MATH_DELIMITER, backend="openai", hardware="remote server",
                          thinking=thinking_delimiters(rest.split("@", 1)[0]))
    if prefix == "vllm":
        if kind != "policy":
            raise ModelLoadError(f"{model_id} is a policy, not a verifier")
        embedded = _in_embedded(rest)  # an embedded folder keeps its one-line steps, as under transformers
        return ModelEntry(model_id, "policy", "reasoning", rest, "vLLM in process.",
                          delimiter="\n" if embedded else MATH_DELIMITER, chat_template=not embedded, backend="vllm",
                          hardware="CUDA GPU", thinking=_embedded_thinking(rest) if embedded else thinking_delimiters(rest))
    if prefix in FAMILY_PREFIXES or prefix == "judge":
        if kind == "policy":
            raise ModelLoadError(f"{model_id} is a verifier, not a policy")
        k = "judge" if prefix == "judge" else ("orm" if prefix == "orm" else "prm")
        delimiter = "\n" if prefix in ("math-shepherd", "skywork-prm", "likelihood") else MATH_DELIMITER
        return ModelEntry(model_id, k, "reasoning", rest, f"{prefix} verifier from {rest}.", delimiter=delimiter,
                          chat_template=prefix == "judge", family="" if prefix == "judge" else prefix)
    return None


def models(domain: str | None = None) -> list[ModelEntry]:
    return [e for e in CATALOG.values() if domain is None or e.domain == domain]


def resolve(model_id: str, kind: str) -> ModelEntry:
    """The catalog entry for an id, or an entry for a local Hugging Face folder; ModelLoadError otherwise."""
    if model_id not in CATALOG:
        entry = _prefixed(model_id, kind)
        if entry is not None:
            return entry
    if kind == "verifier" and model_id not in CATALOG and Path(model_id).is_dir() \
            and (Path(model_id) / "config.json").exists():
        from backends.text.prm_families import detect_family
        family = detect_family(model_id)
        if family:
            return ModelEntry(model_id, "orm" if family == "orm" else "prm", "reasoning", model_id,
                              f"Local {family} folder.", delimiter="\n" if family == "skywork-prm" else "\n\n",
                              family=family)
    if model_id in CATALOG:
        entry = CATALOG[model_id]
        if kind == "verifier" and entry.kind not in ("prm", "orm", "oracle", "judge", "critic"):
            raise ModelLoadError(f"{model_id} is a {entry.kind}, not a verifier")
        if kind == "policy" and entry.kind != "policy":
            raise ModelLoadError(f"{model_id} is a {entry.kind}, not a policy")
        return entry
    if Path(model_id).is_dir() and (Path(model_id) / "config.json").exists():
        return ModelEntry(model_id, "policy" if kind == "policy" else "prm", "reasoning", model_id,
                          "Local Hugging Face folder.", chat_template=True)
    if kind == "policy" and HUB_ID.match(model_id) and hub_availability(model_id)[0]:
        # any hub causal LM once it is in the cache (``python app.py download ID`` puts it there)
        return ModelEntry(model_id, "policy", "reasoning", model_id, "Hub model from the local cache.",
                          chat_template=True, thinking=thinking_delimiters(model_id))
    known = ", ".join(e.id for e in CATALOG.values() if e.domain == "reasoning"
                      and (e.kind == kind or (kind == "verifier" and e.kind != "policy")))
    raise ModelLoadError(f"unknown reasoning {kind} {model_id!r}: use one of {known}, or a local folder in Hugging "
                         "Face format"
                         + (", or a hub id once downloaded (python app.py download ID)" if kind == "policy" else ""))


def _embedded_thinking(source: str) -> tuple[str, ...]:
    """The thinking delimiters of the catalog's embedded entry for this folder (vLLM on an embedded folder)."""
    path = Path(source).resolve()
    return next((e.thinking for e in CATALOG.values() if Path(e.source).resolve() == path), ())


def _in_embedded(source: str) -> bool:
    path = Path(source)
    return path.is_dir() and path.resolve().is_relative_to(EMBEDDED_DIR.resolve())


def is_embedded(model_id: str) -> bool:
    """Whether a policy id is one of the embedded arithmetic models (by id, or by its folder under any backend):
    typed problems for them are arithmetic chains, for any other policy free-form questions."""
    try:
        return _in_embedded(resolve(model_id, "policy").source)
    except ModelLoadError:
        return False


_load_lock = threading.Lock()


def available(model_id: str, kind: str) -> ModelEntry:
    """The entry of a reasoning-domain policy or verifier, refused with one line when it is not available here."""
    entry = resolve(model_id, kind)
    ok, reason = entry.availability()
    if not ok:
        raise ModelLoadError(f"{model_id} is not available here: {reason}")
    return entry


def guarded_load(model_id: str, fn, *args):
    """``fn(*args)`` under the load lock; any loader failure becomes one clear ModelLoadError line."""
    with _load_lock:
        try:
            return fn(*args)
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - any loader failure becomes one clear line
            log.exception("loading %s failed", model_id)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{model_id} failed to load: {first}") from exc


# ---- image domain (issue 5) -----------------------------------------------------------------------------
# The embedded image models are written by ``python -m backends.embedded.digits.train``; the rewards are
# plain functions of the image (``backends.image.verifiers``). Image verifiers of kind classifier/reward
# and the image policy load only through ``backends.image.loaders``.

@dataclass(frozen=True)
class ImageModelEntry(ModelEntry):
    """An image-domain entry: a diffusers folder (unet/ + scheduler/), a classifier folder, or a built-in."""

    def availability(self) -> tuple[bool, str]:
        if self.source.startswith("builtin:"):
            return True, "built in: a plain function of the image"
        folder = Path(self.source)
        if (folder / "config.json").exists() or (folder / "unet" / "config.json").exists():
            return True, f"local folder {self.source}"
        return False, f"no weights at {self.source} (python -m backends.embedded.digits.train writes them)"


IMAGE_KINDS = {"policy": ("policy",), "verifier": ("classifier", "judge", "reward")}
for _e in [
    ImageModelEntry("tiny-digits", "policy", "image", f"{_E}/tiny-digits",
                    "Embedded class-conditional diffusion UNet on 16x16 handwritten digits (diffusers "
                    "UNet2DModel + DDPM/DDIM scheduler config).", size="1.1M", hardware="CPU", backend="diffusers"),
    ImageModelEntry("digit-classifier", "classifier", "image", f"{_E}/digit-classifier",
                    "Search verifier: small CNN, P(asked digit) on x0-hat.", hardware="CPU", backend="torch"),
    ImageModelEntry("digit-judge", "judge", "image", f"{_E}/digit-judge",
                    "Held-out judge: another CNN trained on other digits with other augmentation.", hardware="CPU",
                    backend="torch"),
    ImageModelEntry("digit-thickness", "reward", "image", "builtin:thickness",
                    "Attribute reward: stroke thickness (mean ink), ignores the class.", backend="builtin"),
    ImageModelEntry("digit-centred", "reward", "image", "builtin:centred",
                    "Attribute reward: how centred the ink is, ignores the class.", backend="builtin"),
]:
    CATALOG.setdefault(_e.id, _e)


def image_entry(model_id: str, kind: str) -> ModelEntry:
    entry = CATALOG.get(model_id)
    folder = Path(model_id)
    if entry is None and folder.is_dir():  # a local folder: a diffusers model, or a classifier we trained
        if kind == "policy" and (folder / "unet" / "config.json").exists():
            entry = ImageModelEntry(model_id, "policy", "image", model_id, "Local diffusers folder (unet/, scheduler/).")
        elif kind == "verifier" and (folder / "model.safetensors").exists() and (folder / "config.json").exists():
            entry = ImageModelEntry(model_id, "classifier", "image", model_id, "Local image classifier folder.")
    if entry is None:
        known = ", ".join(e.id for e in CATALOG.values() if e.domain == "image" and e.kind in IMAGE_KINDS[kind])
        raise ModelLoadError(f"unknown image {kind} {model_id!r}: use one of {known}")
    return _usable(entry, model_id, "image", IMAGE_KINDS[kind], f"an image {kind}")


def _usable(entry, model_id: str, domain: str, kinds, what: str):
    """``entry`` if it is of ``domain``, one of ``kinds`` and available here; else one clear ModelLoadError."""
    if entry.domain != domain:
        raise ModelLoadError(f"{model_id} is a model of the {entry.domain} domain, not {what}")
    if entry.kind not in kinds:
        raise ModelLoadError(f"{model_id} is a {entry.kind}, not {what}")
    ok, reason = entry.availability()
    if not ok:
        raise ModelLoadError(f"{model_id} is not available here: {reason}")
    return entry


# ---- text-to-image domain (issue 7) ---------------------------------------------------------------------
# Pipelines are diffusers folders (``model_index.json`` + components) by hub id or local path, driven by
# ``backends.image.t2i_pipelines``; verifiers (``backends.image.t2i_verifiers``) are CLIP models, aesthetic folders, or the
# optional ImageReward / HPS packages, or a vision-language judge. ``clip:<id or folder>``, ``aesthetic:<folder>``
# and ``vlm:<id or folder>`` name any CLIP model, aesthetic folder or image-text-to-text model. The family of an
# entry says which loader it takes.

T2I_FAMILIES = ("pipeline", "clip", "aesthetic", "vlm", "imagereward", "hpsv2")
T2I_PACKAGES = {"imagereward": ("ImageReward", "image-reward"), "hpsv2": ("hpsv2", "hpsv2")}
AESTHETIC_DIR = Path(os.environ.get("TTS_AESTHETIC_DIR") or Path.home() / ".cache" / "tts-explorer" / "laion-aesthetic")
_AESTHETIC_HINT = (" (put the improved-aesthetic-predictor head sac+logos+ava1-l14-linearMSE.pth there with a "
                   "config.json {\"clip\": \"openai/clip-vit-large-patch14\", \"head\": <file>}; or set TTS_AESTHETIC_DIR)")


@dataclass(frozen=True)
class T2IModelEntry(ModelEntry):
    """A text-to-image entry: a pipeline, a CLIP model, an aesthetic folder, or an optional scorer package."""

    def availability(self) -> tuple[bool, str]:
        if self.family in T2I_PACKAGES:
            import importlib.util
            module, pip_name = T2I_PACKAGES[self.family]
            if importlib.util.find_spec(module) is None:
                return False, f"the {pip_name} package is not installed here (pip install {pip_name})"
            return True, f"{pip_name} installed (its loader fetches the checkpoint)"
        marker = "model_index.json" if self.family == "pipeline" else "config.json"
        folder = Path(self.source)
        if folder.is_absolute() or folder.is_dir():
            if (folder / marker).exists():
                return True, f"local folder {self.source}"
            return False, f"no {marker} at {self.source}" + (_AESTHETIC_HINT if self.family == "aesthetic" else "")
        return hub_availability(self.source, marker)


T2I_KINDS = {"policy": ("policy",), "verifier": ("reward",)}
for _e in [
    T2IModelEntry("stable-diffusion-v1-5/stable-diffusion-v1-5", "policy", "t2i",
                  "stable-diffusion-v1-5/stable-diffusion-v1-5",
                  "Stable Diffusion 1.5 (UNet + VAE + CLIP text encoder), 512 px, DDIM/DDPM.", size="1.1B",
                  hardware="GPU, 6 GB (CPU: minutes per image)", family="pipeline", backend="diffusers", params_b=1.07),
    T2IModelEntry("stabilityai/sd-turbo", "policy", "t2i", "stabilityai/sd-turbo",
                  "SD-Turbo (SD 2.1 distilled): 1-4 steps at guidance 1, 512 px.", size="1.3B",
                  hardware="GPU, 6 GB", family="pipeline", backend="diffusers", params_b=1.3),
    T2IModelEntry("stabilityai/stable-diffusion-xl-base-1.0", "policy", "t2i",
                  "stabilityai/stable-diffusion-xl-base-1.0",
                  "SDXL base (two text encoders, pooled and size conditions), 1024 px.", size="3.5B",
                  hardware="GPU, 12 GB", family="pipeline", backend="diffusers", params_b=3.5),
    T2IModelEntry("stabilityai/stable-diffusion-3-medium-diffusers", "policy", "t2i",
                  "stabilityai/stable-diffusion-3-medium-diffusers",
                  "SD3 medium: MMDiT flow-matching transformer, two CLIPs + T5 (gated on the hub).", size="2B + 5.5B text",
                  hardware="GPU, 24 GB", family="pipeline", backend="diffusers", params_b=7.5),
    T2IModelEntry("black-forest-labs/FLUX.1-schnell", "policy", "t2i", "black-forest-labs/FLUX.1-schnell",
                  "FLUX.1 schnell: 12B flow transformer, 1-4 steps, no guidance.", size="12B + 4.9B text",
                  hardware="GPU, 40 GB+", family="pipeline", backend="diffusers", params_b=17.0),
    T2IModelEntry("clip-score", "reward", "t2i", "openai/clip-vit-large-patch14",
                  "CLIP score: cosine of CLIP ViT-L/14 image and prompt embeddings.", size="0.43B",
                  hardware="CPU or GPU", family="clip", backend="transformers", params_b=0.43),
    T2IModelEntry("clip-score-b32", "reward", "t2i", "openai/clip-vit-base-patch32",
                  "CLIP score with the small ViT-B/32 CLIP (a different CLIP: a held-out judge for clip-score).",
                  size="0.15B", hardware="CPU", family="clip", backend="transformers", params_b=0.15),
    T2IModelEntry("laion-aesthetic", "reward", "t2i", str(AESTHETIC_DIR),
                  "LAION aesthetic predictor: MLP head on CLIP ViT-L/14 image embeddings, about 1-10.",
                  size="0.43B", hardware="CPU or GPU", family="aesthetic", backend="transformers"),
    T2IModelEntry("Qwen/Qwen2.5-VL-3B-Instruct", "reward", "t2i", "Qwen/Qwen2.5-VL-3B-Instruct",
                  "VLM judge: k sampled critiques of image vs prompt, each ending in a yes/no verdict.", size="3.8B",
                  hardware="GPU, 12 GB", family="vlm", backend="transformers", params_b=3.8),
    T2IModelEntry("imagereward", "reward", "t2i", "ImageReward-v1.0",
                  "ImageReward: a BLIP reward model trained on human preferences (package image-reward).",
                  size="0.45B", hardware="GPU", family="imagereward", backend="image-reward"),
    T2IModelEntry("hpsv2", "reward", "t2i", "v2.1",
                  "Human Preference Score v2.1: an OpenCLIP ViT-H fine-tuned on preferences (package hpsv2).",
                  size="1B", hardware="GPU", family="hpsv2", backend="hpsv2"),
]:
    CATALOG.setdefault(_e.id, _e)


def t2i_entry(model_id: str, kind: str) -> ModelEntry:
    entry = CATALOG.get(model_id)
    prefix, sep, rest = model_id.partition(":")
    if entry is None and sep and rest and prefix in ("clip", "aesthetic", "vlm") and kind == "verifier":
        entry = T2IModelEntry(model_id, "reward", "t2i", rest, f"{prefix} verifier from {rest}.", family=prefix)
    folder = Path(model_id)
    if entry is None and folder.is_dir():  # a local folder: a pipeline, a CLIP model or an aesthetic folder
        if kind == "policy" and (folder / "model_index.json").exists():
            entry = T2IModelEntry(model_id, "policy", "t2i", model_id, "Local diffusers pipeline folder.",
                                  family="pipeline")
        elif kind == "verifier" and (folder / "config.json").exists():
            import json
            cfg = json.loads((folder / "config.json").read_text())
            family = "aesthetic" if cfg.get("architecture") == "laion-aesthetic" else \
                "clip" if cfg.get("model_type") == "clip" else "vlm" if "vision_config" in cfg else ""
            if family:
                entry = T2IModelEntry(model_id, "reward", "t2i", model_id, f"Local {family} folder.", family=family)
    if entry is None:
        known = ", ".join(e.id for e in CATALOG.values() if e.domain == "t2i" and e.kind in T2I_KINDS[kind])
        extra = ", clip:<id or folder>, aesthetic:<folder>, vlm:<id or folder>" if kind == "verifier" else ""
        raise ModelLoadError(f"unknown text-to-image {kind} {model_id!r}: use one of {known}{extra}, "
                             "or a local folder")
    return _usable(entry, model_id, "t2i", T2I_KINDS[kind], f"a text-to-image {kind}")
