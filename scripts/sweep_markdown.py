"""The README's sweep tables from stored sweep results: accuracy and compute per problem at every budget, by the
task's difficulty labels and by the policy's pass@1 levels, and the kept KV cache of the tree searches.

Reads one or more JSON files that ``python app.py sweep --out`` writes; a strategy may be labelled apart
(``deepconf=deepconf offline:offline.json`` takes deepconf's cells from offline.json under that label).

    python scripts/sweep_markdown.py main.json ["deepconf=DeepConf offline:offline.json"]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def level_row(cell: dict, key: str) -> str:
    by = cell.get(key) or {}
    return " / ".join("–" if str(lv) not in by else f"{by[str(lv)]:.2f}" for lv in range(1, 6))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("result")
    ap.add_argument("extra", nargs="*", help="strategy=label:file.json")
    args = ap.parse_args()
    base = json.loads(Path(args.result).read_text())
    rows = [(c["strategy"], c) for c in base["results"]]
    for spec in args.extra:
        name, rest = spec.split("=", 1)
        label, path = rest.rsplit(":", 1)
        rows += [(label, c) for c in json.loads(Path(path).read_text())["results"] if c["strategy"] == name]
    print("| strategy | N | accuracy | by difficulty 1 / 2 / 3 / 4 / 5 | by pass@1 level 1 / 2 / 3 / 4 / 5 "
          "| generated tokens | verifier tokens | eFLOPs | kept KV tokens (mean / peak) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, c in rows:
        comp, stats = c["compute"], c.get("stats") or {}
        kv = (f"{stats['kept_kv_tokens_mean']:.0f} / {stats['kept_kv_tokens_peak']:.0f}" if "kept_kv_tokens_mean" in stats else "")
        eflops = comp.get("eflops")
        print(f"| {label} | {c['budget']} | {c['accuracy']:.3f} | {level_row(c, 'by_difficulty')} "
              f"| {level_row(c, 'by_pass1')} | {comp['generated_tokens']:.0f} | {comp['verifier_tokens']:.0f} "
              f"| {'' if eflops is None else f'{eflops / 1e9:.1f} G'} | {kv} |")
    oracle = base.get("oracle", {}).get("pass@k", {})
    print("\noracle pass@k: " + ", ".join(f"k={k}: {v:.3f}" for k, v in oracle.items()))
    levels = (base.get("pass1") or {}).get("level_of") or {}
    counts = {lv: sum(1 for v in levels.values() if str(v) == str(lv)) for lv in range(1, 6)}
    print("problems per pass@1 level: " + ", ".join(f"{lv}: {n}" for lv, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
