"""Downloading a hub model into the local Hugging Face cache, for ``python app.py download ID`` and Explore.

The real ``huggingface_hub`` client does the work (``snapshot_download``); this module adds what a user needs
around it:

- ``plan``: the repository's size (``HfApi.model_info(files_metadata=True)``, the sum of its files) and the free
  disk where the cache lives, shown before anything is fetched; a download that does not fit is refused;
- ``download``: byte progress through a callback (the CLI draws it with tqdm, Explore with ``gr.Progress``),
  checked against a ``CancelToken`` at every chunk. Resuming is the client's: a connection dropped mid-file is
  continued with an HTTP Range request, and files already finished stay in the cache, so a cancelled or failed
  download started again fetches only what is missing (huggingface_hub 2.x keeps no partial file across calls);
- every failure as one line (``explain``): a gated or private model (401/403: which token to set), no network,
  ``HF_HUB_OFFLINE=1``, a full disk.

The client reads ``HF_ENDPOINT``, ``HF_HOME`` / ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` when it is imported; the
values in ``huggingface_hub.constants`` are the ones used here, read at each call. When a download finishes the
catalog sees the model at once: availability is read from the cache on every call, never remembered.
"""
from __future__ import annotations

import errno
import logging
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from backends import catalog
from backends.errors import InputError
from strategies.core import CancelToken

log = logging.getLogger(__name__)

TOKEN_HINT = "set HF_TOKEN to a read token of an account that has accepted its terms on the model's hub page"


class DownloadError(InputError):
    """A download that cannot start or did not finish, with the reason in one line."""


class DownloadCancelled(DownloadError):
    """Stopped by the user; the files finished so far stay in the cache."""


@dataclass(frozen=True)
class DownloadPlan:
    """What a download will fetch and where it will go, before it starts."""

    model_id: str
    repo_id: str
    files: int
    size_bytes: int | None  # None when the hub lists no sizes
    free_bytes: int
    cache_dir: str
    gated: bool

    def fits(self) -> bool:
        return self.size_bytes is None or self.size_bytes < self.free_bytes

    def describe(self) -> str:
        size = "size unknown" if self.size_bytes is None else human_bytes(self.size_bytes)
        text = (f"{self.repo_id}: {size} in {self.files} files; {human_bytes(self.free_bytes)} free in "
                f"{self.cache_dir}")
        if self.gated:
            text += f" (gated: {TOKEN_HINT})"
        return text


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def repo_of(model_id: str) -> str:
    """The hub repository behind a catalog id, a prefixed id (``vllm:``, ``qwen-prm:``, ...) or a bare hub id;
    DownloadError for what has nothing to download (an embedded model, a local folder, an endpoint, a package)."""
    entry = catalog.CATALOG.get(model_id)
    if entry is None:
        prefix, sep, rest = model_id.partition(":")
        if sep and prefix == "openai":
            raise DownloadError(f"{model_id} is a remote endpoint: nothing to download")
        source = rest if sep and (prefix in catalog.FAMILY_PREFIXES or prefix in ("vllm", "judge", "clip", "vlm")) \
            else model_id
    else:
        if entry.kind == "oracle" or entry.backend in ("openai", "builtin") or entry.family in catalog.T2I_PACKAGES:
            raise DownloadError(f"{model_id} is not a hub model: nothing to download")
        source = entry.source
    if Path(source).is_absolute() or Path(source).exists():
        raise DownloadError(f"{model_id} is a local folder ({source}): nothing to download")
    if not catalog.HUB_ID.match(source):
        raise DownloadError(f"{model_id!r} is not a hub id (owner/name) or a catalog id")
    return source


def first_missing(*model_ids: str | None) -> str | None:
    """The first of ``model_ids`` (a run's policy and verifier) that is a hub model not in the cache, else None."""
    for model_id in model_ids:
        if not isinstance(model_id, str) or not model_id.strip() or len(model_id) > 300:
            continue
        try:
            repo = repo_of(model_id)
        except DownloadError:
            continue
        entry = catalog.CATALOG.get(model_id)
        if not (entry.availability() if entry is not None else catalog.hub_availability(repo))[0]:
            return model_id
    return None


def cache_dir() -> str:
    from huggingface_hub import constants
    return str(constants.HF_HUB_CACHE)


def free_disk(path: str) -> int:
    """Free bytes on the disk that holds ``path`` (its nearest existing parent when it does not exist yet)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def _check_online() -> None:
    from huggingface_hub import constants
    if constants.is_offline_mode():
        raise DownloadError("downloads are off: HF_HUB_OFFLINE=1 is set (unset it, or set it to 0, to download)")


def plan(model_id: str) -> DownloadPlan:
    """The size, file count and free disk of a download; DownloadError (one line) when the hub cannot say."""
    repo = repo_of(model_id)
    _check_online()
    from huggingface_hub import HfApi, constants
    try:
        info = HfApi(endpoint=constants.ENDPOINT).model_info(repo, files_metadata=True)
    except Exception as exc:  # noqa: BLE001 - every client error becomes one line
        raise DownloadError(explain(exc, repo)) from None
    siblings = info.siblings or []
    sizes = [s.size for s in siblings]
    size = sum(sizes) if sizes and all(isinstance(s, int) for s in sizes) else None
    where = cache_dir()
    return DownloadPlan(model_id, repo, len(siblings), size, free_disk(where), where, bool(info.gated))


def download(model_id: str, progress: Callable[[int, int | None], None] | None = None,
             cancel: CancelToken | None = None, checked: DownloadPlan | None = None) -> str:
    """Fetch a model into the cache and return its snapshot folder; ``progress(done_bytes, total_bytes)`` is
    called as bytes arrive, from the client's worker threads. ``checked`` is a plan already shown to the user."""
    p = checked or plan(model_id)
    if not p.fits():
        raise DownloadError(f"not enough disk for {p.repo_id}: it needs {human_bytes(p.size_bytes or 0)}, "
                            f"{human_bytes(p.free_bytes)} are free in {p.cache_dir}")
    _check_online()
    from huggingface_hub import constants, snapshot_download
    log.info("downloading %s", p.describe())
    try:
        path = snapshot_download(p.repo_id, endpoint=constants.ENDPOINT,
                                 tqdm_class=_progress_class(progress, p.size_bytes, cancel))
    except DownloadCancelled:
        raise
    except Exception as exc:  # noqa: BLE001 - every client error becomes one line
        log.warning("download of %s failed: %s", p.repo_id, exc)
        raise DownloadError(explain(exc, p.repo_id)) from None
    ok, reason = catalog.hub_availability(p.repo_id, "model_index.json" if Path(path, "model_index.json").exists()
                                          else "config.json")
    if not ok:
        raise DownloadError(f"{p.repo_id} downloaded to {path}, but it has no config.json or model_index.json: "
                            "not a model the app can load")
    return path


def explain(exc: BaseException, repo: str) -> str:
    """One line for a client error: what happened and what to do."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled,
                                        RepositoryNotFoundError)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, GatedRepoError) or status in (401, 403) and not isinstance(exc, RepositoryNotFoundError):
        who = "no token was sent" if not _token() else "the token sent has no access"
        return f"{repo} is gated or private ({status or 'refused'}: {who}): {TOKEN_HINT}"
    if isinstance(exc, RepositoryNotFoundError):
        return f"{repo} was not found on {constants.ENDPOINT} (if it is private, set HF_TOKEN)"
    if isinstance(exc, OfflineModeIsEnabled):
        return "downloads are off: HF_HUB_OFFLINE=1 is set (unset it, or set it to 0, to download)"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"the disk is full: {repo} did not fit in {cache_dir()} (free some space, or set HF_HOME elsewhere)"
    if isinstance(exc, LocalEntryNotFoundError) or _is_network_error(exc):
        return f"no network: {constants.ENDPOINT} cannot be reached ({_first_line(exc.__cause__ or exc)})"
    if isinstance(exc, HfHubHTTPError):
        return f"the hub refused {repo}: {_first_line(exc)}"
    return f"downloading {repo} failed: {type(exc).__name__}: {_first_line(exc)}"


def _token() -> str | None:
    from huggingface_hub import get_token
    return get_token()


def _is_network_error(exc: BaseException) -> bool:
    import httpx2  # the HTTP client huggingface_hub 2.x uses
    return isinstance(exc, (httpx2.ConnectError, httpx2.TimeoutException, httpx2.RemoteProtocolError, ConnectionError))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _progress_class(report: Callable[[int, int | None], None] | None, total: int | None,
                    cancel: CancelToken | None):
    """A tqdm class for ``snapshot_download`` that draws nothing itself: it counts the bytes written (the
    client's aggregate "reconstruct" bar, fed by every file's worker thread), reports them, and raises
    DownloadCancelled at the next chunk once ``cancel`` is set."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    lock = threading.Lock()
    done = [0]

    class _Counted(hf_tqdm):
        def __init__(self, *args, **kwargs):
            self._bytes = kwargs.get("name") == "huggingface_hub.snapshot_download"
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if cancel is not None and cancel.cancelled:
                raise DownloadCancelled("download cancelled; the files finished so far stay in the cache, and "
                                        "downloading again fetches only the rest")
            if self._bytes and n:
                with lock:
                    done[0] += int(n)
                    now = done[0]
                if report is not None:
                    report(now, total)
            return super().update(n)

    return _Counted

