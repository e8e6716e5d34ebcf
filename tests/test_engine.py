"""The engine end to end on a local Hugging Face folder (a tiny random Llama) with a real SQLite store."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.limits import Limits
from engine.run import ConfigError, RunConfig, execute
from strategies.core import CancelToken

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_run_streams_events_and_stores_them(store, random_lm_path):
    cfg = RunConfig(model=str(random_lm_path), verifier="oracle", strategy="beam_search", budget=4,
                    params={"beam_width": 2}, problem_id="test:0")
    events = list(execute(cfg, store))
    assert events[0]["type"] == "RunStarted" and events[-1]["type"] == "RunEnded"
    assert events[-1]["status"] == "finished"
    run = store.get_run(events[0]["run_id"])
    assert run["status"] == "finished"
    stored = store.events(run["id"])
    assert [e["type"] for e in stored] == [e["type"] for e in events[:-1]]
    totals = events[-1]["compute"]
    assert totals["generated_tokens"] > 0 and totals["prompt_tokens"] > 0 and totals["model_calls"] > 0
    # the cost deltas add up to the totals
    assert sum(e["cost"]["generated_tokens"] for e in events[:-1]) == totals["generated_tokens"]


def test_cancelled_run_is_stored_as_cancelled(store, random_lm_path):
    token = CancelToken()
    cfg = RunConfig(model=str(random_lm_path), verifier="oracle", strategy="beam_search", budget=4,
                    params={"beam_width": 2}, problem_id="test:3")
    events = []
    for e in execute(cfg, store, token):
        events.append(e)
        if e["type"] == "StepDone":
            token.cancel()
    assert events[-1]["status"] == "cancelled"
    run = store.get_run(events[0]["run_id"])
    assert run["status"] == "cancelled"
    assert any(e["type"] == "NodeAdded" for e in store.events(run["id"]))


def test_closing_the_stream_keeps_the_run_as_cancelled(store, random_lm_path):
    cfg = RunConfig(model=str(random_lm_path), verifier="oracle", strategy="particle_filtering", budget=4,
                    problem_id="test:1")
    gen = execute(cfg, store)
    first = next(gen)
    next(gen)
    gen.close()
    assert store.get_run(first["run_id"])["status"] == "cancelled"


@pytest.mark.parametrize("change, message", [
    ({"budget": 0}, "budget must be"),
    ({"budget": 1000}, "budget must be"),
    ({"model": "no-such-model"}, "unknown reasoning policy"),
    ({"strategy": "nope"}, "unknown strategy"),
    ({"problem_text": "What is the capital of France?"}, "Start with 37"),
    ({"params": {"beam_width": "x"}}, "beam_width must be int"),
    ({"params": {"bogus": 1}}, "unknown parameter"),
    ({"domain": "audio"}, "unknown domain"),
    ({"aggregation": "max"}, "aggregation must be"),
])
def test_bad_input_is_refused_before_anything_is_stored(store, change, message):
    cfg = RunConfig(**{"strategy": "beam_search", "verifier": "oracle", **change})
    with pytest.raises(ConfigError, match=message):
        list(execute(cfg, store, limits=Limits()))
    assert store.list_runs() == []


def _cli(*args, env_db):
    return subprocess.run([sys.executable, "app.py", *args, "--db", str(env_db)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})


def test_cli_run_json_with_a_local_model_folder(tmp_path, random_lm_path):
    # a typed problem for a model of your own is a free-form question, graded against --answer
    p = _cli("run", "--model", str(random_lm_path), "--verifier", "oracle", "--strategy", "best_of_n",
             "--budget", "3", "--problem", "Start with 2. Add 3.", "--answer", "5", "--json", env_db=tmp_path / "x.db")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for key in ("run_id", "problem", "prompt", "answer", "correct", "score", "compute"):
        assert key in out
    from backends.text.math_grading import MATH_SYSTEM
    assert out["prompt"] == f"Start with 2. Add 3.\n{MATH_SYSTEM}\n\n"  # no chat template: the raw prompt
    assert out["problem"]["answer"] == "5" and isinstance(out["correct"], bool)


@pytest.mark.parametrize("args, needle", [
    (["run", "--budget", "-1"], "budget"),
    (["run", "--strategy", "zzz"], "unknown strategy"),
    (["run", "--param", "oops"], "name=value"),
    (["sweep", "--budgets", "1,x"], "--budgets"),
    (["run", "--problem", "<b>hi</b>"], "arithmetic chains"),
])
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, args, needle):
    p = _cli(*args, env_db=tmp_path / "y.db")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], p.stderr


def test_cli_refuses_a_corrupt_database(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database at all" * 10)
    p = _cli("run", env_db=bad)
    assert p.returncode == 2 and "not a TTS Explorer database" in p.stderr
    assert bad.read_bytes() == b"not a database at all" * 10
