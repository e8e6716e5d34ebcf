"""The shipped example runs the Learn tab plays instantly: one stored run per strategy, on one problem.

Regenerate with ``python -m ui.examples`` (writes ``ui/examples.db`` with the embedded models; about a
minute on 2 CPU cores). The app reads a private copy of the file, so the shipped one is never written to.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

EXAMPLES_DB = Path(__file__).resolve().parent / "examples.db"
EXAMPLE_PROBLEM = "test:22"  # difficulty 3: greedy and majority vote miss it, every verifier-guided strategy finds it
EXAMPLE_BUDGET = 8
EXAMPLE_SEED = 0


def generate(out: Path = EXAMPLES_DB, problem_id: str = EXAMPLE_PROBLEM, budget: int = EXAMPLE_BUDGET) -> dict[str, str]:
    """Run every strategy once on ``problem_id`` and store the runs in a fresh database at ``out``."""
    from engine.run import RunConfig, execute
    from storage import RunStore
    from strategies.registry import STRATEGIES

    out = Path(out)
    tmp = Path(tempfile.mkdtemp(prefix="tts-examples-")) / "examples.db"
    ids: dict[str, str] = {}
    store = RunStore(tmp)
    try:
        for name, info in STRATEGIES.items():
            if "reasoning" not in info.domains:
                continue
            params = {"beam_width": 2} if name in ("beam_search", "dvts") else {}
            if name == "budget_forcing":  # tiny-think, 8x the budget in thinking tokens, 4 samples voting
                config = RunConfig(strategy=name, model="tiny-think", budget=budget * 8, problem_id=problem_id,
                                   seed=EXAMPLE_SEED, params={"n": 4})
            elif info.needs_thinking:  # the verifying thinkers: tiny-think checked by the oracle as it thinks
                config = RunConfig(strategy=name, model="tiny-think", verifier="oracle", budget=budget * 32,
                                   problem_id=problem_id, seed=EXAMPLE_SEED, params={"chunk": 8})
            elif name in ("refine", "evoscale"):  # feedback from the oracle's critique, the perfect verifier
                config = RunConfig(strategy=name, verifier="oracle", budget=budget // 2 if name == "refine" else
                                   budget, problem_id=problem_id, seed=EXAMPLE_SEED)
            else:
                config = RunConfig(strategy=name, budget=budget, problem_id=problem_id, seed=EXAMPLE_SEED,
                                   params=params)
            last = None
            for ev in execute(config, store, None):
                last = ev
            ids[name] = last["run_id"]
            log.info("example %s: run %s, answer %s (%s)", name, last["run_id"], last["answer"],
                     "correct" if last["correct"] else "wrong")
    finally:
        store.close()
    # checkpoint the WAL into the main file so a single file can be shipped
    import sqlite3
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("VACUUM")
    con.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp, out)
    shutil.rmtree(tmp.parent, ignore_errors=True)
    return ids


def load(path: Path = EXAMPLES_DB) -> dict[str, list[dict]]:
    """Strategy name -> events of its newest finished example run; {} when there is no example file."""
    from storage import RunStore
    from ui.common import stored_events

    path = Path(path)
    if not path.exists():
        return {}
    tmpdir = Path(tempfile.mkdtemp(prefix="tts-examples-"))
    copy = tmpdir / "examples.db"
    shutil.copyfile(path, copy)
    out: dict[str, list[dict]] = {}
    try:
        store = RunStore(copy, recover=False)
        try:
            for run in store.list_runs(status="finished", limit=500):
                if run.get("strategy") not in out:
                    out[run["strategy"]] = stored_events(store, run["id"])
        finally:
            store.close()
    except Exception:  # noqa: BLE001 - a broken example file must not stop the app
        log.exception("could not read the example runs in %s", path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(EXAMPLES_DB), help="where to write the example database")
    ap.add_argument("--problem-id", default=EXAMPLE_PROBLEM)
    ap.add_argument("--budget", type=int, default=EXAMPLE_BUDGET)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ids = generate(Path(args.out), args.problem_id, args.budget)
    size = Path(args.out).stat().st_size
    print(f"wrote {len(ids)} example runs to {args.out} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
