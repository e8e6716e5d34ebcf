"""MATH-500 and GSM8K problem sets: through ``datasets`` where the hub is reachable, else local JSONL files.

Problem ids are ``math500:<index>`` and ``gsm8k:<index>`` (0-based, in file order). Where the records come
from (``TTS_DATASETS_SOURCE``):

- ``auto`` (default): a local JSONL file when one is found, else the hub through ``datasets`` (when it is
  installed and ``HF_HUB_OFFLINE`` is not 1);
- ``local``: only the local files; ``hub``: only ``datasets``.

Local files are looked up in ``TTS_DATA_DIR``, then ``../shared/data`` beside the repository (where the
project keeps them; they are never copied into the repository), then ``./data``. The hub sets are
HuggingFaceH4/MATH-500 (split ``test``) and openai/gsm8k (config ``main``, split ``test``), with the same
fields as the files.
"""
from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from backends.errors import InputError
from backends.text.math_grading import MathProblem

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    filename: str
    hub_id: str
    hub_config: str | None
    hub_split: str


DATASETS = {
    "math500": DatasetSpec("math500", "math500.jsonl", "HuggingFaceH4/MATH-500", None, "test"),
    "gsm8k": DatasetSpec("gsm8k", "gsm8k_test.jsonl", "openai/gsm8k", "main", "test"),
}


def data_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("TTS_DATA_DIR"):
        dirs.append(Path(os.environ["TTS_DATA_DIR"]))
    dirs += [REPO.parent / "shared" / "data", REPO / "data"]
    return dirs


def local_file(name: str) -> Path | None:
    spec = DATASETS[name]
    for d in data_dirs():
        if (d / spec.filename).is_file():
            return d / spec.filename
    return None


def gsm8k_answer(solution: str) -> str:
    """The number after ``####`` in a GSM8K worked solution, without thousands separators."""
    tail = solution.rsplit("####", 1)[-1].strip()
    return tail.replace(",", "").replace("$", "").strip()


def _to_problem(name: str, index: int, rec: dict) -> MathProblem:
    if name == "math500":
        level = rec.get("level")
        return MathProblem(uid=f"math500:{index}", text=rec["problem"], answer=str(rec["answer"]),
                           solution=rec.get("solution", ""), difficulty=int(level) if level is not None else None,
                           subject=rec.get("subject"), extra={"unique_id": rec.get("unique_id")})
    solution = rec["answer"]
    return MathProblem(uid=f"gsm8k:{index}", text=rec["question"], answer=gsm8k_answer(solution),
                       solution=re.sub(r"<<[^>]*>>", "", solution))


def _from_hub(spec: DatasetSpec) -> list[dict]:
    import datasets  # optional; only where the hub is reachable
    args = (spec.hub_id, spec.hub_config) if spec.hub_config else (spec.hub_id,)
    return [dict(r) for r in datasets.load_dataset(*args, split=spec.hub_split)]


@functools.lru_cache(maxsize=8)
def load_problems(name: str) -> tuple[MathProblem, ...]:
    """Every problem of a set, in order; InputError with the reason when it cannot be had here."""
    if name not in DATASETS:
        raise InputError(f"unknown problem set {name!r}; choose one of {', '.join(DATASETS)}")
    spec, source = DATASETS[name], os.environ.get("TTS_DATASETS_SOURCE", "auto")
    path = local_file(name) if source in ("auto", "local") else None
    if path is not None:
        with path.open(encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    elif source in ("auto", "hub") and os.environ.get("HF_HUB_OFFLINE") != "1":
        try:
            records = _from_hub(spec)
        except ImportError:
            raise InputError(f"{name}: no local {spec.filename} and the datasets package is not installed") from None
        except Exception as exc:  # noqa: BLE001 - no network, no cache: one line for the user
            raise InputError(f"{name}: no local {spec.filename} and the hub failed: {str(exc).splitlines()[0]}") from None
    else:
        where = ", ".join(str(d) for d in data_dirs())
        raise InputError(f"{name}: no {spec.filename} in {where} (and the hub is off: HF_HUB_OFFLINE=1)")
    return tuple(_to_problem(name, i, r) for i, r in enumerate(records))


def problem_at(name: str, index: int) -> MathProblem:
    problems = load_problems(name)
    if not 0 <= index < len(problems):
        raise InputError(f"{name} has problems 0 to {len(problems) - 1}, not {index}")
    return problems[index]


