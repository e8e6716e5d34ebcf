"""What the tabs share: the app context, input validation, and the replay viewer (views + step transport).

Every handler here is also an HTTP API endpoint, so every input is validated on the server, whatever
the page's widgets would allow.
"""
from __future__ import annotations

import contextvars
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from ui.figures import images as image_views
from ui.figures.curves import score_vs_compute_figure
from ui.figures.confidence import confidence_figure
from ui.figures.attempts import attempts_figure
from ui.figures.critiques import critiques_html
from ui.figures.thoughts import thoughts_figure
from ui.figures.particles import particle_figure
from ui.figures.style import plot_payload
from ui.figures.tables import CANDIDATE_HEADERS, METER_CSS, candidates_rows, compute_meter_html, status_html
from ui.figures.tree import EMPTY_TREE, tree_figure, whole_run_layout
from strategies.core import H100_FLOPS_PER_BYTE, CancelToken
from ui.fold import ViewState, fold, step_count

log = logging.getLogger(__name__)

RUN_ID_RE = re.compile(r"^[A-Za-z0-9_:.-]{1,64}$")
PLAY_INTERVAL_S = 0.6
MAX_TEXT = 2000


class UserError(Exception):
    """Bad input from a visitor; shown with gr.Error, message already user-facing."""


@dataclass
class AppContext:
    """What every tab needs: the run store, the caps, the shipped example runs, per-session cancel flags."""

    store: Any
    limits: Any
    examples: dict[str, list[dict]] = field(default_factory=dict)  # strategy name -> events of its example run
    shipped: Any = None  # ui.examples.Shipped: the example runs and the guided lessons' stored runs
    cancels: dict[str, Any] = field(default_factory=dict)          # session hash -> CancelToken of its job
    allow_delete: bool = True
    run_concurrency: int = 2
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, key: str, busy: str) -> CancelToken:
        """A new cancel token registered for the session's job ``key``; gr.Error ``busy`` while one is going (checked
        and registered under one lock, so two clicks cannot both start a job)."""
        with self.lock:
            if key in self.cancels:
                raise gr.Error(busy, print_exception=False)
            token = self.cancels[key] = CancelToken()
        return token

    def release_cancel(self, key: str, token: Any) -> None:
        with self.lock:
            if self.cancels.get(key) is token:
                del self.cancels[key]

    def cancel(self, key: str) -> bool:
        with self.lock:
            token = self.cancels.get(key)
        if token is None:
            return False
        token.cancel()
        return True


def start_worker(target: Callable[[], None], name: str) -> threading.Thread:
    """Start ``target`` in a daemon thread that runs in a copy of the caller's context.

    A plain thread starts with empty context variables; the ``spaces`` package of a ZeroGPU Space
    (``engine.zerogpu``) reads the visitor's request from them to charge that visitor's GPU quota, so a run
    or sweep started from a request handler must carry the handler's context into its worker."""
    worker = threading.Thread(target=contextvars.copy_context().run, args=(target,), name=name, daemon=True)
    worker.start()
    return worker


def session_key(request: gr.Request | None, what: str) -> str:
    """A per-browser-session key; the API client has its own session hash too."""
    sh = getattr(request, "session_hash", None) if request is not None else None
    return f"{what}:{sh or 'anonymous'}"


def check_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id.strip()):
        raise gr.Error("Choose a run first.", print_exception=False)
    return run_id.strip()


def parse_int(value: Any, name: str, lo: int, hi: int) -> int:
    """A whole number in [lo, hi] from a widget or an API caller, or a user-facing gr.Error."""
    try:
        f = float(value)
        if f != int(f):
            raise ValueError
        v = int(f)
    except (TypeError, ValueError, OverflowError):
        raise gr.Error(f"{name} must be a whole number from {lo} to {hi}, got {str(value)[:40]!r}",
                       print_exception=False) from None
    if not lo <= v <= hi:
        raise gr.Error(f"{name} must be a whole number from {lo} to {hi}, got {v}", print_exception=False)
    return v


def parse_choice(value: Any, name: str, choices: list[str] | tuple[str, ...]) -> str:
    if value not in choices:
        raise gr.Error(f"{name} must be one of {', '.join(map(str, choices))}", print_exception=False)
    return value


# ---- the replay viewer --------------------------------------------------------------------------

@dataclass
class Viewer:
    """Status, tree, particles, candidates, compute meter and the image views (candidate gallery, x_t |
    x0-hat strips, best score vs NFE), driven by one step slider and a play button. Widgets of the other
    domain than the run's are hidden.

    ``events`` is a per-session gr.State holding the event dicts of the run on show.
    """

    status: gr.HTML
    tree: gr.Plot
    particles: gr.Plot
    candidates: gr.Dataframe
    meter: gr.HTML
    gallery: gr.Gallery
    strips: gr.Plot
    nfe: gr.Plot
    traces: gr.Plot
    critiques: gr.HTML
    slider: gr.Slider
    play: gr.Button
    timer: gr.Timer
    events: gr.State
    flops_per_byte: float = H100_FLOPS_PER_BYTE  # the meter's eFLOPs

    @property
    def view_outputs(self) -> list:
        return [self.status, self.tree, self.particles, self.candidates, self.meter, self.gallery, self.strips,
                self.nfe, self.traces, self.critiques]

    @property
    def load_outputs(self) -> list:
        """Outputs of a handler that puts a new run in the viewer: see :func:`load_values` for the order."""
        v = self.view_outputs
        return v[:N_BASE_VIEWS] + [self.slider, self.events] + v[N_BASE_VIEWS:]


# The first five views, then the slider and the events, then the image views: the slider and the events
# keep the places they had in the run API's outputs before the image views came.
N_BASE_VIEWS = 5


def load_values(view_values: tuple, slider: Any, events: Any) -> tuple:
    """The values for ``Viewer.load_outputs`` from a :func:`frame` tuple, the slider and the events."""
    return (*view_values[:N_BASE_VIEWS], slider, events, *view_values[N_BASE_VIEWS:])


def build_viewer(prefix: str, with_transport: bool = True, idle: str = "Ready: press <b>Run</b>.",
                 flops_per_byte: float = H100_FLOPS_PER_BYTE, empty: str = EMPTY_TREE) -> Viewer:
    """Lay out a viewer in the current Blocks context and wire its transport. ``idle`` is trusted HTML;
    ``flops_per_byte`` prices the meter's eFLOPs; ``empty`` is what the tree says before a run is on show (what
    to do on this tab)."""
    status = gr.HTML(f'{METER_CSS}<div class="tts-status" data-testid="run-status">{idle}</div>',
                     elem_id=f"{prefix}-status", padding=False)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=360):
            tree = gr.Plot(tree_figure(ViewState(), empty=empty), label="Search tree", elem_id=f"{prefix}-tree",
                           show_label=False)
        with gr.Column(scale=2, min_width=300):
            meter = gr.HTML(compute_meter_html({}, flops_per_byte), elem_id=f"{prefix}-meter", padding=False)
            candidates = gr.Dataframe(value=[], headers=CANDIDATE_HEADERS, label="Finished candidates",
                                      interactive=False, max_height=330, elem_id=f"{prefix}-candidates",
                                      datatype=["str", "str", "number", "number", "str", "str"])
            # image runs: best score against NFE in place of the (text) candidates table
            nfe = gr.Plot(label="Best score vs NFE", elem_id=f"{prefix}-nfe", visible=False, show_label=False)
    gallery = gr.Gallery(value=[], label="Candidates, best verifier score first (caption: node, ★ chosen, "
                         "verifier score, the held-out judge's reading and verdict)", columns=5, fit_columns=False,
                         height=300,
                         object_fit="contain", allow_preview=True, interactive=False, visible=False,
                         elem_id=f"{prefix}-gallery", elem_classes=["tts-pixels", "tts-gallery"],
                         buttons=["fullscreen"])
    strips = gr.Plot(label="x_t | x0-hat strips", elem_id=f"{prefix}-strips", visible=False, show_label=False,
                     elem_classes=["tts-pixels"])
    # only runs that resample (particle filtering, FK steering) show the genealogy lanes
    particles = gr.Plot(particle_figure(ViewState()), label="Particles: lanes and ESS",
                        elem_id=f"{prefix}-particles", visible=False, show_label=False)
    # only runs with per-trace views show it: DeepConf's confidences, a thinking-budget run's thoughts, refinement's
    # attempts
    traces = gr.Plot(label="Traces", elem_id=f"{prefix}-traces", visible=False, show_label=False)
    # only runs scored by a generative critic show each candidate's critiques and their vote
    critiques = gr.HTML("", label="Critiques", elem_id=f"{prefix}-critiques", visible=False, padding=False)
    with gr.Row(visible=with_transport):
        slider = gr.Slider(0, 1, value=1, step=1, label="Step (replay)", elem_id=f"{prefix}-slider",
                           interactive=True, scale=5)
        play = gr.Button("▶ Play", elem_id=f"{prefix}-play", scale=1, min_width=90)
    timer = gr.Timer(PLAY_INTERVAL_S, active=False)
    events = gr.State([])
    v = Viewer(status, tree, particles, candidates, meter, gallery, strips, nfe, traces, critiques, slider, play,
               timer, events, flops_per_byte)
    _wire_transport(v, prefix)
    return v


def stored_events(store: Any, run_id: str) -> list[dict]:
    """A stored run's events, closed by a RunEnded made from its row (the engine stores the search's
    events; the outcome - status, answer, correctness, totals, the domain's extras such as the judge's
    verdicts on image candidates - lives on the run row)."""
    events = store.events(run_id)
    run = store.get_run(run_id) or {}
    if not any(e.get("type") == "RunEnded" for e in events):
        result = run.get("result") if isinstance(run.get("result"), dict) else {}
        # the stored result is RunFinished's fields plus the domain's extras
        extras = {k: v for k, v in result.items() if k not in ("type", "answer", "node_id", "score", "candidates")}
        events.append({"type": "RunEnded", "run_id": run_id, "status": run.get("status"),
                       "answer": run.get("answer"),
                       "correct": None if run.get("correct") is None else bool(run.get("correct")),
                       "score": run.get("score"), "compute": run.get("totals") or {}, "error": run.get("error"),
                       "extras": extras})
    return events


def frame(events: list[dict], k: int | None, title: str | None = None,
          flops_per_byte: float = H100_FLOPS_PER_BYTE) -> tuple:
    """The view values (``Viewer.view_outputs``) at step ``k`` of a run (None: the whole run); the tree keeps
    the whole run's layout at every step."""
    st = fold(events, upto_step=k)
    n = step_count(events)
    layout = None
    if k is not None and k < n:
        st.status = f"replay: step {k} of {n}"
        layout = whole_run_layout(fold(events))
    return (status_html(st), tree_figure(st, title=title, layout=layout),
            particles_update(st, max_step=layout.max_step if layout else None),
            candidates_update(st), compute_meter_html(st.totals, flops_per_byte), *image_updates(st),
            traces_update(st), critiques_update(st))


def particles_update(st: ViewState, compact: bool = False, max_step: int | None = None) -> Any:
    """The particle view, shown only for runs that resample; ``compact`` (a live frame) sends it as
    ``plot_payload`` does; ``max_step`` is the whole run's last step in a replay (the tree's axis)."""
    if not st.particle_steps:
        return gr.update(visible=False)
    fig = particle_figure(st, max_step=max_step)
    return gr.update(value=plot_payload(fig) if compact else fig, visible=True)


def traces_update(st: ViewState) -> Any:
    """The per-trace view: DeepConf's confidence curves, a thinking-budget run's thoughts, or a refinement run's
    attempts with the feedback between them; hidden otherwise."""
    if st.confidence:
        return gr.update(value=confidence_figure(st), visible=True)
    if st.attempts:
        return gr.update(value=attempts_figure(st), visible=True)
    if st.thoughts:
        return gr.update(value=thoughts_figure(st), visible=True)
    return gr.update(visible=False)


def critiques_update(st: ViewState) -> Any:
    """The critique view, shown only for runs a generative critic scored."""
    if not st.critiques:
        return gr.update(value="", visible=False)
    return gr.update(value=critiques_html(st), visible=True)


def candidates_update(st: ViewState) -> Any:
    """The candidates table, for text runs (an image run's candidates are in the gallery)."""
    if st.is_image:
        return gr.update(visible=False)
    return gr.update(value=candidates_rows(st), visible=True)


def images_root() -> Path:
    """The folder image runs write their previews to (the only folder the app serves files from)."""
    from backends.image.diffusion import images_root as root  # torch loads only once images are involved
    return root()


def gallery_update(st: ViewState) -> Any:
    if not st.is_image:
        return gr.update(visible=False)
    return gr.update(value=image_views.gallery_items(st, images_root()), visible=True)


def strips_update(st: ViewState) -> Any:
    """The strips, for image runs whose lineages have more than one image (random search's have one)."""
    if not st.is_image or not any(len(p) > 1 for p in image_views.lineages(st)):
        return gr.update(visible=False)
    return gr.update(value=image_views.strips_figure(st, images_root()), visible=True)


def nfe_update(st: ViewState) -> Any:
    if not st.is_image:
        return gr.update(visible=False)
    label = f"{st.strategy} {st.run_id or ''}".strip()
    return gr.update(value=score_vs_compute_figure([st], [label], x="nfe", height=330, each=True), visible=True)


def image_updates(st: ViewState) -> tuple:
    """Gallery, strips and score-vs-NFE updates: shown for image runs, hidden for the others."""
    return gallery_update(st), strips_update(st), nfe_update(st)


def show_run(events: list[dict], flops_per_byte: float = H100_FLOPS_PER_BYTE) -> tuple:
    """Viewer outputs for a freshly opened run: the finished state, the slider at its end."""
    n = step_count(events)
    return load_values(frame(events, None, flops_per_byte=flops_per_byte),
                       gr.update(minimum=0, maximum=max(n, 1), value=max(n, 1), step=1),
                       events)


def _clamp_step(value: Any, events: list[dict]) -> int:
    n = step_count(events or [])
    try:
        k = int(float(value))
    except (TypeError, ValueError):
        k = n
    return max(0, min(k, n))


def _wire_transport(v: Viewer, prefix: str) -> None:
    n_views = len(v.view_outputs)

    def on_slide(value: Any, events: list[dict]):
        if not events:
            return (gr.skip(),) * n_views
        return frame(events, _clamp_step(value, events), flops_per_byte=v.flops_per_byte)

    def on_play(value: Any, events: list[dict]):
        """Start (from 0 when at the end) or pause playback."""
        if not events:
            raise gr.Error("Open a run first.", print_exception=False)
        n = step_count(events)
        k = _clamp_step(value, events)
        start = 0 if k >= n else k
        return (*frame(events, start, flops_per_byte=v.flops_per_byte), start, gr.Timer(active=True),
                gr.update(value="❚❚ Pause"))

    def on_tick(value: Any, events: list[dict]):
        if not events:
            return (*(gr.skip(),) * n_views, gr.skip(), gr.Timer(active=False), gr.update(value="▶ Play"))
        n = step_count(events)
        k = _clamp_step(value, events) + 1
        done = k >= n
        k = min(k, n)
        return (*frame(events, k, flops_per_byte=v.flops_per_byte), k, gr.Timer(active=not done),
                gr.update(value="▶ Play") if done else gr.skip())

    def on_pause_or_play(value: Any, events: list[dict], label: str):
        if str(label).startswith("❚❚"):
            return (*(gr.skip(),) * n_views, gr.skip(), gr.Timer(active=False), gr.update(value="▶ Play"))
        return on_play(value, events)

    v.slider.input(on_slide, [v.slider, v.events], v.view_outputs, trigger_mode="always_last",
                   show_progress="hidden", api_name=f"{prefix}_step", concurrency_limit=4,
                   concurrency_id="replay")
    v.play.click(on_pause_or_play, [v.slider, v.events, v.play],
                 v.view_outputs + [v.slider, v.timer, v.play], show_progress="hidden",
                 api_visibility="private", concurrency_id="replay")
    v.timer.tick(on_tick, [v.slider, v.events], v.view_outputs + [v.slider, v.timer, v.play],
                 show_progress="hidden", api_visibility="private", concurrency_id="replay")


def guarded(fn: Callable) -> Callable:
    """Turn domain errors (ValueError subclasses with user-facing text) into gr.Error for the page."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
    return wrapper
