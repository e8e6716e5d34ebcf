"""Downloads through the real ``huggingface_hub`` client against a hub on 127.0.0.1 (``tests/fake_hub.py``)
serving the committed ``tiny-arith-s`` folder under hub ids: a gated answer, a connection dropped mid-file and
resumed by a Range request, a cancelled download started again, offline mode, no network, a disk too small,
and, from the CLI, a catalog entry that is unavailable, is downloaded, is listed as available and runs best-of-N.

``HF_HUB_OFFLINE=1`` is set for the test session: the client reads its settings at import, so the in-process
tests patch ``huggingface_hub.constants`` (offline off, the endpoint, a temporary cache) and the CLI test gives
its subprocesses their own environment. Every request goes to 127.0.0.1."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends import catalog
from backends.download import DownloadCancelled, DownloadError, download, plan
from strategies.core import CancelToken
from tests.fake_hub import FakeHub, Repo

ROOT = Path(__file__).resolve().parents[1]
SOURCE = catalog.EMBEDDED_DIR / "tiny-arith-s"
REPO, GATED = "tts-test/tiny-arith-s", "tts-test/gated-arith"


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    from huggingface_hub import constants

    h = FakeHub({REPO: Repo.from_folder(SOURCE), GATED: Repo.from_folder(SOURCE, gated=True)}).start()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", h.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", h.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    # chunks smaller than the weights file, so a dropped connection leaves bytes to resume from (the client
    # keeps only whole chunks, of 10 MB by default)
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))  # no token file of this machine is read
    yield h
    h.stop()


def _snapshot_files(hub_dir: Path, repo: str) -> dict[str, bytes]:
    snaps = list((hub_dir / f"models--{repo.replace('/', '--')}" / "snapshots").glob("*"))
    return {p.name: p.read_bytes() for s in snaps for p in s.iterdir() if p.is_file()}


def test_the_plan_shows_size_and_free_disk_before_anything_is_fetched(hub, tmp_path):
    p = plan(REPO)
    files = {f.name: f.stat().st_size for f in SOURCE.iterdir()}
    assert p.size_bytes == sum(files.values()) and p.files == len(files) and not p.gated
    assert p.free_bytes > 0 and p.cache_dir == str(tmp_path / "hub")
    assert "1.8 MB in 5 files" in p.describe() and "free in" in p.describe()
    assert not [r for r in hub.log if "/resolve/" in r[1]]  # nothing downloaded yet


def test_a_dropped_connection_is_resumed_with_a_range_request(hub, tmp_path):
    hub.drop_once = {"model.safetensors"}
    seen: list[tuple[int, int | None]] = []
    assert not catalog.hub_availability(REPO)[0]
    path = download(REPO, lambda done, total: seen.append((done, total)))
    ranges = hub.gets("model.safetensors")
    size = (SOURCE / "model.safetensors").stat().st_size
    assert hub.dropped == ["model.safetensors"] and ranges[0] is None and len(ranges) == 2
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at < size  # the second request asked only for the rest
    assert _snapshot_files(tmp_path / "hub", REPO) == {f.name: f.read_bytes() for f in SOURCE.iterdir()}
    assert Path(path, "config.json").is_file()
    total = sum(f.stat().st_size for f in SOURCE.iterdir())
    assert seen[-1] == (total, total) and all(b[0] >= a[0] for a, b in zip(seen, seen[1:]))
    ok, reason = catalog.hub_availability(REPO)  # the catalog sees it at once
    assert ok and reason == "in the local Hugging Face cache"


def test_a_gated_model_says_which_token_to_set(hub, monkeypatch):
    assert plan(GATED).gated
    with pytest.raises(DownloadError, match=r"gated or private \(401: no token was sent\): set HF_TOKEN"):
        download(GATED)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    with pytest.raises(DownloadError, match=r"\(403: the token sent has no access\): set HF_TOKEN"):
        download(GATED)
    assert not catalog.hub_availability(GATED)[0]


def test_a_cancelled_download_keeps_finished_files_and_a_new_one_fetches_the_rest(hub, tmp_path):
    token = CancelToken()
    with pytest.raises(DownloadCancelled, match="files finished so far stay in the cache"):
        download(REPO, lambda done, total: token.cancel(), token)
    first = _snapshot_files(tmp_path / "hub", REPO)
    assert "model.safetensors" not in first and not catalog.hub_availability(REPO)[0]
    before = len(hub.log)
    download(REPO)
    again = [p.rsplit("/", 1)[-1] for m, p, _ in hub.log[before:] if m == "GET" and "/resolve/" in p]
    assert "model.safetensors" in again and not set(again) & set(first)
    assert catalog.hub_availability(REPO)[0]


def test_offline_mode_no_network_and_a_full_disk_are_one_line_each(hub, monkeypatch):
    from huggingface_hub import constants
    from backends import download as dl

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE=1 is set"):
        plan(REPO)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(dl, "free_disk", lambda path: 1000)
    with pytest.raises(DownloadError, match=r"not enough disk for tts-test/tiny-arith-s: it needs 1.8 MB, 1.0 KB"):
        download(REPO)
    assert not [r for r in hub.log if r[0] == "GET" and "/resolve/" in r[1]]
    hub.stop()  # nothing listens there any more
    with pytest.raises(DownloadError, match=r"^no network: http://127\.0\.0\.1:\d+ cannot be reached"):
        plan(REPO)
    assert dl.explain(OSError(errno.ENOSPC, "No space left on device"), REPO).startswith("the disk is full: ")
    with pytest.raises(DownloadError, match="nothing to download"):
        plan("tiny-arith-s")
    with pytest.raises(DownloadError, match="not a hub id"):
        plan("no such thing")


def test_cli_entry_turns_available_then_runs_best_of_n(tmp_path):
    """The catalog's Qwen/Qwen2.5-1.5B-Instruct entry, served here with tiny-arith-s's files: listed as not
    cached, downloaded by ``python app.py download``, listed as available, and run."""
    entry = "Qwen/Qwen2.5-1.5B-Instruct"
    hub = FakeHub({entry: Repo.from_folder(SOURCE)}, drop_once={"model.safetensors"}).start()
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "0",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    env.pop("HF_TOKEN", None)
    env.pop("HF_HUB_CACHE", None)

    def cli(*args):
        return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)

    def listed() -> dict:
        p = cli("models", "--json")
        assert p.returncode == 0, p.stderr
        return next(r for r in json.loads(p.stdout) if r["id"] == entry)

    try:
        before = listed()
        assert not before["available"] and "download it first" in before["reason"]
        p = cli("download", entry, "--json")
        assert p.returncode == 0, p.stderr
        assert "1.8 MB in 5 files" in p.stderr and "free in" in p.stderr  # shown before the bar
        assert "B/s]" in p.stderr or "100%" in p.stderr  # tqdm drew the bytes
        out = json.loads(p.stdout)
        assert out["available"] and out["repo"] == entry and Path(out["path"], "model.safetensors").is_file()
        assert hub.dropped == ["model.safetensors"]
        assert listed()["available"]
        p = cli("run", "--model", entry, "--verifier", "oracle", "--strategy", "best_of_n", "--budget", "4",
                "--problem-id", "test:0", "--db", str(tmp_path / "r.db"), "--json")
        assert p.returncode == 0, p.stderr
        run = json.loads(p.stdout)
        assert run["status"] == "finished" and len(run["candidates"]) == 4
        assert run["compute"]["generated_tokens"] > 0 and run["compute"]["prompt_tokens"] > 0
        gated = cli("download", "meta-llama/Llama-3.2-1B-Instruct")
        assert gated.returncode == 2
        assert gated.stderr.strip().splitlines()[-1].startswith("error: meta-llama/Llama-3.2-1B-Instruct was not found")
    finally:
        hub.stop()


def test_downloads_are_the_owners_decision_on_a_public_space(monkeypatch):
    from engine.limits import Limits
    from ui.common import AppContext
    from ui.download import offer_text

    monkeypatch.delenv("TTS_ALLOW_DOWNLOADS", raising=False)
    monkeypatch.delenv("SYSTEM", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert Limits.from_env().allow_downloads
    monkeypatch.setenv("SPACE_ID", "someone/tts-explorer")
    assert not Limits.from_env().allow_downloads
    text, button = offer_text(AppContext(store=None, limits=Limits.from_env()), "Qwen/Qwen2.5-1.5B-Instruct")
    assert not button and "Downloads are off on this app" in text and "TTS_ALLOW_DOWNLOADS=1" in text
    monkeypatch.setenv("TTS_ALLOW_DOWNLOADS", "1")
    assert Limits.from_env().allow_downloads
    monkeypatch.setenv("TTS_ALLOW_DOWNLOADS", "yes")
    with pytest.raises(ValueError, match="TTS_ALLOW_DOWNLOADS must be 0 or 1"):
        Limits.from_env()


def test_the_offer_names_the_missing_hub_model_only(hub):
    from backends.download import first_missing
    assert first_missing("tiny-arith-s", "tiny-prm") is None
    assert first_missing("tiny-arith-s", "qwen-prm:Qwen/Qwen2.5-Math-PRM-7B") == "qwen-prm:Qwen/Qwen2.5-Math-PRM-7B"
    assert first_missing(REPO, "oracle") == REPO
    download(REPO)
    assert first_missing(REPO, "oracle") is None
