"""bench/gpu_check.py keeps working on a machine without CUDA: its CPU rows run and time real work, and every CUDA
row is in the table, skipped with its reason."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_its_cpu_rows_and_says_why_the_cuda_rows_do_not():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "CUDA_VISIBLE_DEVICES": ""}
    p = subprocess.run([sys.executable, "bench/gpu_check.py", "--only", "cpu", "--quick"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = [line for line in p.stdout.splitlines() if re.match(r"^(tiny|vLLM|SmolLM2)", line)]
    cpu = [r for r in rows if re.search(r"\s cpu\s", r)]
    cuda = [r for r in rows if re.search(r"\s cuda\s", r)]
    assert len(cpu) == 4 and len(cuda) == 5
    for r in cpu:
        assert re.search(r"\s\d+\.\d\d\s", r), r  # a time was measured
    assert "best-of-4 rollouts x 1 chains" in cpu[0] and re.search(r"\d+ tokens generated", cpu[0])
    for r in cuda:
        assert "skipped:" in r, r
