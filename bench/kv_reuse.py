"""Prefill tokens per generated token and wall time with KV reuse across steps on and off, at budget 16.

For beam search, DVTS and particle filtering (tiny-arith-s + tiny-prm, test problems, seed 0) each problem runs
twice in the same process, ``--option kv_reuse=off`` then ``on`` (alternating, so both see the same load; one
warm-up run each first). Prints, per strategy and side: prefill (prompt) tokens, generated tokens, their ratio,
verifier tokens, wall time, and whether every run chose the same answer and node on both sides; then the
ratios off / on. Usage: python bench/kv_reuse.py [--problems 20] [--strategies beam_search,dvts,particle_filtering]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from engine.run import RunConfig, run_events  # noqa: E402


def one(strategy: str, problem: str, reuse: str, budget: int) -> tuple[dict, tuple, float]:
    cfg = RunConfig(model="tiny-arith-s", verifier="tiny-prm", strategy=strategy, budget=budget, problem_id=problem,
                    options={"kv_reuse": reuse})
    t0 = time.perf_counter()
    events = list(run_events(cfg))
    wall = time.perf_counter() - t0
    done = next(e for e in events if e["type"] == "RunFinished")
    return events[-1]["totals"], (done["answer"], done["node_id"]), wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--strategies", default="beam_search,dvts,particle_filtering")
    args = ap.parse_args()
    torch.set_num_threads(2)
    for reuse in ("off", "on"):
        one("beam_search", "test:0", reuse, 4)
    print(f"tiny-arith-s + tiny-prm, budget {args.budget}, test:0..{args.problems - 1}, seed 0")
    for strategy in args.strategies.split(","):
        sums = {r: {"prompt": 0, "generated": 0, "verifier": 0, "wall": 0.0} for r in ("off", "on")}
        same = 0
        for i in range(args.problems):
            chosen = {}
            for reuse in ("off", "on"):
                totals, chosen[reuse], wall = one(strategy, f"test:{i}", reuse, args.budget)
                s = sums[reuse]
                s["prompt"] += totals["prompt_tokens"]
                s["generated"] += totals["generated_tokens"]
                s["verifier"] += totals["verifier_tokens"]
                s["wall"] += wall
            same += chosen["off"] == chosen["on"]
        for reuse, s in sums.items():
            print(f"{strategy:20s} kv_reuse={reuse:3s}: prefill {s['prompt']:6d} / generated {s['generated']:6d} = "
                  f"{s['prompt'] / s['generated']:.3f} per generated token, verifier {s['verifier']:6d}, "
                  f"wall {s['wall']:.2f} s")
        off, on = sums["off"], sums["on"]
        print(f"{strategy:20s} same answer and node on {same}/{args.problems} problems; ratios off / on: prefill "
              f"{off['prompt'] / on['prompt']:.1f}x, verifier tokens {off['verifier'] / on['verifier']:.2f}x, "
              f"wall {off['wall'] / on['wall']:.2f}x")


if __name__ == "__main__":
    main()
