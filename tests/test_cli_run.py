"""``python app.py run`` as a user calls it: an empty problem is refused with one line and exit 2, and a run
stopped by SIGTERM or Ctrl-C is stored as cancelled (the store still passes ``PRAGMA integrity_check``); ``sweep
--workers`` above 1 for a model in this process is refused the same way."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import RunStore
from tests.conftest import embedded_models_ready

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def test_an_empty_problem_is_exit_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "app.py", "run", "--problem", "  ", "--db", str(tmp_path / "r.db")],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --problem is empty: give the problem text, or leave it out (then --problem-id, else test:0)"]


@pytest.mark.skipif(not embedded_models_ready()[0], reason="embedded weights missing")
@pytest.mark.parametrize("strategy, model", [("refine", "tiny-arith-s"), ("thought_truncation", "tiny-think")])
def test_a_refusal_after_the_models_loaded_is_still_one_line(tmp_path, strategy, model):
    """refine (and TrimR with its default confirm=critic) needs a critic; the PRM is loaded before the refusal, its
    load leaves no progress bar on stderr, and nothing is stored."""
    proc = subprocess.run([sys.executable, "app.py", "run", "--model", model, "--strategy", strategy, "--verifier",
                           "tiny-prm", "--budget", "2", "--db", str(tmp_path / "r.db")],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"error: {strategy} needs a verifier that critiques (tiny-critic, oracle); "
                                        "tiny-prm gives only a score"]
    store = RunStore(tmp_path / "r.db")
    assert store.list_runs() == []
    store.close()


@pytest.mark.skipif(not embedded_models_ready()[0], reason="embedded weights missing")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_run_is_stored_as_cancelled(tmp_path, sig):
    db = tmp_path / "r.db"
    proc = subprocess.Popen([sys.executable, "app.py", "run", "--strategy", "particle_filtering", "--budget", "64",
                             "--problem-id", "test:40", "--db", str(db)], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until the run is in the store and has stored a step
            if db.exists():
                with sqlite3.connect(db) as con:
                    tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
                    if "events" in tables and con.execute("select count(*) from events").fetchone()[0] > 1:
                        break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 2
    assert len(err.strip().splitlines()) >= 1 and "cancelled" in err.strip().splitlines()[-1]
    store = RunStore(db)
    try:
        runs = store.list_runs()
        assert [r["status"] for r in runs] == ["cancelled"]
    finally:
        store.close()
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_run_help_says_what_the_budget_buys_for_every_strategy():
    from strategies.registry import STRATEGIES
    out = subprocess.run([sys.executable, "app.py", "run", "--help"], cwd=ROOT, env=ENV, capture_output=True,
                         text=True, timeout=120).stdout
    for name, info in STRATEGIES.items():
        assert f"  {name} ({info.budget_param}): {info.budget_spec.help}" in out


@pytest.mark.parametrize("workers, says", [("4", "needs an OpenAI-compatible endpoint"), ("0", "from 1 to 64")])
def test_sweep_workers_above_one_are_refused_for_a_model_in_this_process(tmp_path, workers, says):
    proc = subprocess.run([sys.executable, "app.py", "sweep", "--workers", workers, "--problems", "1",
                           "--db", str(tmp_path / "s.db")], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and says in proc.stderr, proc.stderr
