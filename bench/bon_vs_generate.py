"""The engine's best-of-16 against one batched ``generate(num_return_sequences=16)`` on the same prompts.

The limit for plain sampling: transformers' own loop drawing the 16 samples of a prompt in one batch. Both
sides sample 16 complete solutions per problem from tiny-arith-s at temperature 0.8; the engine's run also
stores nothing (``run_events``), and is timed with its verifier (``--verifier tiny-prm``, the default run) and
without one (majority vote, which scores nothing). Sides alternate per problem after one warm-up each, ``--reps`` times, and each side's fastest repetition of a
problem counts (on a shared machine a burst of load otherwise lands on one side). Prints the times and the
ratios engine / generate (the target is at most 1.3x).
Usage: python bench/bon_vs_generate.py [--problems 20] [--reps 3]
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

from backends.embedded import arith  # noqa: E402
from backends.text.loaders import load_policy  # noqa: E402
from engine.run import RunConfig, run_events  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(2)
    policy = load_policy("tiny-arith-s")
    tok, model = policy.tokenizer, policy.model

    def engine(strategy: str, problem: str) -> tuple[float, int]:
        t0 = time.perf_counter()
        events = list(run_events(RunConfig(model="tiny-arith-s", verifier="tiny-prm", strategy=strategy,
                                           budget=args.n, problem_id=problem)))
        return time.perf_counter() - t0, events[-1]["totals"]["generated_tokens"]

    def batched(p: arith.Problem, seed: int) -> tuple[float, int]:
        ids = tok(p.text + "\n", return_tensors="pt", add_special_tokens=False)
        t0 = time.perf_counter()
        with torch.inference_mode():
            torch.manual_seed(seed)
            out = model.generate(**ids, do_sample=True, temperature=0.8, top_k=0, max_new_tokens=480,
                                 num_return_sequences=args.n, pad_token_id=tok.pad_token_id,
                                 eos_token_id=tok.eos_token_id)
        new = out[:, ids["input_ids"].shape[1]:]
        # tokens up to and including each sample's EOS (the rest is padding of the batch)
        ends = [(row == tok.eos_token_id).nonzero() for row in new]
        n = sum(int(e[0]) + 1 if len(e) else new.shape[1] for e in ends)
        return time.perf_counter() - t0, n

    engine("best_of_n", "test:0"), engine("majority_vote", "test:0"), batched(arith.problem_at("test", 0), 0)
    sums = {"best_of_n": [0.0, 0], "majority_vote": [0.0, 0], "generate": [0.0, 0]}
    for i in range(args.problems):
        p = arith.problem_at("test", i)
        best: dict[str, tuple[float, int]] = {}
        for _ in range(args.reps):  # each side's fastest of the repetitions: the machine is shared
            for name in ("best_of_n", "generate", "majority_vote"):
                wall, n = batched(p, i) if name == "generate" else engine(name, p.uid)
                best[name] = min(best.get(name, (wall, n)), (wall, n))
        for name, (wall, n) in best.items():
            sums[name][0] += wall
            sums[name][1] += n
    print(f"tiny-arith-s, {args.n} samples per problem, test:0..{args.problems - 1}, temperature 0.8")
    for name, (wall, n) in sums.items():
        label = {"best_of_n": "engine best-of-16 (PRM scoring included)", "majority_vote": "engine majority vote (no verifier)",
                 "generate": f"generate(num_return_sequences={args.n})"}[name]
        print(f"{label:44s} {wall:7.2f} s, {n:6d} generated tokens, {1000 * wall / n:.3f} ms per token")
    g = sums["generate"][0]
    print(f"ratio engine best-of-16 / batched generate = {sums['best_of_n'][0] / g:.2f}x "
          f"(majority vote, no verifier: {sums['majority_vote'][0] / g:.2f}x)")


if __name__ == "__main__":
    main()
