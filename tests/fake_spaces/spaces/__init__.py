"""A stand-in for the ``spaces`` package as it behaves on a ZeroGPU Space, for tests (tests/test_space.py).

The real package (requirements-dev.txt) hands a function back unchanged off a Space, and on a Space it needs
the ZeroGPU device API; this one keeps the same ``GPU`` decorator interface (``spaces.GPU(fn)``,
``spaces.GPU(duration=...)(fn)``, a duration that may be a callable of the task's arguments) and the same
process boundary: a decorated generator function runs in a forked worker process, its arguments and every
item it yields cross by pickling. Each call is recorded in ``CALLS`` (task name, duration, worker pid).
Gradio on a Space passes every event handler through ``spaces.gradio_auto_wrap``, which wraps nothing unless
auto-wrapping is switched on (``SPACES_GRADIO_AUTO_WRAP``); here it never is.
"""
from __future__ import annotations

import inspect
import multiprocessing
import os
import pickle

CALLS: list[dict] = []
DECORATED: list[str] = []  # names of the functions decorated so far (ZeroGPU checks there is one at launch)


def GPU(task=None, *, duration=None, size=None):  # noqa: N802 - the real package's name
    if task is None:
        return lambda fn: _wrap(fn, duration)
    return _wrap(task, duration)


def _wrap(task, duration):
    if not inspect.isgeneratorfunction(task):
        raise NotImplementedError("this stand-in wraps generator functions only")
    DECORATED.append(task.__name__)

    def gradio_handler(*args, **kwargs):
        seconds = duration(*args, **kwargs) if callable(duration) else duration
        call = {"task": task.__name__, "duration": seconds, "worker_pid": None}
        CALLS.append(call)
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        payload = pickle.dumps((args, kwargs))  # what ZeroGPU sends the worker

        def worker() -> None:
            a, kw = pickle.loads(payload)
            try:
                for item in task(*a, **kw):
                    queue.put(("item", pickle.dumps(item)))
                queue.put(("end", os.getpid()))
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, as ZeroGPU does
                queue.put(("error", f"{type(exc).__name__}: {exc}"))

        proc = ctx.Process(target=worker, daemon=True)
        proc.start()
        call["worker_pid"] = proc.pid
        try:
            while True:
                kind, value = queue.get(timeout=300)
                if kind == "item":
                    yield pickle.loads(value)
                elif kind == "end":
                    break
                else:
                    raise RuntimeError(value)
        finally:
            if proc.is_alive():
                proc.terminate()
            proc.join(timeout=30)

    gradio_handler.zerogpu = None
    return gradio_handler


def gradio_auto_wrap(task):
    """Gradio calls this for every event handler on a Space; like the real one without auto-wrap: no-op."""
    return task
