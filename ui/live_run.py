"""A run streamed into the viewer: the engine in a worker thread pushes its events into a queue; the handler
folds them and sends the views at most ``MAX_UPDATES_PER_S`` times a second (the tree as diffs after its first
frame, ``ui.live_figure``; the other figures whole), but always at once for the first node, so the first visible
update is not held back by the throttle. The acknowledgement (status line, the previous run's views cleared)
waits up to ``ACK_GRACE_S`` for that first node and goes out with it as one update: two back-to-back updates cost
the browser two renders before the tree shows (bench/first_update.py measures it); the views it shows or hides
follow with the next update (``defer_props``). Explore's Run and "Run on this problem with..." both stream here.
"""
from __future__ import annotations

import logging
import queue
import time
from typing import Any, Iterator

import gradio as gr

from ui.common import (AppContext, Viewer, candidates_update, critiques_update, gallery_update, load_values,
                       nfe_update, particles_update, start_worker, strips_update, traces_update)
from ui.figures.style import empty_figure, plot_payload
from ui.figures.tables import compute_meter_html, status_html
from ui.figures.tree import tree_figure, tree_signature
from ui.fold import ViewState, fold, step_count
from ui.live_figure import FigureStream

log = logging.getLogger(__name__)

MAX_UPDATES_PER_S = 3.0
ACK_GRACE_S = 0.15  # a cached model's first node comes within milliseconds; a first load takes seconds
_DONE = object()


def refused_values(message: str) -> tuple:
    """Viewer outputs (``Viewer.load_outputs``) for a run refused before it started: the reason in the status
    line, the tree saying so, the last run's views emptied (no stale result under the new message)."""
    st = ViewState(status="refused", error=message)
    hidden = gr.update(visible=False)
    return load_values((status_html(st), empty_figure("The run was refused: the reason is in the line above."),
                        hidden, gr.update(value=[]), compute_meter_html({}), gr.update(value=[]), hidden, hidden,
                        hidden, hidden), gr.update(minimum=0, maximum=1, value=1), [])


def defer_props(values: tuple) -> tuple[tuple, tuple]:
    """``values`` split into what to send now (plain values) and the property updates to send with the next
    update (a view shown or hidden, and the rest of a ``gr.update``). For every property update gradio builds the
    component anew with its API schema (pydantic), tens of milliseconds each for a table, a gallery or a plot on
    a loaded 2-core machine, where a plain value is only postprocessed: the first frame, which the visitor waits
    for, carries the plain values (bench/first_update.py)."""
    skip = gr.skip()
    now, later = [], []
    for v in values:
        props = ({k: x for k, x in v.items() if k not in ("__type__", "value")}
                 if isinstance(v, dict) and v.get("__type__") == "update" else {})
        now.append(v.get("value", skip) if props else v)
        later.append(gr.update(**props) if props else skip)
    return tuple(now), tuple(later)


def stream_run(ctx: AppContext, config, key: str, viewer: Viewer) -> Iterator[tuple]:
    """Run ``config`` in a worker thread and yield viewer outputs as events arrive (throttled), then the live
    tree's diff (``channel``; skipped where the tree's gr.Plot gets the figure)."""
    from engine.run import ConfigError, execute

    token = ctx.claim(key, "A run is already going in this session: stop it or wait for it to end.")
    q: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            for ev in execute(config, ctx.store, token, ctx.limits):
                q.put(ev)
        except ConfigError as exc:
            q.put(("error", str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported to the page, logged in full here
            log.exception("run failed before it was stored")
            q.put(("error", f"the run could not start: {type(exc).__name__}: {exc}"))
        finally:
            q.put(_DONE)

    start_worker(work, f"run-{key[-8:]}")
    skip = gr.skip()
    st = ViewState(strategy=config.strategy, status="starting", domain=config.domain)
    is_image = st.is_image
    events: list[dict] = []
    finished = False
    try:
        # What the acknowledgement clears: the other domain's widgets hidden, this domain's emptied. The
        # tree is left alone until it has a node (an empty figure would cost a plot render right before
        # the first real one).
        hidden = gr.update(visible=False)
        reset = (None, None, hidden, gr.update(value=[], visible=not is_image), compute_meter_html({}),
                 gr.update(value=[], visible=is_image), hidden, hidden, hidden, hidden)
        acked = False

        def with_reset(values: tuple) -> tuple:
            """``values`` with the acknowledgement's resets in the places it leaves unchanged (skip)."""
            return tuple(r if v is skip and r is not None else v for v, r in zip(values, reset))

        interval = 1.0 / MAX_UPDATES_PER_S
        ack_due = time.monotonic() + ACK_GRACE_S
        last_sent = time.monotonic()
        dirty = False
        shown_nodes = False
        sent: dict[str, Any] = {}  # what each view last showed, to skip resending an unchanged one
        live, drawn = FigureStream(), False  # what the page holds of the live tree; its first frame sent
        later: tuple = (skip,) * len(reset)  # property updates held back from the first frame (defer_props)

        def changed(view: str, key: Any) -> bool:
            if finished or sent.get(view) != key:
                sent[view] = key
                return True
            return False

        while not finished:
            if not acked:
                timeout = max(0.0, ack_due - time.monotonic())
            else:
                timeout = max(0.0, last_sent + interval - time.monotonic()) if dirty else 1.0
            try:
                item = q.get(timeout=timeout)
            except queue.Empty:
                item = None
            while item is not None:  # drain whatever else is already there
                if item is _DONE:
                    finished = True
                    break
                if isinstance(item, tuple):  # refused (bad input, unusable model): say so in place too
                    st.status, st.error = "refused", item[1]
                    refused = empty_figure("The run was refused: see the message.")
                    yield (*load_values(with_reset((status_html(st), refused, *(skip,) * (len(reset) - 2))), skip, skip), skip)
                    raise gr.Error(item[1], print_exception=False)
                events.append(item)
                fold([item], state=st)
                dirty = True
                if (st.nodes and not shown_nodes) or time.monotonic() - last_sent >= interval:
                    break  # an update is due: send it rather than keep draining a busy queue
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    item = None
            now = time.monotonic()
            first_nodes = not shown_nodes and bool(st.nodes)
            if not acked and not finished and not first_nodes and now >= ack_due:
                # a slow start (the models' first load): say at once that the run is under way
                yield (*load_values(with_reset((status_html(st), *(skip,) * (len(reset) - 1))), skip, skip), skip)
                acked, last_sent = True, time.monotonic()
                continue
            if finished or (dirty and (first_nodes or now - last_sent >= interval)):
                fin = [n for n in st.nodes.values() if n.finished]
                n_fin = len(fin) + (0 if st.candidates is None else 10**6)
                particles = (particles_update(st, compact=not finished)
                             if changed("particles", len(st.particle_steps)) else skip)
                if is_image:
                    cands = skip
                    gallery = gallery_update(st) if changed("gallery", (
                        n_fin, sum(n.score is not None for n in fin), len(st.judged), st.selected)) else skip
                    strips = strips_update(st) if changed("strips", (len(st.nodes), len(st.score_trace))) else skip
                    nfe = nfe_update(st) if changed("nfe", len(st.score_trace)) else skip
                else:
                    cands = candidates_update(st) if changed("candidates", n_fin) else skip
                    gallery = strips = nfe = skip
                traces = (traces_update(st) if changed("traces", (
                    len(st.confidence), sum(map(len, st.thoughts.values())), sum(map(len, st.attempts.values())),
                    len(st.critiques))) else skip)
                crits = critiques_update(st) if changed("critiques", (len(st.critiques), st.selected)) else skip
                # the tree only when it changed: live frames with brief hovers, the first in compact JSON
                # (plot_payload) to its gr.Plot, the later ones as diffs to the page's copy (ui.live_figure);
                # the last frame (and every replay) sends the whole figure
                tree = diff = skip
                if changed("tree", tree_signature(st)):
                    if finished:
                        tree = tree_figure(st)
                    elif drawn:
                        diff = live.frame(tree_figure(st, brief=True))
                    else:
                        fig = tree_figure(st, brief=True)
                        tree = plot_payload(fig)
                        if st.nodes:  # the page's copy starts from the first tree with nodes
                            diff, drawn = live.frame(fig, reset=True), True
                values = (status_html(st), tree, particles, cands,
                          compute_meter_html(st.totals, ctx.limits.flops_per_byte), gallery, strips, nfe, traces,
                          crits)
                if not acked:
                    values, acked = with_reset(values), True
                values = tuple(p if v is skip else v for v, p in zip(values, later))
                later = (skip,) * len(values)
                if first_nodes and not finished:  # what draws the run now, what only restyles the page next
                    values, later = defer_props(values)
                if finished:
                    n = step_count(events)
                    yield (*load_values(values, gr.update(minimum=0, maximum=max(n, 1), value=max(n, 1)), events),
                           diff)
                else:
                    yield (*load_values(values, skip, skip), diff)
                last_sent, dirty, shown_nodes = time.monotonic(), False, shown_nodes or bool(st.nodes)
    finally:
        # A closed tab or a cancelled job ends here too: stop the worker at its next step.
        if not finished:
            token.cancel()
        ctx.release_cancel(key, token)
