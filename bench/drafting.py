"""Model-free n-gram drafting (``--option drafting=ngram``) on and off for best-of-16 and majority vote.

Each problem runs with drafting off and on, alternating (tiny-arith-s + tiny-prm, test problems, temperature
0.8, seed 0; one warm-up run each first). Prints per strategy and side: generated tokens, forward passes of the
policy (``model_calls``), drafts proposed and accepted, tokens per pass per sample, accuracy and wall time; then
the ratios off / on for passes and wall time. The samples differ between the sides (drafting keeps the
distribution, not the draws), so accuracies agree only statistically.
Usage: python bench/drafting.py [--problems 20] [--strategies best_of_n,majority_vote]
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

KEYS = ("generated_tokens", "model_calls", "draft_tokens", "draft_accepted")


def one(strategy: str, problem: str, drafting: str, budget: int) -> tuple[dict, bool, float]:
    cfg = RunConfig(model="tiny-arith-s", verifier="tiny-prm", strategy=strategy, budget=budget, problem_id=problem,
                    options={"drafting": drafting})
    t0 = time.perf_counter()
    events = list(run_events(cfg))
    wall = time.perf_counter() - t0
    return events[-1]["totals"], bool(events[-1].get("correct")), wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--strategies", default="best_of_n,majority_vote")
    args = ap.parse_args()
    torch.set_num_threads(2)
    for d in ("off", "ngram"):
        one("best_of_n", "test:0", d, 4)
    print(f"tiny-arith-s + tiny-prm, budget {args.budget}, test:0..{args.problems - 1}, seed 0, temperature 0.8")
    for strategy in args.strategies.split(","):
        sums = {d: dict.fromkeys(KEYS + ("correct", "wall"), 0) for d in ("off", "ngram")}
        for i in range(args.problems):
            for d in ("off", "ngram"):
                totals, correct, wall = one(strategy, f"test:{i}", d, args.budget)
                for k in KEYS:
                    sums[d][k] += totals.get(k, 0)
                sums[d]["correct"] += correct
                sums[d]["wall"] += wall
        for d, s in sums.items():
            rate = s["draft_accepted"] / s["draft_tokens"] if s["draft_tokens"] else 0.0
            per_pass = s["generated_tokens"] / max(s["generated_tokens"] - s["draft_accepted"], 1)
            print(f"{strategy:14s} drafting={d:5s}: generated {s['generated_tokens']:6d}, passes {s['model_calls']:5d}, "
                  f"drafts {s['draft_tokens']:6d} accepted {rate:.1%}, tokens per pass per sample {per_pass:.2f}, "
                  f"accuracy {s['correct'] / args.problems:.2f}, wall {s['wall']:.2f} s")
        off, on = sums["off"], sums["ngram"]
        print(f"{strategy:14s} ratios off / on: forward passes {off['model_calls'] / on['model_calls']:.2f}x, "
              f"wall {off['wall'] / on['wall']:.2f}x")


if __name__ == "__main__":
    main()
