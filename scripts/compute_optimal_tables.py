"""Tables for the docs: a stored sweep result's compute-optimal strategy ranked by tokens and by eFLOPs, side by side,
with each strategy's saturation point, on the task's difficulty labels or the policy's pass@1 quintiles.

Reads the JSON that ``python app.py sweep --out`` writes; the same builders as Scaling's table
(``ui.figures.sweeps.compute_optimal_table``) and fit (``engine.saturation``).

    python scripts/compute_optimal_tables.py results.json [--rank compute|budget] [--binning difficulty|pass1]
        [--flops-per-byte 295.34] [--gain 0.001]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from engine.saturation import DEFAULT_GAIN, sweep_saturation
    from strategies.core import H100_FLOPS_PER_BYTE
    from ui.figures.sweeps import compute_optimal_table

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("result")
    ap.add_argument("--rank", choices=["compute", "budget"], default="compute")
    ap.add_argument("--binning", choices=["difficulty", "pass1"], default="difficulty")
    ap.add_argument("--flops-per-byte", type=float, default=H100_FLOPS_PER_BYTE)
    ap.add_argument("--gain", type=float, default=DEFAULT_GAIN)
    args = ap.parse_args()
    result = json.loads(Path(args.result).read_text())
    print(f"saturation points (gain {args.gain:g} accuracy per unit of N):")
    for s, fit in sweep_saturation(result, gain=args.gain).items():
        print(f"  {s}: {fit.message}" + (f"; F_max {fit.f_max:.3f}, p {fit.p:.3f}, rmse {fit.rmse:.3f}" if fit.ok else ""))
    kw = {"binning": args.binning, "rank": args.rank, "flops_per_byte": args.flops_per_byte, "gain": args.gain}
    for x in ("tokens", "eflops"):
        print(f"\ncompute-optimal, ranked at matched {'compute' if args.rank == 'compute' else 'budget N'} on {x}:")
        print("| level | N | best | accuracy | " + x + " / problem | runner-up | saturates at N* |")
        print("|---|---|---|---|---|---|---|")
        for r in compute_optimal_table(result, x=x, **kw):
            print("| " + " | ".join(str(v) for v in r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
