"""The catalog lists every id with its availability, and refuses unknown or unavailable models with a reason."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backends import catalog
from backends.text.loaders import load_policy, load_verifier

ROOT = Path(__file__).resolve().parents[1]


def test_models_json_lists_every_id_with_kind_source_and_availability():
    p = subprocess.run([sys.executable, "app.py", "models", "--json"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    rows = {r["id"]: r for r in json.loads(p.stdout)}
    assert {"tiny-arith-s", "tiny-arith-l", "tiny-prm", "oracle"} <= set(rows)
    assert {r["kind"] for r in rows.values()} >= {"policy", "prm", "oracle"}
    for r in rows.values():
        assert {"kind", "source", "available", "reason"} <= set(r)
    hub = rows["Qwen/Qwen2.5-Math-1.5B-Instruct"]
    assert hub["available"] is False and "cache" in hub["reason"]


def test_unavailable_hub_model_fails_with_a_reason_not_a_crash(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(catalog.ModelLoadError, match="not available here"):
        load_policy("Qwen/Qwen2.5-Math-7B-Instruct")


def test_unknown_and_wrong_kind_ids_are_refused():
    with pytest.raises(catalog.ModelLoadError, match="unknown reasoning policy") as refused:
        load_policy("no/such-model-anywhere")
    assert "tiny-arith-s" in str(refused.value) and "tiny-digits" not in str(refused.value)  # no image models
    with pytest.raises(catalog.ModelLoadError, match="not a policy"):
        load_policy("tiny-prm")
    with pytest.raises(catalog.ModelLoadError, match="not a verifier"):
        load_verifier("tiny-arith-s")


def test_a_folder_that_fails_to_load_gives_one_line(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(catalog.ModelLoadError, match="failed to load"):
        load_policy(str(tmp_path))


def test_local_folder_loads_through_from_pretrained(random_lm_path):
    policy = load_policy(str(random_lm_path))
    assert policy.n_params > 0 and policy.delimiter == "\n"


def test_any_causal_lm_folder_is_a_likelihood_verifier():
    """``likelihood:<folder>`` reads a policy as a generative PRM through the hub loader (here the small policy)."""
    from backends.embedded import arith
    from backends.text.prm_families import LikelihoodPRM

    entry = catalog.resolve(f"likelihood:{catalog.EMBEDDED_DIR}/tiny-arith-s", "verifier")
    assert (entry.kind, entry.family) == ("prm", "likelihood")
    prm = load_verifier(entry.id)
    assert isinstance(prm, LikelihoodPRM)
    p = arith.problem_at("test", 0)
    wrong = p.steps[:-1] + ["The answer is 99999"]
    (right_scores, wrong_scores), _ = prm.score_steps(p, p.text + "\n", [p.steps, wrong])
    assert right_scores[:-1] == wrong_scores[:-1] and wrong_scores[-1] < right_scores[-1]
