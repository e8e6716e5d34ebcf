"""How far the sweep's time-left estimate is from the time that was really left, at every run of one sweep.

The estimate is ``engine.sweep.SweepClock`` (each (strategy, budget) cell's measured seconds per run); the baseline,
read at the same moments of the same sweep, is what the Scaling page said before it: the elapsed time divided
evenly over the runs done, times the runs to go. Prints each one's median absolute error (over the moments where
both give a number) and their ratio.

    python bench/sweep_eta.py [--problems 6]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from engine.limits import Limits
    from engine.sweep import SweepClock, SweepConfig, run_sweep
    from storage import RunStore

    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=6)
    args = ap.parse_args()
    cfg = SweepConfig(model="tiny-arith-s", verifier="tiny-prm", strategies=["greedy", "best_of_n", "beam_search"],
                      budgets=[1, 4, 16], problems=args.problems, seeds=[0])
    clock = SweepClock()
    moments: list[tuple[float, float | None, float]] = []  # (time, clock's estimate, even-split estimate)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            moments.append((now, clock.left_s(), (now - started) / done * (total - done)))

        run_sweep(cfg, RunStore(Path(tmp) / "eta.db"), progress=progress, limits=Limits(), clock=clock)
        ended = time.monotonic()
    pairs = [(abs(c - (ended - t)), abs(e - (ended - t))) for t, c, e in moments[:-1] if c is not None]
    cell, even = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    print(f"{len(moments)} runs in {ended - started:.1f} s; median |error| of the time left over {len(pairs)} moments:")
    print(f"  per-cell clock {cell:.1f} s, even split (baseline) {even:.1f} s, ratio {cell / even:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
