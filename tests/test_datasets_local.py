"""MATH-500 and GSM8K from the shared JSONL files, problem ids, and a math run on any local causal LM folder."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backends.text import datasets_local as dl
from backends.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (SHARED / "math500.jsonl").is_file() or not (SHARED / "gsm8k_test.jsonl").is_file(),
                                reason=f"the benchmark files are not in {SHARED} (they live in the project's shared/ folder)")


@pytest.fixture(autouse=True)
def local_only(monkeypatch):
    monkeypatch.setenv("TTS_DATASETS_SOURCE", "local")
    monkeypatch.delenv("TTS_DATA_DIR", raising=False)
    dl.load_problems.cache_clear()
    yield
    dl.load_problems.cache_clear()


@needs_data
def test_math500_and_gsm8k_load_from_shared_data():
    math = dl.load_problems("math500")
    gsm = dl.load_problems("gsm8k")
    assert len(math) == 500 and len(gsm) == 1319
    p = dl.problem_at("math500", 0)
    assert p.uid == "math500:0" and p.answer == "\\left( 3, \\frac{\\pi}{2} \\right)" and p.difficulty == 2
    g = dl.problem_at("gsm8k", 0)
    assert g.uid == "gsm8k:0" and g.answer == "18" and "<<" not in g.solution and g.difficulty is None
    assert all(q.answer for q in gsm) and all("####" not in q.answer for q in gsm)
    assert not (ROOT / "data" / "math500.jsonl").exists()  # read in place, never copied into the repository


@needs_data
def test_problem_ids_resolve_through_the_reasoning_domain():
    from backends.text.math_grading import MathProblem
    from backends.text.reasoning import resolve_problem
    p = resolve_problem(None, "math500:3", None)
    assert isinstance(p, MathProblem) and p.uid == "math500:3"
    with pytest.raises(InputError, match="0 to 499"):
        resolve_problem(None, "math500:500", None)
    with pytest.raises(InputError, match="math500:17"):
        resolve_problem(None, "math500:x", None)
    assert resolve_problem(None, "test:0", None).uid  # arithmetic ids unchanged


def test_missing_files_and_offline_hub_give_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(dl, "data_dirs", lambda: [tmp_path])
    monkeypatch.setenv("TTS_DATASETS_SOURCE", "auto")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="no math500.jsonl"):
        dl.load_problems("math500")
    with pytest.raises(InputError, match="unknown problem set"):
        dl.load_problems("aime")


def test_a_local_file_in_tts_data_dir_is_used(monkeypatch, tmp_path):
    (tmp_path / "gsm8k_test.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "1+1=2\n#### 2"}) + "\n")
    monkeypatch.setenv("TTS_DATA_DIR", str(tmp_path))
    assert dl.problem_at("gsm8k", 0).answer == "2"


@pytest.fixture()
def chat_lm_path(random_lm_path, tmp_path):
    """The tiny random Llama with its own chat template, as a user's local folder would have."""
    path = tmp_path / "chat-lm"
    shutil.copytree(random_lm_path, path)
    cfg = json.loads((path / "tokenizer_config.json").read_text())
    cfg["chat_template"] = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                            "{% if add_generation_prompt %}assistant: {% endif %}")
    (path / "tokenizer_config.json").write_text(json.dumps(cfg))
    return path


@needs_data
def test_cli_run_on_a_math500_problem_with_a_local_folder(chat_lm_path, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TTS_MATH_MAX_STEPS": "2", "TTS_MATH_MAX_STEP_TOKENS": "6",
           "TTS_DATASETS_SOURCE": "local"}
    p = subprocess.run([sys.executable, "app.py", "run", "--model", str(chat_lm_path), "--problem-id", "math500:3",
                        "--verifier", "oracle", "--strategy", "beam_search", "--budget", "4", "--param",
                        "beam_width=2", "--db", str(tmp_path / "runs.db"), "--json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout)
    assert out["status"] == "finished" and out["problem"]["uid"] == "math500:3"
    # the folder's own chat template with the step-by-step system prompt
    assert out["prompt"].startswith("system: Please reason step by step") and "assistant: " in out["prompt"]
    assert out["correct"] is False and out["compute"]["generated_tokens"] > 0
