"""The TTS Explorer web app: ``build_app(store, limits)`` lays out the tabs, ``launch(app, host, port)``
serves it safely (local by default, queue with a concurrency limit, SSR and run history off, the
database outside everything Gradio serves, and no folder served but the image runs' previews)."""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import gradio as gr

from ui import compare, examples, explore, learn, runs, scaling
from ui.common import RUN_ID_RE, AppContext

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
RUN_CONCURRENCY = 2      # simultaneous searches: one per CPU core of the reference machine
QUEUE_MAX_SIZE = 64

CSS = """
.gradio-container {max-width: 1400px !important}
#run-btn {min-height: 44px}
.tts-pixels img, .tts-pixels image {image-rendering: pixelated}
.tts-gallery {height: auto !important}
.tts-check {min-width: 170px !important}
.tts-gallery > label[data-testid="block-label"] {position: static; margin-bottom: 4px}
#present-toggle {max-width: 330px}
body.tts-present .gradio-container {font-size: 18px}
body.tts-present .tts-status {font-size: 21px}
body.tts-present .tts-meter .k {font-size: 14px}
body.tts-present .tts-meter .v {font-size: 24px}
body.tts-present table td, body.tts-present table th {font-size: 18px !important}
body.tts-present .js-plotly-plot {zoom: 1.3}
"""
# Presentation mode: a class on the page, set in the browser (nothing goes to the server); the figures are
# zoomed whole, so their fonts and markers grow together
PRESENT_JS = "(on) => { document.body.classList.toggle('tts-present', !!on); }"


def build_app(store: Any, limits: Any = None, *, examples_db: str | os.PathLike | None = None,
              allow_delete: bool = True, run_concurrency: int = RUN_CONCURRENCY, warm_up: bool = True) -> gr.Blocks:
    """The Blocks app over ``store`` (a storage.RunStore) with budgets capped by ``limits``.

    ``examples_db`` is the example-run database the Learn tab plays (default: the shipped ui/examples.db).
    ``warm_up`` loads the default models in the background so the first Run does not wait for them.
    """
    if limits is None:
        from engine.limits import Limits
        limits = Limits.from_env()
    shipped = examples.load(Path(examples_db) if examples_db else examples.EXAMPLES_DB)
    ctx = AppContext(store=store, limits=limits, examples=shipped.examples, shipped=shipped,
                     allow_delete=allow_delete, run_concurrency=run_concurrency)
    if not ctx.examples:
        log.warning("no example runs found: the Learn tab's play buttons are disabled "
                    "(python -m ui.examples writes them)")
    _check_db_location(getattr(store, "path", None))

    with gr.Blocks(title="TTS Explorer", analytics_enabled=False) as app:
        with gr.Row(equal_height=True):
            gr.Markdown("# TTS Explorer\nWatch test-time scaling methods search: a tiny model, a process reward "
                        "model, and the compute every strategy spends.")
            present = gr.Checkbox(False, label="Presentation mode (larger text, figures and markers)",
                                  elem_id="present-toggle", scale=0, min_width=250)
        present.change(None, [present], None, js=PRESENT_JS, api_visibility="private", queue=False)
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Explore", id="explore", elem_id="tab-explore"):
                e = explore.build(ctx)
            with gr.Tab("Runs", id="runs", elem_id="tab-runs") as runs_tab:
                r = runs.build(ctx)
            with gr.Tab("Compare", id="compare", elem_id="tab-compare") as compare_tab:
                c = compare.build(ctx)
            with gr.Tab("Scaling", id="scaling", elem_id="tab-scaling") as scaling_tab:
                s = scaling.build(ctx)
            with gr.Tab("Learn", id="learn", elem_id="tab-learn"):
                learn.build(ctx)
        # lists are read when their tab opens, so runs made in Explore show up without a manual refresh
        runs_tab.select(r.refresh, r.filters + [r.run_id], r.refresh_outputs, api_visibility="private",
                        show_progress="hidden")
        compare_tab.select(c.refresh, None, c.refresh_outputs, api_visibility="private", show_progress="hidden")

        def same_problem_in_compare(ids: list[str], *axis: Any):
            """Explore's same-problem runs opened side by side in Compare (nothing when the set was stopped)."""
            if len(ids or []) < 2:
                yield (gr.skip(),) * (1 + len(c.open_outputs))
                return
            yield gr.Tabs(selected="compare"), *(gr.skip(),) * len(c.open_outputs)
            for values in c.open_runs(ids, *axis):
                yield gr.skip(), *values

        e.same_event.success(same_problem_in_compare, [e.same_ids, *c.open_inputs], [tabs, *c.open_outputs],
                             api_visibility="private", show_progress="hidden", concurrency_id="replay")
        scaling_tab.select(s.refresh, None, [s.sweeps], api_visibility="private", show_progress="hidden")
        # Gradio builds a session's copy of every block's config on the session's first event (tens of ms
        # with this many blocks, on the server's event loop): have it done when the page opens, not when
        # the visitor presses Run (bench/first_update.py)
        app.load(_open_session, None, [tabs, r.run_id], queue=False, api_visibility="private",
                 show_progress="hidden")
    app.tts_context = ctx  # for tests and the CLI
    if warm_up:
        threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
    return app


def _open_session(request: gr.Request) -> tuple:
    """The page-load event: its side effect sets the session's state up early; a link naming a run
    (``/?run=<id>``, the gateway's ``run_url``) opens that run in the Runs tab."""
    rid = (request.query_params.get("run") or "").strip() if request is not None else ""
    if not RUN_ID_RE.match(rid):
        return gr.skip(), gr.skip()
    return gr.Tabs(selected="runs"), gr.Dropdown(value=rid)


def _warm_up() -> None:
    """Load the default policy and verifier once, so the first Run's first update is not a model load."""
    try:
        from backends.text.loaders import load_policy, load_verifier
        load_policy("tiny-arith-s")
        load_verifier("tiny-prm")
        log.info("default models loaded")
    except Exception as exc:  # noqa: BLE001 - the Run button reports the real problem
        log.warning("could not preload the default models: %s", exc)


def _check_db_location(db_path: Path | None) -> None:
    if db_path is None:
        return
    try:
        Path(db_path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return
    log.warning("the run database %s is inside the working directory; it is blocked from serving, but "
                "keeping it elsewhere (the default) is safer", db_path)


def resolve_address(host: str | None = None, port: int | None = None) -> tuple[str, int]:
    """Explicit arguments, then GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, then 127.0.0.1:7860."""
    host = host or os.environ.get("GRADIO_SERVER_NAME") or DEFAULT_HOST
    raw = port if port is not None else os.environ.get("GRADIO_SERVER_PORT") or DEFAULT_PORT
    try:
        port_n = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"GRADIO_SERVER_PORT must be a port number, got {raw!r}") from None
    if not 0 < port_n < 65536:
        raise ValueError(f"port must be from 1 to 65535, got {port_n}")
    return host, port_n


def images_dir(db: Path | None) -> Path:
    """The image runs' preview folder (``backends.image.diffusion.images_root``), created; refused (ValueError) when
    serving it would serve the working directory or the run database."""
    from ui.common import images_root
    root = images_root().resolve()
    cwd = Path.cwd().resolve()
    if cwd.is_relative_to(root):
        raise ValueError(f"the images folder {root} (TTS_IMAGES_DIR) would serve the working directory {cwd}: "
                         "choose a folder of its own")
    if db is not None and Path(db).resolve().is_relative_to(root):
        raise ValueError(f"the images folder {root} (TTS_IMAGES_DIR) holds the run database {db}: "
                         "choose a folder of its own")
    root.mkdir(parents=True, exist_ok=True)
    return root


def launch(app: gr.Blocks, host: str | None = None, port: int | None = None, *, routes: Sequence[Any] = (),
           prevent_thread_lock: bool = False, quiet: bool = False, max_threads: int = 16) -> Any:
    """Serve ``app``: queue with a concurrency limit, SSR and run history off, nothing served but the
    image previews' folder (ValueError when that folder would expose the working directory or the database).
    ``routes`` (the OpenAI gateway's) are served on the same port, matched before Gradio's own."""
    host, port = resolve_address(host, port)
    blocked = []
    ctx = getattr(app, "tts_context", None)
    db = getattr(getattr(ctx, "store", None), "path", None)
    if db is not None:
        db = Path(db)
        blocked = [str(db), str(db) + "-wal", str(db) + "-shm", str(db) + "-journal"]
    # the image views link to preview PNGs by URL (the strips) and hand their paths to the gallery
    allowed = [str(images_dir(db))] if ctx is not None else []
    app.queue(default_concurrency_limit=RUN_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    log.info("serving TTS Explorer on http://%s:%d", host, port)
    return app.launch(
        server_name=host, server_port=port,
        ssr_mode=False,            # DESIGN.md 6: advisory against run history with SSR in 6.27-6.31
        run_history=False,         # nothing recorded in browsers, the /gradio_api/runs page disabled
        allowed_paths=allowed,     # exactly the image previews' folder (nothing for a page without our context)
        blocked_paths=blocked,     # the database, even if someone put it under the working directory
        footer_links=["api", "gradio"],
        show_error=False,          # only our gr.Error messages reach visitors, not tracebacks
        max_threads=max_threads,
        prevent_thread_lock=prevent_thread_lock, quiet=quiet,
        css=CSS + learn.CSS,
        head=learn.HEAD,
        app_kwargs={"routes": list(routes)},  # FastAPI's own routes come first, so no Gradio page shadows them
    )
