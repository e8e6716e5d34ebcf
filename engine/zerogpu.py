"""ZeroGPU on Hugging Face Spaces: the model work of a run inside a ``@spaces.GPU`` function.

On a ZeroGPU Space the ``spaces`` package runs a decorated function in a forked worker process that holds a
GPU for the length of the call; the arguments go to the worker and whatever it yields comes back by
pickling. So the function the engine hands to :func:`on_gpu` (``engine.run.gpu_events``) takes the plain
``RunConfig`` and ``Limits`` and yields the run's events as plain dicts; the parent process, the Gradio
server, writes them to SQLite: the worker never opens the database. This module is handed that function
rather than importing the engine, so the engine imports it and not the other way round.

The decoration happens when ``engine.run`` is imported, as ZeroGPU requires (it looks for decorated
functions when the app starts). Where the package is missing nothing is decorated, and where it is installed
but the machine is not a ZeroGPU Space (``SPACES_ZERO_GPU`` unset) ``spaces.GPU`` hands the function back
unchanged: then ``engine.run.on_zerogpu()`` is false and every run executes in process, as it always did.

Even on ZeroGPU, runs whose models are all embedded (tiny CPU models, built-in rewards, the oracle) or
served elsewhere (``openai:`` endpoints) stay in process (:func:`needs_gpu`): they need no GPU, spend no
visitor's GPU quota, and so a visitor without a ZeroGPU slot still gets the embedded default.

Stop: the worker cannot see the parent's cancel token, so a run on the GPU stops at the next event the
parent receives (the parent closes the stream).
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Iterator

log = logging.getLogger(__name__)

DEFAULT_DURATION_S = 120  # ZeroGPU's reservation per call; shorter ones get a better place in the queue


def _duration(config, limits=None) -> int:
    """Seconds of GPU asked for one run (``TTS_GPU_DURATION``, else the default)."""
    raw = os.environ.get("TTS_GPU_DURATION")
    try:
        return max(10, int(raw)) if raw else DEFAULT_DURATION_S
    except ValueError:
        log.warning("TTS_GPU_DURATION must be whole seconds, got %r; using %d", raw, DEFAULT_DURATION_S)
        return DEFAULT_DURATION_S


try:
    import spaces
except ImportError:  # not on a Space, or a Space without the package: no wrapping at all
    spaces = None

GpuWork = Callable[..., Iterator[dict]]


def on_gpu(fn: GpuWork) -> GpuWork:
    """``fn`` as a ZeroGPU function (``spaces.GPU`` with this module's duration); ``fn`` itself where the
    package is missing, and (``spaces`` hands it back) where the machine is not a ZeroGPU Space."""
    return spaces.GPU(duration=_duration)(fn) if spaces is not None else fn


def needs_gpu(config) -> bool:
    """Whether a run loads any model that is not embedded, built in, or served by another machine."""
    from backends import catalog
    ids = [config.model, config.verifier, getattr(config, "judge", None)]
    return any(i and not _local(catalog, i) for i in ids)


def _local(catalog, model_id: str) -> bool:
    if model_id.startswith("openai:"):
        return True  # the server does the work
    entry = catalog.CATALOG.get(model_id)
    if entry is None:
        return False  # a hub id or a local folder: a real model
    return (entry.kind == "oracle" or entry.source.startswith("builtin:")
            or entry.source.startswith(str(catalog.EMBEDDED_DIR)))
