"""``sweep --workers K`` against ``--workers 1``: wall time of the same CLI sweep on llama.cpp's OpenAI-compatible
server (SmolLM2-135M-Instruct, ``tests/llama_server.py``), and whether every run came out the same.

The server evaluates one token per batch (``llama_server.BATCH1``): with its default batching a seeded request's
answer depends on the request before it, so no two sweeps, sequential or not, would be comparable run by run.
llama-cpp-python's server computes one request at a time, so what K workers overlap is everything around the
server's compute (the client, the verifier, the store). Needs the server's packages (see tests/llama_server.py).

Usage: python bench/sweep_workers.py [--workers 4] [--problems 4] [--strategies best_of_n,beam_search]
       [--server-batching one|default]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from storage import RunStore  # noqa: E402
from tests import llama_server  # noqa: E402


def sweep(url: str, folder: Path, workers: int, args: argparse.Namespace) -> tuple[float, dict, dict]:
    """(wall seconds, the sweep's JSON, its runs) of one ``python app.py sweep`` with ``workers``."""
    db, out = folder / f"w{workers}.db", folder / f"w{workers}.json"
    cmd = [sys.executable, str(ROOT / "app.py"), "sweep", "--model", f"openai:smollm2@{url}", "--verifier", "oracle",
           "--strategies", args.strategies, "--budgets", args.budgets, "--problems", str(args.problems),
           "--seeds", args.seeds, "--param", "beam_search.beam_width=2", "--db", str(db), "--out", str(out),
           "--workers", str(workers)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=os.environ)
    wall = time.perf_counter() - started
    result = json.loads(out.read_text())
    store = RunStore(db)
    try:
        runs = llama_server.sweep_runs(store, result["config"]["sweep_id"])
    finally:
        store.close()
    return wall, result, runs


def without_times(result: dict) -> list[dict]:
    drop = ("wall_s", "model_s")
    return [{k: ({c: x for c, x in v.items() if c not in drop} if k in ("compute", "compute_total") else v)
             for k, v in cell.items() if k != "wall_s"} for cell in result["results"]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--problems", type=int, default=4)
    ap.add_argument("--strategies", default="best_of_n,beam_search")
    ap.add_argument("--budgets", default="2")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--server-batching", choices=("one", "default"), default="one",
                    help="one-token batches (runs comparable) or llama.cpp's default (faster, answers order-dependent)")
    args = ap.parse_args()
    why = llama_server.missing()
    if why:
        sys.exit(f"error: {why}")
    os.environ["TTS_OPENAI_TOKENIZER"] = str(llama_server.dequantized_folder())  # chat template: answers end by EOS
    folder = Path(tempfile.mkdtemp(prefix="sweep-workers-"))
    options = llama_server.BATCH1 if args.server_batching == "one" else ()
    with llama_server.running(folder / "server.log", *options) as url:
        one = sweep(url, folder, 1, args)
        many = sweep(url, folder, args.workers, args)
    same_runs = one[2] == many[2]
    same_cells = without_times(one[1]) == without_times(many[1]) and one[1]["oracle"] == many[1]["oracle"]
    print(f"{len(one[2])} runs ({args.strategies} at budget {args.budgets}, {args.problems} problems, seeds {args.seeds}; "
          f"server batching: {args.server_batching})")
    print(f"--workers 1: {one[0]:.1f} s   --workers {args.workers}: {many[0]:.1f} s   "
          f"speed-up {one[0] / many[0]:.2f}x")
    print(f"every run the same (answers, token counts, node texts): {same_runs}; the same table: {same_cells}")


if __name__ == "__main__":
    main()
