"""The run store: every run, its events and its search tree, in one SQLite file (via sqlite-utils).

This is the only module in the project that speaks SQL. Everything else sees plain dicts whose JSON
columns (``config``, ``result``, ``totals``, event ``data``, node ``per_step``/``node_cost``) are
already decoded.

Concurrency: each thread gets its own connection (sqlite connections are per thread), writes take a
process-wide lock per database file and run inside ``BEGIN IMMEDIATE`` so that separate processes are
safe too; the file is in WAL mode so readers never block the writer.

Safety: a file that is not SQLite, or an SQLite database that is not ours, is refused with
``StoreError`` before anything is written to it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import sqlite3
import threading
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import platformdirs
from sqlite_utils import Database

log = logging.getLogger(__name__)

APP_NAME = "tts-explorer"
ENV_DB = "TTS_EXPLORER_DB"
APPLICATION_ID = 0x54545345  # "TTSE", written to the SQLite header by PRAGMA application_id
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 30.0
RUN_STATUSES = ("running", "finished", "cancelled", "failed", "interrupted")
FINAL_STATUSES = RUN_STATUSES[1:]
CONFIG_KEY_FIELDS = ("domain", "model", "verifier", "strategy", "budget", "seed", "problem_uid", "params")

_RUN_JSON = ("config", "result", "totals")
_NODE_JSON = ("per_step", "node_cost")
_RUN_CONFIG_COLUMNS = ("domain", "model", "verifier", "strategy", "budget", "seed",
                       "problem_uid", "problem_text", "difficulty", "sweep_id", "label")


class StoreError(Exception):
    """A problem with the run store, worded for the person running the app."""


# ---- paths --------------------------------------------------------------------------------------

def default_db_path(cli_path: str | os.PathLike | None = None) -> Path:
    """Where the database lives: ``--db``, else ``$TTS_EXPLORER_DB``, else the user data dir.

    Never the working directory (files there can end up served by Gradio). Parent dirs are created.
    """
    if cli_path:
        path = Path(cli_path).expanduser()
    elif os.environ.get(ENV_DB):
        path = Path(os.environ[ENV_DB]).expanduser()
    else:
        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "runs.db"
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# ---- small helpers ------------------------------------------------------------------------------

def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _json_default(o: Any) -> Any:
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if is_dataclass(o) and not isinstance(o, type):
        return asdict(o)
    if hasattr(o, "tolist"):  # numpy arrays and scalars
        return o.tolist()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _dumps(obj: Any) -> str | None:
    return None if obj is None else json.dumps(obj, default=_json_default)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _normalise(obj: Any) -> Any:
    """Canonical form for hashing: integral floats become ints, JSON strings are parsed."""
    if isinstance(obj, float) and obj.is_integer():
        return int(obj)
    if isinstance(obj, dict):
        return {str(k): _normalise(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_normalise(v) for v in obj]
    return obj


def config_key(domain: Any, model: Any, verifier: Any, strategy: Any, budget: Any, seed: Any,
               problem_uid: Any, params_json: str | dict | None) -> str:
    """A stable hash of one run configuration, used by ``--resume`` to find finished work.

    ``params_json`` may be a JSON string or a dict; ``None`` and ``{}`` are the same; 8 and 8.0 too.
    """
    params = json.loads(params_json) if isinstance(params_json, str) else params_json
    fields = dict(zip(CONFIG_KEY_FIELDS, (domain, model, verifier, strategy, budget, seed,
                                          problem_uid, params or {})))
    canonical = json.dumps(_normalise(fields), sort_keys=True, separators=(",", ":"),
                           default=_json_default)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _process_identity(pid: int) -> str | None:
    """Boot id and start time of a process (Linux), to tell a live run from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            start = f.read().rsplit(")", 1)[1].split()[19]
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f"{f.read().strip()}:{start}"
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int | None, identity: str | None) -> bool:
    """Whether the process that started a run still runs (zombies and reused pids count as dead)."""
    if not pid or pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes
        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    if pid != os.getpid():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, belongs to someone else
        except OSError:
            return False
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return False
        except (OSError, IndexError):
            pass
    current = _process_identity(pid)
    return identity is None or current is None or identity == current


# ---- schema and migrations ----------------------------------------------------------------------

def _v1(db: Database) -> None:
    """Version 1: meta, runs, events, nodes, sweeps."""
    statuses = ", ".join(f"'{s}'" for s in RUN_STATUSES)
    db.executescript(f"""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL CHECK (status IN ({statuses})),
            domain TEXT, model TEXT, verifier TEXT, strategy TEXT,
            budget NUMERIC, seed INTEGER, problem_uid TEXT, problem_text TEXT, difficulty INTEGER,
            config TEXT, result TEXT, totals TEXT,
            answer TEXT, correct INTEGER, score REAL, error TEXT,
            pid INTEGER, pid_start TEXT,
            sweep_id TEXT, label TEXT, config_key TEXT
        );
        CREATE INDEX runs_created_at ON runs (created_at);
        CREATE INDEX runs_strategy ON runs (strategy);
        CREATE INDEX runs_sweep_id ON runs (sweep_id);
        CREATE INDEX runs_status ON runs (status);
        CREATE INDEX runs_config_key ON runs (config_key);
        CREATE TABLE events (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            data TEXT,
            PRIMARY KEY (run_id, seq)
        );
        CREATE TABLE nodes (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            node_id TEXT NOT NULL,
            parent TEXT, step INTEGER, preview TEXT, finished INTEGER NOT NULL DEFAULT 0,
            answer TEXT, score REAL, per_step TEXT, pruned INTEGER NOT NULL DEFAULT 0,
            seed INTEGER, node_cost TEXT,
            PRIMARY KEY (run_id, node_id)
        );
        CREATE TABLE sweeps (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL CHECK (status IN ({statuses})),
            config TEXT, result TEXT,
            pid INTEGER, pid_start TEXT
        );
        CREATE INDEX sweeps_created_at ON sweeps (created_at);
    """)


# Applied in order: MIGRATIONS[i] takes a database from version i to i + 1. Add version 2 by appending.
MIGRATIONS: list[Callable[[Database], None]] = [_v1]

_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(str(path), threading.Lock())


# ---- the store ----------------------------------------------------------------------------------

class RunStore:
    """Runs, their events, their search trees and sweeps in one SQLite file.

    ``recover=True`` marks runs left ``running`` by a dead process as ``interrupted`` on opening.
    """

    def __init__(self, path: str | os.PathLike, *, recover: bool = True,
                 busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path).expanduser().resolve()
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._conns: list[Database] = []
        self._conns_guard = threading.Lock()
        self._closed = False
        self._check_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _write_lock(self.path)
        try:
            db = self._db()
            self._check_ours(db)  # read-only checks first: a foreign file is never written to
            with db.ensure_autocommit_on():
                db.conn.execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except BaseException:
            self.close()
            raise
        if recover:
            self.mark_interrupted()

    # -- connections and transactions --

    def _not_ours(self, why: str) -> StoreError:
        return StoreError(f"{self.path} is not a TTS Explorer database ({why}); "
                          "it was left untouched - choose another file with --db")

    def _check_file(self) -> None:
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a database file")
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as f:
                if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                    raise self._not_ours("not an SQLite file")

    def _db(self) -> Database:
        """This thread's connection, opened on first use."""
        if self._closed:
            raise StoreError(f"the run store {self.path} is closed")
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                conn = sqlite3.connect(str(self.path), timeout=self.busy_timeout_s,
                                       check_same_thread=False)
            except sqlite3.Error as e:
                raise StoreError(f"cannot open {self.path}: {e}") from e
            try:
                db = Database(conn, execute_plugins=False)
                db.execute("PRAGMA foreign_keys=ON")
                db.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
                db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError as e:
                conn.close()
                raise self._not_ours(f"unreadable: {e}") from e
            self._local.db = db
            with self._conns_guard:
                self._conns.append(db)
        return db

    def _state(self, db: Database) -> tuple[int, int | None]:
        """(application_id, stored schema version or None when there is no meta table)."""
        try:
            app_id = db.conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "meta" not in tables:
                return app_id, (0 if not tables else None)
            row = db.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            return app_id, int(row[0]) if row else None
        except (sqlite3.DatabaseError, ValueError) as e:
            raise self._not_ours(f"unreadable: {e}") from e

    def _check_ours(self, db: Database) -> int:
        """The stored schema version; raises unless the file is ours or empty."""
        app_id, version = self._state(db)
        if version == 0 and app_id == 0:
            return 0  # empty database: ours to initialise
        if app_id != APPLICATION_ID:
            raise self._not_ours(f"application id {app_id:#x}")
        if version is None:
            raise self._not_ours("no schema version")
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path} was written by a newer TTS Explorer (schema {version}, "
                             f"this version knows {len(MIGRATIONS)}); upgrade the app or use another --db")
        return version

    @contextlib.contextmanager
    def _write(self) -> Iterator[Database]:
        """One write transaction: process-wide lock plus BEGIN IMMEDIATE (safe across processes)."""
        db = self._db()
        with self._lock:
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise StoreError(f"cannot write to {self.path}: {e}") from e
            try:
                yield db
            except BaseException:
                db.rollback()
                raise
            else:
                try:
                    db.commit()
                except sqlite3.Error as e:
                    db.rollback()
                    raise StoreError(f"cannot write to {self.path}: {e}") from e

    def _migrate(self) -> None:
        with self._write() as db:
            version = self._check_ours(db)  # again, now that we hold the write lock
            for step in range(version, len(MIGRATIONS)):
                log.info("migrating %s to schema version %d", self.path, step + 1)
                MIGRATIONS[step](db)
            if version < len(MIGRATIONS):
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                           [str(len(MIGRATIONS))])

    @property
    def schema_version(self) -> int:
        return int(self._db().execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    def close(self) -> None:
        """Close every thread's connection; the store cannot be used afterwards."""
        self._closed = True
        with self._conns_guard:
            conns, self._conns = self._conns, []
        for db in conns:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs --

    def _new_id(self, db: Database, table: str, prefix: str) -> str:
        while True:
            new = prefix + secrets.token_hex(5)
            if db.execute(f"SELECT 1 FROM {table} WHERE id = ?", [new]).fetchone() is None:
                return new

    def create_run(self, config: dict) -> str:
        """A new ``running`` run for ``config`` (domain, model, ..., params); returns its id."""
        pid = os.getpid()
        with self._write() as db:
            run_id = self._new_id(db, "runs", "r")
            row = {c: config.get(c) for c in _RUN_CONFIG_COLUMNS}
            row.update(id=run_id, created_at=_now(), status="running", config=_dumps(config),
                       pid=pid, pid_start=_process_identity(pid), config_key=config_key(
                           *(config.get(f) for f in CONFIG_KEY_FIELDS[:-1]), config.get("params")))
            db["runs"].insert(row)
        log.debug("created run %s", run_id)
        return run_id

    def append_events(self, run_id: str, events: list[dict]) -> None:
        """Append events (dicts with a "type") with consecutive seq numbers; keep ``nodes`` in step."""
        if not events:
            return
        with self._write() as db:
            if db.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone() is None:
                raise StoreError(f"no run {run_id!r} in {self.path}")
            seq = db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM events WHERE run_id = ?",
                             [run_id]).fetchone()[0]
            rows = []
            for i, ev in enumerate(events):
                data = {k: v for k, v in ev.items() if k not in ("type", "seq")}
                rows.append((run_id, seq + i, ev["type"], _dumps(data)))
            db.conn.executemany("INSERT INTO events (run_id, seq, type, data) VALUES (?, ?, ?, ?)", rows)
            for ev in events:
                self._apply_to_nodes(db, run_id, ev)

    @staticmethod
    def _apply_to_nodes(db: Database, run_id: str, ev: dict) -> None:
        kind = ev["type"]
        if kind == "NodeAdded":
            db.execute(
                "INSERT OR REPLACE INTO nodes (run_id, node_id, parent, step, preview, finished, answer,"
                " seed, node_cost) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, ev["id"], ev.get("parent"), ev.get("step"), ev.get("preview"),
                 int(bool(ev.get("finished"))), ev.get("answer"), ev.get("seed"), _dumps(ev.get("node_cost"))])
        elif kind == "NodeScored":
            db.execute("UPDATE nodes SET score = ?, per_step = ? WHERE run_id = ? AND node_id = ?",
                       [ev.get("score"), _dumps(ev.get("per_step")), run_id, ev["id"]])
        elif kind == "NodePruned":
            db.execute("UPDATE nodes SET pruned = 1 WHERE run_id = ? AND node_id = ?", [run_id, ev["id"]])
        elif kind == "NodeFinished":
            db.execute("UPDATE nodes SET finished = 1, answer = ? WHERE run_id = ? AND node_id = ?",
                       [ev.get("answer"), run_id, ev["id"]])

    def finish_run(self, run_id: str, status: str, result: dict | None = None, totals: dict | None = None,
                   answer: str | None = None, correct: bool | int | None = None, score: float | None = None,
                   error: str | None = None) -> None:
        """Record the end of a run: status is one of finished, cancelled, failed, interrupted."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"unknown final status {status!r}; choose one of {', '.join(FINAL_STATUSES)}")
        with self._write() as db:
            cur = db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, result = ?, totals = ?, answer = ?, correct = ?,"
                " score = ?, error = ? WHERE id = ?",
                [status, _now(), _dumps(result), _dumps(totals), answer,
                 None if correct is None else int(correct), score, error, run_id])
            if cur.rowcount == 0:
                raise StoreError(f"no run {run_id!r} in {self.path}")
        log.debug("run %s %s", run_id, status)

    @staticmethod
    def _decode(row: dict, columns: Iterable[str]) -> dict:
        for c in columns:
            if c in row:
                row[c] = _loads(row[c])
        return row

    def get_run(self, run_id: str) -> dict | None:
        """The run row with JSON columns decoded, or None."""
        rows = list(self._db().query("SELECT * FROM runs WHERE id = ?", [run_id]))
        return self._decode(rows[0], _RUN_JSON) if rows else None

    def events(self, run_id: str) -> list[dict]:
        """The run's events in order, as appended plus "seq"."""
        return [{"type": r["type"], **(_loads(r["data"]) or {}), "seq": r["seq"]}
                for r in self._db().query("SELECT seq, type, data FROM events WHERE run_id = ? ORDER BY seq",
                                          [run_id])]

    def nodes(self, run_id: str) -> list[dict]:
        """The run's search tree, one dict per node in insertion order (finished/pruned as bools)."""
        out = []
        for r in self._db().query("SELECT * FROM nodes WHERE run_id = ? ORDER BY rowid", [run_id]):
            r = self._decode(r, _NODE_JSON)
            r["finished"], r["pruned"] = bool(r["finished"]), bool(r["pruned"])
            out.append(r)
        return out

    def list_runs(self, domain: str | None = None, model: str | None = None, strategy: str | None = None,
                  status: str | None = None, sweep_id: str | None = None, limit: int = 200,
                  with_result: bool = False) -> list[dict]:
        """Runs newest first, filtered by equality; ``result`` only when ``with_result``."""
        filters = {"domain": domain, "model": model, "strategy": strategy, "status": status,
                   "sweep_id": sweep_id}
        where = [f"{k} = :{k}" for k, v in filters.items() if v is not None]
        columns = "*" if with_result else ", ".join(
            c for c in self._db()["runs"].columns_dict if c != "result")
        sql = (f"SELECT {columns} FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY created_at DESC, rowid DESC LIMIT :limit")
        params = {k: v for k, v in filters.items() if v is not None} | {"limit": int(limit)}
        return [self._decode(r, _RUN_JSON) for r in self._db().query(sql, params)]

    def delete_run(self, run_id: str) -> bool:
        """Delete a run with its events and nodes; False when there was no such run."""
        with self._write() as db:
            return db.execute("DELETE FROM runs WHERE id = ?", [run_id]).rowcount > 0

    def drop_events(self, run_id: str) -> None:
        """Delete a run's events and nodes but keep its row (outcome and totals): how the shipped example file
        keeps the guided lessons' runs that are only counted, never replayed, small."""
        with self._write() as db:
            db.execute("DELETE FROM events WHERE run_id = ?", [run_id])
            db.execute("DELETE FROM nodes WHERE run_id = ?", [run_id])

    def export_run(self, run_id: str) -> dict:
        """The run row, its events and nodes as one JSON-serialisable dict."""
        run = self.get_run(run_id)
        if run is None:
            raise StoreError(f"no run {run_id!r} in {self.path}")
        return {"format": "tts-explorer-run", "schema_version": self.schema_version,
                "run": run, "events": self.events(run_id), "nodes": self.nodes(run_id)}

    def mark_interrupted(self) -> int:
        """Runs (and sweeps) left ``running`` by a process that is gone become ``interrupted``.

        Returns the number of runs marked. Zombies and reused pids count as gone (on Linux).
        """
        def stale(db: Database, table: str) -> list[tuple[str, int]]:
            rows = db.execute(f"SELECT id, pid, pid_start FROM {table} WHERE status = 'running'").fetchall()
            return [(item_id, pid) for item_id, pid, start in rows if not _pid_alive(pid, start)]

        now = _now()
        with self._write() as db:
            runs, sweeps = stale(db, "runs"), stale(db, "sweeps")
            db.conn.executemany(
                "UPDATE runs SET status = 'interrupted', finished_at = ?, error = ? WHERE id = ?",
                [(now, f"process {pid} ended before the run finished", i) for i, pid in runs])
            db.conn.executemany("UPDATE sweeps SET status = 'interrupted', finished_at = ? WHERE id = ?",
                                [(now, i) for i, _ in sweeps])
        if runs or sweeps:
            log.info("marked interrupted: runs %s, sweeps %s", [i for i, _ in runs], [i for i, _ in sweeps])
        return len(runs)

    # -- resume --

    def find_finished_run(self, domain: Any, model: Any, verifier: Any, strategy: Any, budget: Any,
                          seed: Any, problem_uid: Any, params_json: str | dict | None) -> dict | None:
        """The newest finished run with exactly this configuration, or None."""
        key = config_key(domain, model, verifier, strategy, budget, seed, problem_uid, params_json)
        rows = list(self._db().query(
            "SELECT id FROM runs WHERE config_key = ? AND status = 'finished'"
            " ORDER BY created_at DESC, rowid DESC LIMIT 1", [key]))
        return self.get_run(rows[0]["id"]) if rows else None

    def done_keys(self, keys: Iterable[str] | None = None) -> set[str]:
        """Which ``config_key`` values have a finished run (all of them when ``keys`` is None)."""
        done = {r["config_key"] for r in self._db().query(
            "SELECT DISTINCT config_key FROM runs WHERE status = 'finished' AND config_key IS NOT NULL")}
        return done if keys is None else done & set(keys)

    # -- sweeps --

    def create_sweep(self, config: dict) -> str:
        """A new ``running`` sweep; returns its id ("s" + 10 hex)."""
        pid = os.getpid()
        with self._write() as db:
            sweep_id = self._new_id(db, "sweeps", "s")
            db["sweeps"].insert({"id": sweep_id, "created_at": _now(), "status": "running",
                                 "config": _dumps(config), "pid": pid, "pid_start": _process_identity(pid)})
        return sweep_id

    def finish_sweep(self, sweep_id: str, status: str, result: dict | None = None) -> None:
        if status not in FINAL_STATUSES:
            raise ValueError(f"unknown final status {status!r}; choose one of {', '.join(FINAL_STATUSES)}")
        with self._write() as db:
            cur = db.execute("UPDATE sweeps SET status = ?, finished_at = ?, result = ? WHERE id = ?",
                             [status, _now(), _dumps(result), sweep_id])
            if cur.rowcount == 0:
                raise StoreError(f"no sweep {sweep_id!r} in {self.path}")

    def get_sweep(self, sweep_id: str) -> dict | None:
        rows = list(self._db().query("SELECT * FROM sweeps WHERE id = ?", [sweep_id]))
        return self._decode(rows[0], ("config", "result")) if rows else None

    def list_sweeps(self, status: str | None = None, limit: int = 100) -> list[dict]:
        """Sweeps newest first."""
        sql = "SELECT * FROM sweeps" + (" WHERE status = :status" if status else "") + \
            " ORDER BY created_at DESC, rowid DESC LIMIT :limit"
        return [self._decode(r, ("config", "result"))
                for r in self._db().query(sql, {"status": status, "limit": int(limit)})]
