"""First finish against best-of-N at the same N and seeds: generated tokens and wall time.

Both draw the same N samples per problem (same seed, same batched decode); best-of-N runs every sample to its
end, first finish stops the batch at the token where the first sample ends. Prints the totals, the share of
best-of-N's tokens first finish saved, and the ratios. Usage:
python bench/first_finish_vs_best_of_n.py [--problems 100] [--n 16]
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
from tqdm import tqdm  # noqa: E402

from engine.run import RunConfig, run_events  # noqa: E402


def run(strategy: str, model: str, n: int, problem: str) -> tuple[int, float, int]:
    """(generated tokens, wall seconds, distinct sample lengths) of one run."""
    started = time.perf_counter()
    # the oracle picks best-of-N's answer at no model cost, so the times compare generation alone
    events = list(run_events(RunConfig(model=model, verifier="oracle", strategy=strategy, budget=n,
                                       problem_id=problem)))
    lengths = {e["node_cost"]["generated_tokens"] for e in events if e["type"] == "NodeAdded" and e["parent"]}
    return events[-1]["totals"]["generated_tokens"], time.perf_counter() - started, len(lengths)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--model", default="tiny-arith-s")
    ap.add_argument("--n", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(2)
    run("best_of_n", args.model, 2, "test:0")  # load the model once, outside both timings
    bon_tok = ff_tok = varied = 0
    bon_s = ff_s = 0.0
    for i in tqdm(range(args.problems), desc="problems"):
        tok, secs, distinct = run("best_of_n", args.model, args.n, f"test:{i}")
        bon_tok, bon_s, varied = bon_tok + tok, bon_s + secs, varied + (distinct > 1)
        tok, secs, _ = run("first_finish", args.model, args.n, f"test:{i}")
        ff_tok, ff_s = ff_tok + tok, ff_s + secs
    print(f"{args.problems} test problems, N = {args.n}, {args.model}; sample lengths differ in {varied}")
    print(f"best-of-N    {bon_tok} generated tokens, {bon_s:.2f} s")
    print(f"first finish {ff_tok} generated tokens, {ff_s:.2f} s")
    print(f"saved {bon_tok - ff_tok} tokens ({(bon_tok - ff_tok) / bon_tok:.1%} of best-of-N's); "
          f"ratio best-of-N / first finish: tokens {bon_tok / ff_tok:.3f}x, time {bon_s / ff_s:.2f}x")


if __name__ == "__main__":
    main()
