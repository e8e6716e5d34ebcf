"""The run store on real SQLite files: round trip, concurrency, crash recovery, refusal, paths, migration."""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import storage
from storage import store as store_mod
from storage import RunStore, StoreError, default_db_path

REPO = Path(__file__).resolve().parents[1]


def config(**over) -> dict:
    c = {"domain": "arith", "model": "tiny", "verifier": "prm", "strategy": "beam", "budget": 8, "seed": 1,
         "problem_uid": "test:0", "problem_text": "3 + 4", "difficulty": 1, "params": {"width": 2}}
    return c | over


def node_events() -> list[dict]:
    return [
        {"type": "NodeAdded", "id": "n0", "parent": None, "step": 0, "preview": "3", "finished": False,
         "answer": None, "node_cost": {"nfe": 1}, "seed": 7, "cost": {"generated_tokens": 3}},
        {"type": "NodeAdded", "id": "n1", "parent": "n0", "step": 1, "preview": "3+4", "finished": False,
         "answer": None, "node_cost": {"nfe": 2}, "seed": 8},
        {"type": "NodeScored", "id": "n1", "score": 0.75, "per_step": [0.9, 0.75]},
        {"type": "NodePruned", "id": "n0", "reason": "beam"},
        {"type": "NodeFinished", "id": "n1", "answer": "7"},
        {"type": "StepDone", "step": 1},
    ]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


def test_round_trip(db_path: Path) -> None:
    with RunStore(db_path) as s:
        run = s.create_run(config(sweep_id="s1", label="first"))
        assert run.startswith("r") and len(run) == 11
        assert s.get_run(run)["status"] == "running" and s.get_run(run)["pid"] == os.getpid()
        evs = node_events()
        s.append_events(run, evs[:2])
        s.append_events(run, evs[2:])
        got = s.events(run)
        assert [e["seq"] for e in got] == list(range(len(evs)))
        assert [{k: v for k, v in e.items() if k != "seq"} for e in got] == evs
        nodes = {n["node_id"]: n for n in s.nodes(run)}
        assert nodes["n0"]["pruned"] and not nodes["n0"]["finished"] and nodes["n0"]["node_cost"] == {"nfe": 1}
        assert nodes["n1"]["parent"] == "n0" and nodes["n1"]["seed"] == 8
        assert (nodes["n1"]["score"], nodes["n1"]["per_step"], nodes["n1"]["finished"], nodes["n1"]["answer"]) \
            == (0.75, [0.9, 0.75], True, "7")

        s.finish_run(run, "finished", result={"candidates": [{"id": "n1"}]}, totals={"nfe": 3, "flops": 1.5},
                     answer="7", correct=True, score=0.75)
        row = s.get_run(run)
        assert row["status"] == "finished" and row["finished_at"] and row["correct"] == 1
        assert row["result"] == {"candidates": [{"id": "n1"}]} and row["totals"] == {"nfe": 3, "flops": 1.5}
        assert row["config"] == config(sweep_id="s1", label="first") and row["label"] == "first"

        other = s.create_run(config(strategy="best_of_n", model="other"))
        assert [r["id"] for r in s.list_runs()] == [other, run]
        assert "result" not in s.list_runs()[0] and s.list_runs(with_result=True)[1]["result"]
        assert [r["id"] for r in s.list_runs(strategy="beam")] == [run]
        assert [r["id"] for r in s.list_runs(model="other", status="running")] == [other]
        assert [r["id"] for r in s.list_runs(sweep_id="s1", domain="arith")] == [run]
        assert s.list_runs(limit=1)[0]["id"] == other

        exported = json.loads(json.dumps(s.export_run(run)))
        assert exported["run"]["id"] == run and len(exported["events"]) == len(evs) and len(exported["nodes"]) == 2

        found = s.find_finished_run("arith", "tiny", "prm", "beam", 8.0, 1, "test:0", '{"width": 2}')
        assert found["id"] == run
        assert s.find_finished_run("arith", "tiny", "prm", "beam", 16, 1, "test:0", {"width": 2}) is None
        assert s.done_keys() == {row["config_key"]} and s.done_keys(["x"]) == set()

        with pytest.raises(StoreError):
            s.append_events("rnope", evs)
        with pytest.raises(ValueError):
            s.finish_run(run, "running")

        assert s.delete_run(run) and not s.delete_run(run)
        assert s.get_run(run) is None and s.events(run) == [] and s.nodes(run) == []
        counts = [s._db().execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("events", "nodes")]
        assert counts == [0, 0]


def test_sweeps(db_path: Path) -> None:
    with RunStore(db_path) as s:
        sw = s.create_sweep({"budgets": [1, 2]})
        assert sw.startswith("s") and s.get_sweep(sw)["status"] == "running"
        s.finish_sweep(sw, "finished", {"points": 2})
        got = s.get_sweep(sw)
        assert got["config"] == {"budgets": [1, 2]} and got["result"] == {"points": 2}
        assert [x["id"] for x in s.list_sweeps()] == [sw] and s.list_sweeps(status="running") == []


def test_concurrent_writers(db_path: Path) -> None:
    s = RunStore(db_path)
    other = RunStore(db_path)  # a second store on the same file: separate connections, same write lock
    errors: list[BaseException] = []
    made: list[str] = []

    def work(i: int) -> None:
        try:
            st = s if i % 2 else other
            for _ in range(2):
                run = st.create_run(config(seed=i))
                made.append(run)
                for b in range(50):
                    st.append_events(run, [{"type": "StepDone", "step": b}, {"type": "StepDone", "step": b}])
                st.finish_run(run, "finished")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(s.list_runs(status="finished")) == 16
    for run in made:
        assert [e["seq"] for e in s.events(run)] == list(range(100))
    s.close()
    other.close()


def test_killed_run_is_marked_interrupted(db_path: Path) -> None:
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from storage import RunStore\n"
        f"s = RunStore({str(db_path)!r})\n"
        "run = s.create_run({'domain': 'arith', 'strategy': 'beam'})\n"
        "for i in range(5):\n"
        "    s.append_events(run, [{'type': 'StepDone', 'step': i}])\n"
        "print(run, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        run = proc.stdout.readline().strip()
        assert run.startswith("r"), run
        with RunStore(db_path) as live:  # the writer is still alive: its run stays running
            assert live.get_run(run)["status"] == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    with RunStore(db_path) as s:
        row = s.get_run(run)
        assert row["status"] == "interrupted" and str(proc.pid) in row["error"]
        assert [e["step"] for e in s.events(run)] == list(range(5))
        assert s.mark_interrupted() == 0


def test_own_live_runs_are_not_interrupted(db_path: Path) -> None:
    with RunStore(db_path) as s:
        run = s.create_run(config())
        assert s.mark_interrupted() == 0 and s.get_run(run)["status"] == "running"
        s._db().execute("UPDATE runs SET pid_start = 'another boot:1' WHERE id = ?", [run])  # a reused pid
        assert s.mark_interrupted() == 1 and s.get_run(run)["status"] == "interrupted"


def _refused(path: Path) -> None:
    before = path.read_bytes()
    siblings = set(path.parent.iterdir())
    with pytest.raises(StoreError, match="is not a TTS Explorer database"):
        RunStore(path)
    assert path.read_bytes() == before
    assert set(path.parent.iterdir()) == siblings


def test_refuses_foreign_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(random.Random(0).randbytes(8192))
    _refused(junk)

    text = tmp_path / "notes.txt"
    text.write_text("just some notes\n")
    _refused(text)

    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + random.Random(1).randbytes(8192))
    _refused(bad)

    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO accounts (name) VALUES ('alice')")
    conn.commit()
    conn.close()
    _refused(foreign)


def test_default_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(store_mod.platformdirs, "user_data_dir",
                        lambda *a, **k: str(tmp_path / "data" / "tts-explorer"))
    monkeypatch.delenv("TTS_EXPLORER_DB", raising=False)
    assert default_db_path() == tmp_path / "data" / "tts-explorer" / "runs.db"
    assert (tmp_path / "data" / "tts-explorer").is_dir()

    monkeypatch.setenv("TTS_EXPLORER_DB", str(tmp_path / "env" / "e.db"))
    assert default_db_path() == tmp_path / "env" / "e.db" and (tmp_path / "env").is_dir()
    assert default_db_path(str(tmp_path / "cli" / "c.db")) == tmp_path / "cli" / "c.db"
    assert (tmp_path / "cli").is_dir()


def test_real_default_is_not_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TTS_EXPLORER_DB", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / ".local" / "share"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    path = default_db_path()
    assert path.is_absolute() and path.name == "runs.db" and path.parent != Path.cwd()
    assert Path.cwd() not in path.parents and (tmp_path / "home") in path.parents


def test_migration_upgrades_and_rolls_back(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with RunStore(db_path) as s:
        run = s.create_run(config())
        assert s.schema_version == 1

    def broken(db) -> None:
        db.execute("ALTER TABLE runs ADD COLUMN half_done TEXT")
        raise RuntimeError("migration failed")

    monkeypatch.setattr(store_mod, "MIGRATIONS", [*store_mod.MIGRATIONS, broken])
    with pytest.raises(RuntimeError):
        RunStore(db_path)
    conn = sqlite3.connect(db_path)
    assert "half_done" not in {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    conn.close()

    def v2(db) -> None:
        db.execute("ALTER TABLE runs ADD COLUMN notes TEXT")

    monkeypatch.setattr(store_mod, "MIGRATIONS", [store_mod.MIGRATIONS[0], v2])
    with RunStore(db_path) as s:
        assert s.schema_version == 2
        assert s.get_run(run)["notes"] is None and s.get_run(run)["domain"] == "arith"

    monkeypatch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS[:1])
    with pytest.raises(StoreError, match="newer"):
        RunStore(db_path)


def test_public_names() -> None:
    assert storage.RunStore is RunStore and storage.StoreError is StoreError
    assert storage.config_key("a", None, None, "b", 8, 1, "u", None) == \
        storage.config_key("a", None, None, "b", 8.0, 1, "u", "{}")
