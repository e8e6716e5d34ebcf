"""Best-of-16 through the engine against the same 16 samples drawn by 16 sequential ``generate`` calls.

Both sides sample 16 complete solutions per problem from the same policy at the same temperature; the
engine batches them and prefills the prompt once, the baseline calls transformers' ``generate`` once per
sample. Prints both times and the ratio. Usage: python bench/bon_batched_vs_sequential.py [--problems 10]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from backends.text.loaders import load_policy  # noqa: E402
from backends.embedded import arith  # noqa: E402
from engine.run import RunConfig, execute  # noqa: E402
from storage import RunStore  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=10)
    ap.add_argument("--model", default="tiny-arith-s")
    ap.add_argument("--n", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(2)
    problems = [arith.problem_at("test", i) for i in range(args.problems)]
    policy = load_policy(args.model)
    store = RunStore(Path(tempfile.mkdtemp()) / "bench.db")

    # warm up both paths once so neither pays first-call costs
    list(execute(RunConfig(model=args.model, verifier="tiny-prm", strategy="best_of_n", budget=2,
                           problem_id="test:0"), store))
    t0 = time.perf_counter()
    engine_tokens = 0
    for p in problems:
        events = list(execute(RunConfig(model=args.model, verifier="tiny-prm", strategy="best_of_n",
                                        budget=args.n, problem_id=p.uid), store))
        engine_tokens += events[-1]["compute"]["generated_tokens"]
    engine_s = time.perf_counter() - t0

    tok, model = policy.tokenizer, policy.model
    t0 = time.perf_counter()
    seq_tokens = 0
    with torch.inference_mode():
        for p in problems:
            ids = tok(p.text + "\n", return_tensors="pt", add_special_tokens=False)
            for s in range(args.n):
                torch.manual_seed(s)
                out = model.generate(**ids, do_sample=True, temperature=0.8, max_new_tokens=480,
                                     pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
                seq_tokens += out.shape[1] - ids["input_ids"].shape[1]
    seq_s = time.perf_counter() - t0
    print(f"problems={args.problems} samples/problem={args.n} model={args.model}")
    print(f"engine best-of-{args.n} (batched, PRM scoring included): {engine_s:.2f} s, {engine_tokens} tokens")
    print(f"sequential generate x{args.n} (no scoring):              {seq_s:.2f} s, {seq_tokens} tokens")
    print(f"ratio sequential / engine = {seq_s / engine_s:.2f}x")


if __name__ == "__main__":
    main()
