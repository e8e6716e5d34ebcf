"""The gateway's own overhead: a best-of-16 request through ``POST /v1/chat/completions`` against the same run
through the engine (``engine.run.execute``, what ``python app.py run`` calls), on the embedded models.

The app and gateway are served in this process on a free loopback port (``gateway.server.serve``); each round
times one engine run and one gateway request of the same configuration (same problem, seed, budget), in
alternating order, and the medians are compared. The gateway side includes HTTP, JSON, the thread hand-off
and the response shaping; both sides write the run to the same SQLite store.

Usage: python bench/gateway_overhead.py [--rounds 7] [--budget 16]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from engine.limits import Limits  # noqa: E402
from engine.run import RunConfig, execute  # noqa: E402
from gateway.server import serve  # noqa: E402
from storage import RunStore  # noqa: E402
from tests.conftest import free_port  # noqa: E402

PROBLEM = "Start with 37. Add 48. Multiply by 6. Subtract 125."


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--budget", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)  # the gateway's runs and the engine's on the same footing (and a shared machine)
    store = RunStore(Path(tempfile.mkdtemp()) / "bench.db")
    port = free_port()
    app = serve(store, Limits(), "127.0.0.1", port, api_key="", prevent_thread_lock=True, quiet=True, warm_up=False)
    config = RunConfig(strategy="best_of_n", budget=args.budget, problem_text=PROBLEM)
    body = json.dumps({"model": "tiny-arith-s", "messages": [{"role": "user", "content": PROBLEM}],
                       "tts": {"strategy": "best_of_n", "budget": args.budget}}).encode()

    def engine() -> tuple[float, str | None, int]:
        started = time.perf_counter()
        end = list(execute(config, store))[-1]
        return time.perf_counter() - started, end["answer"], end["compute"]["generated_tokens"]

    def gateway() -> tuple[float, str | None, int]:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        started = time.perf_counter()
        with urllib.request.urlopen(req, timeout=600) as r:
            out = json.loads(r.read())
        return time.perf_counter() - started, out["usage"]["tts"]["answer"], out["usage"]["completion_tokens"]

    try:
        engine(), gateway()  # warm-up: model loads, first requests
        times: dict[str, list[float]] = {"engine": [], "gateway": []}
        outcomes = set()
        for i in range(args.rounds):
            for name, fn in ((("engine", engine), ("gateway", gateway)) if i % 2 == 0
                             else (("gateway", gateway), ("engine", engine))):
                wall, answer, tokens = fn()
                times[name].append(wall)
                outcomes.add((answer, tokens))
    finally:
        app.close()
        app.tts_gateway.close()
        store.close()
    e, g = statistics.median(times["engine"]), statistics.median(times["gateway"])
    print(f"best-of-{args.budget}, {args.rounds} rounds: engine median {e * 1000:.1f} ms, gateway median "
          f"{g * 1000:.1f} ms, ratio gateway/engine {g / e:.3f} (overhead {(g - e) * 1000:+.1f} ms)")
    print(f"the same answer and generated tokens on both paths every time: {len(outcomes) == 1} {sorted(outcomes)}")


if __name__ == "__main__":
    main()
