"""Every model and verifier id the app knows: where it loads from, whether it is available here, and why not.

The embedded models load from their folders with the same ``from_pretrained`` calls as a hub model;
a hub id is available when its files are in the local Hugging Face cache (or the hub is reachable).
A local folder in Hugging Face format can be given as a policy id directly.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from backends.errors import InputError

log = logging.getLogger(__name__)

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded" / "models"


class ModelLoadError(InputError):
    """A model that cannot be used here, with the reason in one line."""


@dataclass(frozen=True)
class ModelEntry:
    id: str
    kind: str          # policy / prm / orm / judge / classifier / oracle
    domain: str        # reasoning / image
    source: str        # a local path or a hub id
    description: str
    delimiter: str = "\n"
    chat_template: bool = False
    size: str = ""
    hardware: str = ""

    def availability(self) -> tuple[bool, str]:
        if self.kind == "oracle":
            return True, "built in: grades against the ground truth"
        if Path(self.source).is_absolute() or Path(self.source).is_dir():
            if (Path(self.source) / "config.json").exists():
                return True, f"local folder {self.source}"
            return False, f"no weights at {self.source} (python -m backends.embedded.train writes them)"
        return hub_availability(self.source)

    def to_dict(self) -> dict:
        ok, reason = self.availability()
        return {**asdict(self), "available": ok, "reason": reason}


def hub_availability(repo_id: str) -> tuple[bool, str]:
    """A hub model is usable when its config is in the local cache, or the hub is reachable (not offline)."""
    try:
        from huggingface_hub import try_to_load_from_cache
        cached = try_to_load_from_cache(repo_id, "config.json")
    except Exception as exc:  # noqa: BLE001 - a malformed id is reported, not raised
        return False, f"not a valid hub id: {exc}"
    if isinstance(cached, str):
        return True, "in the local Hugging Face cache"
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False, "not in the local Hugging Face cache and HF_HUB_OFFLINE=1 (no download)"
    return False, "not in the local Hugging Face cache; download it first (the app never downloads during a run)"


_E = str(EMBEDDED_DIR)
CATALOG: dict[str, ModelEntry] = {e.id: e for e in [
    ModelEntry("tiny-arith-s", "policy", "reasoning", f"{_E}/tiny-arith-s",
               "Embedded small policy for arithmetic chains (trained by backends/embedded/train.py)."),
    ModelEntry("tiny-arith-l", "policy", "reasoning", f"{_E}/tiny-arith-l",
               "Embedded larger policy, same data, several times the parameters."),
    ModelEntry("tiny-prm", "prm", "reasoning", f"{_E}/tiny-prm",
               "Embedded process reward model: P(step correct) read at each step delimiter."),
    ModelEntry("oracle", "oracle", "reasoning", "ground truth",
               "ORACLE: grades each step against the known solution. Not a real verifier: a ceiling."),
    ModelEntry("Qwen/Qwen2.5-Math-1.5B-Instruct", "policy", "reasoning", "Qwen/Qwen2.5-Math-1.5B-Instruct",
               "Hub math policy.", delimiter="\n\n", chat_template=True, size="1.5B", hardware="GPU, 8 GB"),
    ModelEntry("Qwen/Qwen2.5-Math-7B-Instruct", "policy", "reasoning", "Qwen/Qwen2.5-Math-7B-Instruct",
               "Hub math policy.", delimiter="\n\n", chat_template=True, size="7B", hardware="GPU, 24 GB"),
    ModelEntry("meta-llama/Llama-3.2-1B-Instruct", "policy", "reasoning", "meta-llama/Llama-3.2-1B-Instruct",
               "Hub general policy.", delimiter="\n\n", chat_template=True, size="1B", hardware="GPU, 6 GB"),
]}


def models(domain: str | None = None) -> list[ModelEntry]:
    return [e for e in CATALOG.values() if domain is None or e.domain == domain]


def resolve(model_id: str, kind: str) -> ModelEntry:
    """The catalog entry for an id, or an entry for a local Hugging Face folder; ModelLoadError otherwise."""
    if model_id in CATALOG:
        entry = CATALOG[model_id]
        if kind == "verifier" and entry.kind not in ("prm", "orm", "oracle", "judge"):
            raise ModelLoadError(f"{model_id} is a {entry.kind}, not a verifier")
        if kind == "policy" and entry.kind != "policy":
            raise ModelLoadError(f"{model_id} is a {entry.kind}, not a policy")
        return entry
    if Path(model_id).is_dir() and (Path(model_id) / "config.json").exists():
        return ModelEntry(model_id, "policy" if kind == "policy" else "prm", "reasoning", model_id,
                          "Local Hugging Face folder.", chat_template=True)
    known = ", ".join(e.id for e in CATALOG.values() if e.kind == kind or (kind == "verifier" and e.kind != "policy"))
    raise ModelLoadError(f"unknown {kind} {model_id!r}: use one of {known}, or a local folder in Hugging Face format")


_load_lock = threading.Lock()


@functools.lru_cache(maxsize=4)
def _load_policy(model_id: str, trust_remote_code: bool):
    from backends.transformers_lm import CausalLMPolicy
    entry = resolve(model_id, "policy")
    return CausalLMPolicy(entry.source, trust_remote_code=trust_remote_code, delimiter=entry.delimiter,
                          chat_template=entry.chat_template)


@functools.lru_cache(maxsize=4)
def _load_verifier(model_id: str, trust_remote_code: bool):
    from backends.verifiers import ArithOracle, TokenClassificationPRM
    entry = resolve(model_id, "verifier")
    if entry.kind == "oracle":
        return ArithOracle()
    return TokenClassificationPRM(entry.source, name=entry.id, delimiter=entry.delimiter,
                                  trust_remote_code=trust_remote_code)


def _load(fn, model_id: str, kind: str, trust_remote_code: bool):
    entry = resolve(model_id, kind)
    ok, reason = entry.availability()
    if not ok:
        raise ModelLoadError(f"{model_id} is not available here: {reason}")
    with _load_lock:
        try:
            return fn(model_id, trust_remote_code)
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - any loader failure becomes one clear line
            log.exception("loading %s failed", model_id)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{model_id} failed to load: {first}") from exc


def load_policy(model_id: str, trust_remote_code: bool = False):
    return _load(_load_policy, model_id, "policy", trust_remote_code)


def load_verifier(model_id: str, trust_remote_code: bool = False):
    return _load(_load_verifier, model_id, "verifier", trust_remote_code)
