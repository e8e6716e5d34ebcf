"""Best-of-16 image search through the engine, against 16 sequential single-image samplings and against one
batched sampling of 16 images (the limit).

All three draw 16 images of the asked digit from ``tiny-digits`` with the same sampler (20 DDIM steps,
eta 1, guidance 1 unless changed). The engine run (``random_search``, budget 16) also scores the 16
images with the search verifier, judges the chosen one, writes a preview PNG per node and stores every
event in SQLite; the two baselines only sample. Prints the times and the ratios.
Usage: python bench/image_bon.py [--problems 10] [--n 16] [--threads 1] [--previews all]
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

from backends.image.loaders import load_image_model  # noqa: E402
from backends.image.diffusion import PREVIEWS, Sampling, derive, sample  # noqa: E402
from backends.image.digits import problem_at
from engine.run import RunConfig, execute  # noqa: E402
from storage import RunStore  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=10)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is best on a shared 2-core machine)")
    ap.add_argument("--previews", default="all", choices=PREVIEWS)
    ap.add_argument("--repeats", type=int, default=2, help="take the best of this many timings of each side")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TTS_IMAGES_DIR", tempfile.mkdtemp(prefix="bench-images-"))
    problems = [problem_at("test", i) for i in range(args.problems)]
    model = load_image_model("tiny-digits")
    sampling = Sampling(steps=args.steps)
    store = RunStore(Path(tempfile.mkdtemp()) / "bench.db")
    options = {"steps": args.steps, "previews": args.previews}

    def engine_side() -> tuple[float, int]:
        t0 = time.perf_counter()
        nfe = 0
        for p in problems:
            events = list(execute(RunConfig(domain="image", model="tiny-digits", verifier="digit-classifier",
                                            judge="digit-judge", strategy="random_search", budget=args.n,
                                            problem_id=p.uid, options=options), store))
            assert events[-1]["status"] == "finished", events[-1]["error"]
            nfe += events[-1]["compute"]["nfe"]
        return time.perf_counter() - t0, nfe

    def sequential_side() -> tuple[float, int]:
        t0 = time.perf_counter()
        for p in problems:
            for s in range(args.n):
                sample(model, sampling, [p.label], [derive("bench", p.seed, s)])
        return time.perf_counter() - t0, len(problems) * args.n * args.steps

    def batched_side() -> tuple[float, int]:
        t0 = time.perf_counter()
        for p in problems:
            sample(model, sampling, [p.label] * args.n, [derive("bench", p.seed, s) for s in range(args.n)])
        return time.perf_counter() - t0, len(problems) * args.n * args.steps

    # warm up every path once so none pays first-call costs
    list(execute(RunConfig(domain="image", model="tiny-digits", verifier="digit-classifier", judge="digit-judge",
                           strategy="random_search", budget=2, problem_id="test:0", options=options), store))
    sample(model, sampling, [0, 1], [1, 2])
    results = {}
    for name, fn in (("engine", engine_side), ("sequential", sequential_side), ("batched", batched_side)):
        results[name] = min((fn() for _ in range(args.repeats)), key=lambda r: r[0])
    e, s, b = results["engine"][0], results["sequential"][0], results["batched"][0]
    print(f"problems={args.problems} images/problem={args.n} steps={args.steps} threads={args.threads} "
          f"previews={args.previews} (best of {args.repeats})")
    print(f"engine best-of-{args.n} (batched, verifier + judge + PNGs + SQLite): {e:7.2f} s, "
          f"{results['engine'][1]} NFE")
    print(f"{args.n} sequential single-image samplings (no scoring):          {s:7.2f} s, "
          f"{results['sequential'][1]} NFE")
    print(f"one batched sampling of {args.n} images (no scoring):             {b:7.2f} s, "
          f"{results['batched'][1]} NFE")
    print(f"ratio sequential / engine = {s / e:.2f}x   (the engine's speed-up over one image at a time)")
    print(f"ratio engine / batched    = {e / b:.2f}x   (the engine's overhead over the batched limit; target <= 1.20)")


if __name__ == "__main__":
    main()
