"""The shipped runs the Learn tab plays instantly: one example run per strategy, and the runs of every guided
lesson (``ui.lessons_content``).

Regenerate with ``python -m ui.examples``: it writes ``ui/examples.db`` and, for the image runs, their preview
PNGs packed in ``ui/example_images.zip``. The app reads a private copy of the database, so the shipped one is
never written to, and unpacks the images once into a folder of the images root (the one folder the app serves),
pointing the image runs' events at it.

A strategy's example is :data:`EXAMPLES`' entry for it, else its domain's default in :data:`DOMAIN_DEFAULTS`;
a new strategy registers a config here (``EXAMPLES["name"] = {...}``) when the default does not suit it.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from engine.lessons import Arm, Row, run_lesson, stored_rows, tag
from ui.lessons_content import LESSONS

log = logging.getLogger(__name__)

EXAMPLES_DB = Path(__file__).resolve().parent / "examples.db"
EXAMPLE_IMAGES = EXAMPLES_DB.with_name("example_images.zip")
EXAMPLE_PROBLEM = "test:22"  # difficulty 3: greedy and majority vote miss it, every verifier-guided strategy finds it
EXAMPLE_BUDGET = 8
EXAMPLE_SEED = 0
EXAMPLE_TAG = "example"  # the sweep_id of an example run (a lesson's runs carry engine.lessons.tag)

# The first domain each strategy lists gets its example with these RunConfig fields.
DOMAIN_DEFAULTS: dict[str, dict] = {
    "reasoning": {"budget": EXAMPLE_BUDGET, "problem_id": EXAMPLE_PROBLEM},
    # digit 3 of the test split; 10 denoising steps keep the strips short and the zip small
    "image": {"domain": "image", "model": "tiny-digits", "verifier": "digit-classifier", "budget": EXAMPLE_BUDGET,
              "problem_id": "test:3", "options": {"steps": 10}},
}
# Per strategy, what differs from its domain's default.
EXAMPLES: dict[str, dict] = {
    "beam_search": {"params": {"beam_width": 2}},
    "dvts": {"params": {"beam_width": 2}},
    # tiny-think, 8x the budget in thinking tokens, 4 samples voting
    "budget_forcing": {"model": "tiny-think", "budget": EXAMPLE_BUDGET * 8, "params": {"n": 4}},
    "more_steps": {"budget": 2, "verifier": None},
    # the verifying thinkers: tiny-think checked by the oracle's critique as it thinks, probed every 8 tokens
    "thought_truncation": {"model": "tiny-think", "verifier": "oracle", "budget": EXAMPLE_BUDGET * 32,
                           "params": {"chunk": 8}},
    "solve_detect_verify": {"model": "tiny-think", "verifier": "oracle", "budget": EXAMPLE_BUDGET * 32,
                            "params": {"chunk": 8}},
    # feedback from the oracle's critique, the perfect verifier
    "refine": {"verifier": "oracle", "budget": EXAMPLE_BUDGET // 2},
    "evoscale": {"verifier": "oracle"},
}


def example_config(name: str) -> dict:
    """The RunConfig fields of ``name``'s example run."""
    from strategies.registry import STRATEGIES

    info = STRATEGIES[name]
    base = DOMAIN_DEFAULTS.get(info.domains[0])
    if base is None:
        raise KeyError(f"no example default for the {info.domains[0]} domain: add one to ui.examples.EXAMPLES")
    return {**base, "strategy": name, "seed": EXAMPLE_SEED, **EXAMPLES.get(name, {})}


@dataclass
class Shipped:
    """What the Learn tab plays: example events per strategy, and per lesson its stored rows and the events of
    the runs it shows (run id -> events)."""

    examples: dict[str, list[dict]] = field(default_factory=dict)
    lessons: dict[str, list[Row]] = field(default_factory=dict)
    events: dict[str, list[dict]] = field(default_factory=dict)


def _run(config: dict, store, tag: str) -> dict:
    from engine.run import RunConfig, execute

    last: dict = {}
    for last in execute(RunConfig(**config, sweep_id=tag), store, None):
        pass
    if last.get("status") != "finished":
        raise RuntimeError(f"{config['strategy']} example did not finish: {last.get('error') or last.get('status')}")
    return last


def generate(out: Path = EXAMPLES_DB, images: Path | None = None) -> dict[str, str]:
    """Run every strategy's example and every lesson into a fresh database at ``out`` (previews of image runs
    packed into ``images``, default beside ``out``); strategy name -> example run id."""
    from storage import RunStore
    from strategies.registry import STRATEGIES

    out = Path(out)
    images = Path(images) if images else out.with_name(EXAMPLE_IMAGES.name)
    work = Path(tempfile.mkdtemp(prefix="tts-examples-"))
    tmp, pngs = work / "examples.db", work / "images"
    saved = os.environ.get("TTS_IMAGES_DIR")
    os.environ["TTS_IMAGES_DIR"] = str(pngs)  # image runs write their previews where we pack them from
    ids: dict[str, str] = {}
    store = RunStore(tmp)
    try:
        for name in STRATEGIES:
            started = time.perf_counter()
            last = _run(example_config(name), store, EXAMPLE_TAG)
            ids[name] = last["run_id"]
            log.info("example %s: run %s, answer %s (%s), %.1f s", name, last["run_id"], last["answer"],
                     "correct" if last["correct"] else "wrong", time.perf_counter() - started)
        for arm, problems in lesson_runs():
            started = time.perf_counter()
            rows = list(run_lesson([arm], list(problems), store))
            log.info("lesson arm %s: %d runs, %d right, %.1f s", arm.key, len(rows), sum(r.correct for r in rows),
                     time.perf_counter() - started)
        keep = set(ids.values()) | {i for lesson in LESSONS
                                    for i in lesson.shown(stored_rows(store, lesson.arms, lesson.problems))}
        folders = {Path(p).parent.name for run_id in keep for p in _pngs(store.events(run_id))}
        for arm, _ in lesson_runs():  # lesson runs the page only counts need their rows, not their events
            for run in store.list_runs(sweep_id=tag(arm.key), limit=10_000):
                if run["id"] not in keep:
                    store.drop_events(run["id"])
    finally:
        store.close()
        if saved is None:
            os.environ.pop("TTS_IMAGES_DIR", None)
        else:
            os.environ["TTS_IMAGES_DIR"] = saved
    _compact(tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tmp, out)
    with zipfile.ZipFile(images, "w", zipfile.ZIP_DEFLATED) as z:
        for png in sorted(pngs.rglob("*.png")) if pngs.exists() else []:
            if png.parent.name in folders:  # the previews of the runs the page plays, not every lesson run's
                z.write(png, png.relative_to(pngs).as_posix())
    shutil.rmtree(work, ignore_errors=True)
    return ids


def lesson_runs() -> list[tuple[Arm, tuple[str, ...]]]:
    """Every lesson arm once, with the problems of all the lessons that use it (in first-seen order)."""
    out: dict[str, tuple[Arm, dict[str, None]]] = {}
    for lesson in LESSONS:
        for arm in lesson.arms:
            out.setdefault(arm.key, (arm, {}))[1].update(dict.fromkeys(lesson.problems))
    return [(arm, tuple(problems)) for arm, problems in out.values()]


def _pngs(value) -> list[str]:
    """Every PNG path in an event structure."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in _pngs(v)]
    if isinstance(value, list):
        return [p for v in value for p in _pngs(v)]
    return [value] if isinstance(value, str) and value.endswith(".png") else []


def _compact(path: Path) -> None:
    """Checkpoint the WAL into the main file and vacuum it, so one small file can be shipped."""
    import sqlite3
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("VACUUM")
    con.close()


def unpack_images(zip_path: Path = EXAMPLE_IMAGES) -> Path | None:
    """The shipped previews unpacked into ``<images root>/examples-<digest>`` (once: the folder is named by the
    zip's content and moved into place whole, so two processes never see half of it); None without a zip."""
    from ui.common import images_root

    if not zip_path.exists():
        return None
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()[:12]
    target = images_root() / f"examples-{digest}"
    if target.is_dir():
        return target
    images_root().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="unpacking-", dir=images_root()))
    with zipfile.ZipFile(zip_path) as z:
        for member in z.namelist():
            dest = (staging / member).resolve()
            if not dest.is_relative_to(staging.resolve()) or not member.endswith(".png"):
                raise ValueError(f"unexpected member {member!r} in {zip_path}")
        z.extractall(staging)
    try:
        staging.rename(target)
    except OSError:  # another process moved its copy in first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _repoint(value, folder: Path):
    """``value`` with every PNG path (``<anything>/run-<id>/<node>.png``) moved under ``folder``."""
    if isinstance(value, dict):
        return {k: _repoint(v, folder) for k, v in value.items()}
    if isinstance(value, list):
        return [_repoint(v, folder) for v in value]
    if isinstance(value, str) and value.endswith(".png"):
        p = Path(value)
        return str(folder / p.parent.name / p.name)
    return value


def load(path: Path = EXAMPLES_DB, images: Path | None = None) -> Shipped:
    """The shipped runs (empty when there is no example file)."""
    from storage import RunStore
    from ui.common import stored_events

    path = Path(path)
    shipped = Shipped()
    if not path.exists():
        return shipped
    tmpdir = Path(tempfile.mkdtemp(prefix="tts-examples-"))
    copy = tmpdir / "examples.db"
    shutil.copyfile(path, copy)
    try:
        folder = unpack_images(Path(images) if images else path.with_name(EXAMPLE_IMAGES.name))
        store = RunStore(copy, recover=False)
        try:
            for run in store.list_runs(status="finished", sweep_id=EXAMPLE_TAG, limit=500):
                if run.get("strategy") not in shipped.examples:
                    events = stored_events(store, run["id"])
                    shipped.examples[run["strategy"]] = _repoint(events, folder) if folder else events
            for lesson in LESSONS:
                rows = stored_rows(store, lesson.arms, lesson.problems)
                shipped.lessons[lesson.key] = rows
                for run_id in lesson.shown(rows):
                    events = stored_events(store, run_id)
                    shipped.events[run_id] = _repoint(events, folder) if folder else events
        finally:
            store.close()
    except Exception:  # noqa: BLE001 - a broken example file must not stop the app
        log.exception("could not read the example runs in %s", path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return shipped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(EXAMPLES_DB), help="where to write the example database")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    ids = generate(Path(args.out))
    out = Path(args.out)
    zipped = out.with_name(EXAMPLE_IMAGES.name)
    print(f"wrote {len(ids)} example runs and {len(LESSONS)} lessons to {out} ({out.stat().st_size / 1024:.0f} KiB) "
          f"and {zipped} ({zipped.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
