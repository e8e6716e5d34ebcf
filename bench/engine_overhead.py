"""The engine's overhead: wall time outside model and verifier calls, as a share of each run.

Model and verifier time is what the backends measure around their forward passes; the rest is the
strategy, event building, SQLite writes and Python glue. Usage: python bench/engine_overhead.py
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from engine.run import RunConfig, execute  # noqa: E402
from storage import RunStore  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=5)
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--strategies", default="best_of_n,beam_search,dvts,particle_filtering,mcts")
    args = ap.parse_args()
    torch.set_num_threads(2)
    store = RunStore(Path(tempfile.mkdtemp()) / "bench.db")
    list(execute(RunConfig(strategy="best_of_n", budget=2, problem_id="test:0"), store))  # warm-up
    total_wall = total_model = 0.0
    for name in args.strategies.split(","):
        wall = model = 0.0
        for i in range(args.problems):
            end = list(execute(RunConfig(strategy=name, budget=args.budget, problem_id=f"test:{i}"), store))[-1]
            wall += end["compute"]["wall_s"]
            model += end["compute"]["model_s"]
        total_wall += wall
        total_model += model
        print(f"{name:<20} wall {wall:7.2f} s  model+verifier {model:7.2f} s  overhead {(wall - model) / wall:6.1%}")
    print(f"{'all':<20} wall {total_wall:7.2f} s  model+verifier {total_model:7.2f} s  "
          f"overhead {(total_wall - total_model) / total_wall:6.1%}")


if __name__ == "__main__":
    main()
