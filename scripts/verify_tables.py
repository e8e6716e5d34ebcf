"""The README's tables for the methods that verify as they go, run through the engine (no store):

``thinking``: thought truncation (TrimR) and Solve-Detect-Verify against budget forcing on tiny-think: accuracy,
thinking tokens, all generated tokens (probes' answers included) and verifier tokens per run.
``refine``: refinement with feedback against parallel sampling (majority vote, best-of-N) on tiny-arith-s:
accuracy and generated tokens per run, so rows of equal tokens can be read side by side.

    python scripts/verify_tables.py thinking --problems 100 --seeds 0 --verifier oracle --out thinking.json
    python scripts/verify_tables.py refine --problems 100 --seeds 0 --verifier oracle --out refine.json

(The sweep command cannot run these: it adds majority-vote runs at the largest budget for its oracle pass@k,
and a thinking budget of 256 tokens is past the cap on samples.) Prints a markdown table; ``--out`` keeps the
per-row means as JSON.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.run import RunConfig, run_events  # noqa: E402 - after the repository root is on the path

# (label, strategy, budget, params, uses the verifier)
THINKING_ROWS = [
    ("budget forcing, budget 8", "budget_forcing", 8, {}, False),
    ("budget forcing, budget 16", "budget_forcing", 16, {}, False),
    ("budget forcing, budget 32", "budget_forcing", 32, {}, False),
    ("budget forcing, budget 64", "budget_forcing", 64, {}, False),
    ("budget forcing, budget 256", "budget_forcing", 256, {}, False),
    ("solve-detect-verify, chunk 16", "solve_detect_verify", 256, {"chunk": 16}, True),
    ("thought truncation, chunk 16, critic", "thought_truncation", 256, {"chunk": 16}, True),
    ("thought truncation, chunk 16, no critic", "thought_truncation", 256, {"chunk": 16, "confirm": "none"}, True),
]
REFINE_ROWS = [
    ("majority vote, N=1", "majority_vote", 1, {}, False),
    ("majority vote, N=2", "majority_vote", 2, {}, False),
    ("majority vote, N=4", "majority_vote", 4, {}, False),
    ("majority vote, N=8", "majority_vote", 8, {}, False),
    ("best-of-N (tiny-prm), N=2", "best_of_n", 2, {}, "tiny-prm"),
    ("best-of-N (tiny-prm), N=4", "best_of_n", 4, {}, "tiny-prm"),
    ("best-of-N (tiny-prm), N=8", "best_of_n", 8, {}, "tiny-prm"),
    ("refine, R=2", "refine", 2, {}, True),
    ("refine, R=4", "refine", 4, {}, True),
    ("refine, R=8", "refine", 8, {}, True),
    ("evoscale, N=4", "evoscale", 4, {}, True),
    ("evoscale, N=8", "evoscale", 8, {}, True),
]
MODELS = {"thinking": "tiny-think", "refine": "tiny-arith-s"}


def measure(table: str, problems: int, seeds: list[int], verifier: str, only: list[str] | None) -> list[dict]:
    rows = THINKING_ROWS if table == "thinking" else REFINE_ROWS
    rows = [r for r in rows if not only or r[1] in only or r[0] in only]
    out = []
    for label, strategy, budget, params, uses in rows:
        v = verifier if uses is True else uses or None
        runs = [(i, seed) for seed in seeds for i in range(problems)]
        sums = {"correct": 0.0, "thinking_tokens": 0.0, "generated_tokens": 0.0, "verifier_tokens": 0.0,
                "probes": 0.0}
        for i, seed in tqdm(runs, desc=label, leave=False):
            cfg = RunConfig(model=MODELS[table], verifier=v, strategy=strategy, budget=budget, params=dict(params),
                            problem_id=f"test:{i}", seed=seed)
            events = list(run_events(cfg))
            graded = events[-1]
            stats = next(e for e in events if e["type"] == "RunFinished")["stats"]
            sums["correct"] += bool(graded["correct"])
            for k in ("thinking_tokens", "generated_tokens", "verifier_tokens"):
                sums[k] += graded["totals"][k]
            sums["probes"] += stats.get("probes", stats.get("attempts", 0))
        means = {k: s / len(runs) for k, s in sums.items()}
        out.append({"label": label, "strategy": strategy, "budget": budget, "params": params,
                    "verifier": v, "runs": len(runs), **means})
        print(f"{label}: {means}", file=sys.stderr, flush=True)
    return out


def markdown(table: str, rows: list[dict]) -> str:
    if table == "thinking":
        head = ("| method | accuracy | thinking tokens | generated tokens (answers and probes) | verifier tokens | "
                "probes |\n|---|---|---|---|---|---|")
        body = [f"| {r['label']} | {r['correct']:.3f} | {r['thinking_tokens']:.1f} | {r['generated_tokens']:.1f} | "
                f"{r['verifier_tokens']:.1f} | {r['probes']:.2f} |" for r in rows]
    else:
        head = ("| method | accuracy | generated tokens | verifier tokens | attempts |\n|---|---|---|---|---|")
        body = [f"| {r['label']} | {r['correct']:.3f} | {r['generated_tokens']:.1f} | {r['verifier_tokens']:.1f} | "
                f"{r['probes']:.2f} |" if r["strategy"] == "refine" else
                f"| {r['label']} | {r['correct']:.3f} | {r['generated_tokens']:.1f} | {r['verifier_tokens']:.1f} | |"
                for r in rows]
    return "\n".join([head, *body])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table", choices=("thinking", "refine"))
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--verifier", default="oracle", help="the critic of the verifying methods: oracle or tiny-critic")
    ap.add_argument("--only", default="", help="semicolon-separated strategies or row labels to run (default: every row)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = measure(args.table, args.problems, seeds, args.verifier, [s for s in args.only.split(";") if s])
    if args.out:
        Path(args.out).write_text(json.dumps({"table": args.table, "verifier": args.verifier,
                                              "problems": args.problems, "seeds": seeds, "rows": rows}, indent=1))
    print(markdown(args.table, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
