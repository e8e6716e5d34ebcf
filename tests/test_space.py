"""The app as a Hugging Face Space: public budget caps and the embedded default without a GPU, and ZeroGPU's
wrapping of the model work when the ``spaces`` package is there.

- ``SPACE_ID`` / ``SYSTEM=spaces`` and no GPU: ``python app.py`` is started in a subprocess exactly as a
  Space starts it and queried with gradio_client: the public caps refuse a large budget with their message,
  and runs on the embedded models finish and are stored.
- The real ``spaces`` package (requirements-dev.txt) off a Space hands functions back unchanged, so nothing
  is wrapped and runs stay in process.
- On ZeroGPU ``spaces.GPU`` runs the decorated generator in a forked worker and pickles what crosses; that
  cannot run here (it needs the ZeroGPU device API), so ``tests/fake_spaces`` provides a module with the same
  ``GPU`` decorator interface and the same process boundary, put first on ``sys.path`` of a subprocess: a run
  on a real (non-embedded) model goes through the worker, the database is written by the parent only, a run
  on the embedded model stays in process, and Stop ends a worker run as cancelled.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import embedded_models_ready, free_port

ROOT = Path(__file__).resolve().parents[1]
FAKE_SPACES = ROOT / "tests" / "fake_spaces"
gradio_client = pytest.importorskip("gradio_client")


def space_env(tmp_path: Path, port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTS_MAX_") and k != "SPACES_ZERO_GPU"}
    env.update(SPACE_ID="someone/tts-explorer", SYSTEM="spaces", CUDA_VISIBLE_DEVICES="", HF_HUB_OFFLINE="1",
               GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), OMP_NUM_THREADS="1",
               TTS_EXPLORER_DB=str(tmp_path / "runs.db"), TTS_IMAGES_DIR=str(tmp_path / "images"),
               GRADIO_ANALYTICS_ENABLED="False")
    return env


@pytest.fixture(scope="module")
def space_app(tmp_path_factory):
    """``python app.py`` as a Space without a GPU starts it; yields (url, database path)."""
    tmp = tmp_path_factory.mktemp("space")
    port = free_port()
    log = open(tmp / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=space_env(tmp, port), stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the app exited with {proc.returncode}: {(tmp / 'app.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=5)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail(f"the app did not answer on {url}: {(tmp / 'app.log').read_text()[-2000:]}")
    yield url, tmp / "runs.db"
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def client(url: str):
    # generous timeouts: a loaded 2-core machine can take a while to answer
    return gradio_client.Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": 300})


IMAGE_RUN = dict(domain="image", model="tiny-digits", verifier="digit-classifier", strategy="random_search",
                 budget=2, difficulty=1, problem="digit 7", seed=0, aggregation="last", temperature=0.8)
REASONING_RUN = dict(domain="reasoning", model="tiny-arith-s", verifier="tiny-prm", strategy="beam_search",
                     budget=4, difficulty=1, problem="", seed=0, aggregation="last", temperature=0.8)


def test_space_without_gpu_refuses_budgets_over_the_public_cap(space_app):
    url, _ = space_app
    c = client(url)
    with pytest.raises(Exception) as err:
        c.predict(**{**IMAGE_RUN, "budget": 64}, api_name="/run")
    assert "budget must be a whole number from 1 to 16" in str(err.value)  # 64 is allowed off a Space


def test_space_without_gpu_serves_the_embedded_default(space_app):
    from storage import RunStore
    url, db = space_app
    c = client(url)
    runs = [IMAGE_RUN]
    ready, why = embedded_models_ready()
    if ready:  # the reasoning default (what Explore opens on) once its weights are committed
        runs.append(REASONING_RUN)
    for run in runs:
        out = c.predict(**run, api_name="/run")
        assert "finished" in out[0], out[0]
    store = RunStore(db)
    try:
        stored = store.list_runs()
        assert {r["model"] for r in stored} == {r["model"] for r in runs}
        assert all(r["status"] == "finished" for r in stored)
    finally:
        store.close()
    if not ready:
        pytest.skip(f"image default served; the reasoning default is not on disk ({why})")


def test_the_real_spaces_package_off_a_space_wraps_nothing(monkeypatch):
    spaces = pytest.importorskip("spaces")
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)

    def task():
        yield 1

    assert spaces.GPU(duration=10)(task) is task  # off ZeroGPU the package hands the function back
    from engine import run
    assert not run.on_zerogpu() and run.gpu_events is run._gpu_work


ZERO_GPU_SCRIPT = r"""
import json, os, sys
import torch
torch.set_num_threads(1)
import spaces
from backends import catalog
from backends.image.loaders import load_image_model
from engine import zerogpu
from engine.run import RunConfig, execute, on_zerogpu
from storage import RunStore
from strategies.core import CancelToken
from tests import image_models

root, out = sys.argv[1], sys.argv[2]
models = image_models.build(__import__("pathlib").Path(root))
writers = []
for name in ("create_run", "append_events", "finish_run"):
    orig = getattr(RunStore, name)
    def wrapped(self, *a, _orig=orig, _name=name, **kw):
        writers.append(os.getpid())
        return _orig(self, *a, **kw)
    setattr(RunStore, name, wrapped)
store = RunStore(os.path.join(root, "runs.db"))
result = {"enabled": on_zerogpu(), "parent": os.getpid()}

def cfg(model, verifier, judge, **kw):
    return RunConfig(domain="image", model=model, verifier=verifier, judge=judge, strategy="fk_steering",
                     budget=3, problem_id="test:2", options={"steps": 4, "previews": "none"}, **kw)

real = cfg(str(models["model"]), str(models["verifier"]), str(models["judge"]))
result["needs_gpu_real"] = zerogpu.needs_gpu(real)
events = list(execute(real, store))
result["real"] = {"status": events[-1]["status"], "nfe": events[-1]["compute"]["nfe"],
                  "correct": events[-1]["correct"], "judged": len(events[-1]["extras"]["candidates_judged"]),
                  "chosen_judge_correct": events[-1]["extras"]["chosen_judge_correct"],
                  "stored": store.get_run(events[0]["run_id"])["status"],
                  "parent_evaluations": load_image_model(str(models["model"])).evaluations,
                  "calls": list(spaces.CALLS)}

embedded = cfg("tiny-digits", "digit-classifier", "digit-judge")
result["needs_gpu_embedded"] = zerogpu.needs_gpu(embedded)
calls = len(spaces.CALLS)
events = list(execute(embedded, store))
result["embedded"] = {"status": events[-1]["status"], "new_calls": len(spaces.CALLS) - calls,
                      "parent_evaluations": load_image_model("tiny-digits").evaluations}

token = CancelToken()
seen = []
for e in execute(cfg(str(models["model"]), str(models["verifier"]), str(models["judge"])), store, token):
    seen.append(e)
    if e["type"] == "StepDone":
        token.cancel()
worker = spaces.CALLS[-1]["worker_pid"]
try:
    os.kill(worker, 0)
    alive = True
except OSError:
    alive = False
result["cancelled"] = {"status": seen[-1]["status"], "stored": store.get_run(seen[0]["run_id"])["status"],
                       "worker_alive": alive}
result["writers"] = sorted(set(writers))
json.dump(result, open(out, "w"))
"""


def test_zerogpu_runs_real_models_in_the_gpu_worker_and_the_parent_writes_the_database(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTS_MAX_")}
    env.update(PYTHONPATH=os.pathsep.join([str(FAKE_SPACES), str(ROOT)]), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               CUDA_VISIBLE_DEVICES="")
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-c", ZERO_GPU_SCRIPT, str(tmp_path), str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["enabled"] is True
    # a run on a real model: decorated call, model evaluated in the worker only, results back as plain data
    assert r["needs_gpu_real"] is True
    real = r["real"]
    assert real["status"] == real["stored"] == "finished"
    assert real["correct"] is real["chosen_judge_correct"] is not None  # graded by the judge, in the worker
    assert real["nfe"] == 3 * 4 and real["judged"] == 3
    assert real["parent_evaluations"] == 0
    assert [c["task"] for c in real["calls"]] == ["_gpu_work"] and real["calls"][0]["duration"] == 120
    assert real["calls"][0]["worker_pid"] != r["parent"]
    # the database is written by the parent process only
    assert r["writers"] == [r["parent"]]
    # the embedded default needs no GPU: in process, no decorated call
    assert r["needs_gpu_embedded"] is False
    assert r["embedded"] == {"status": "finished", "new_calls": 0, "parent_evaluations": 3 * 4}
    # Stop during a worker run: stored as cancelled, the worker is gone
    assert r["cancelled"] == {"status": "cancelled", "stored": "cancelled", "worker_alive": False}


def test_readme_header_is_the_space_configuration_and_the_quick_start_is_intact():
    """Spaces read the YAML block between the first two '---' lines of README.md."""
    import yaml
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    header, body = text[4:].split("\n---\n", 1)
    cfg = yaml.safe_load(header)
    assert cfg["sdk"] == "gradio" and (ROOT / cfg["app_file"]).is_file() and cfg["title"]
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line)
    assert cfg["sdk_version"] == pins["gradio"]  # the Space installs the gradio the app is tested with
    assert len(cfg["short_description"]) <= 60
    assert body.lstrip().startswith("# TTS Explorer")
    assert "    pip install -r requirements.txt && python app.py\n" in body
    assert "    pip install -r requirements-dev.txt && HF_HUB_OFFLINE=1 python -m pytest -q\n" in body


LAUNCH_SCRIPT = r"""
import json, sys
import spaces
import ui.app
seen = {}
def launch(app, host=None, port=None, **kw):  # stands in for serving: what ZeroGPU checks at launch time
    seen["decorated_at_launch"] = list(spaces.DECORATED)
ui.app.launch = launch
import app
seen["rc"] = app.main(["--db", sys.argv[1], "serve"])
print(json.dumps(seen))
"""


def test_serving_decorates_the_gpu_function_before_launch(tmp_path):
    """ZeroGPU refuses to start a Space that has no @spaces.GPU function when it launches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTS_MAX_")}
    env.update(PYTHONPATH=os.pathsep.join([str(FAKE_SPACES), str(ROOT)]), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               SPACE_ID="someone/tts-explorer", SYSTEM="spaces")
    proc = subprocess.run([sys.executable, "-c", LAUNCH_SCRIPT, str(tmp_path / "runs.db")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"decorated_at_launch": ["_gpu_work"], "rc": 0}
