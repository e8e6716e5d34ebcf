"""Compare: two to four stored runs side by side under one step slider, with a metrics table and score vs compute."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ui.figures.curves import score_vs_compute_figure
from ui.figures.style import empty_figure, tree_steps
from ui.figures.tables import error_html, metrics_rows, problems_html
from ui.figures.tree import tree_figure, whole_run_layout
from ui.fold import fold, step_count
from ui.common import (AppContext, check_run_id, critiques_update, gallery_update, parse_choice, stored_events,
                       traces_update)

log = logging.getLogger(__name__)

MAX_RUNS = 4
EMPTY_PANEL = "Choose two to four runs above and press Compare: each run's tree is drawn here."


@dataclass
class CompareTab:
    picker: gr.Dropdown
    refresh: Any
    refresh_outputs: list
    open_runs: Any  # (run ids, axis, FLOPs per byte) -> the picker set to them and the runs compared
    open_inputs: list
    open_outputs: list


def _label(events: list[dict], rid: str) -> str:
    first = next((e for e in events if e.get("type") == "RunStarted"), {})
    n = (first.get("config") or {}).get("budget")
    return f"{rid} · {first.get('strategy', '?')}" + (f" N={n}" if n is not None else "")


def _step(value: Any) -> int | None:
    """The slider's step, or None (the whole runs) when it is not a number."""
    try:
        return max(0, int(float(value)))
    except (TypeError, ValueError):
        return None


def _per_byte(value: Any) -> float:
    """The FLOPs-per-byte box, checked (every handler is an API endpoint)."""
    from engine.limits import check_flops_per_byte
    try:
        return check_flops_per_byte(value, "FLOPs per byte")
    except ValueError as exc:
        raise gr.Error(str(exc), print_exception=False) from None


def build(ctx: AppContext) -> CompareTab:
    from ui.runs import run_label

    gr.Markdown("Choose two to four runs (ideally on the same problem) and compare them step by step: "
                "the slider drives every tree at once.")
    with gr.Row():
        picker = gr.Dropdown([], value=[], multiselect=True, max_choices=MAX_RUNS, allow_custom_value=True,
                             label="Runs to compare (2 to 4)", elem_id="compare-pick", scale=5)
        refresh_btn = gr.Button("↻ Refresh list", scale=1)
        go_btn = gr.Button("Compare", variant="primary", scale=1, elem_id="compare-btn")
    problems = gr.HTML(problems_html([], []), elem_id="compare-problems", padding=False)
    slider = gr.Slider(0, 1, value=1, step=1, label="Step (all runs)", elem_id="compare-slider")
    metrics = gr.Dataframe(value=[], headers=["metric"], interactive=False, label="Metrics",
                           elem_id="compare-metrics", max_height=420)
    plots: list[gr.Plot] = []
    with gr.Row():  # plots straight in the row: a hidden one then takes no width
        for i in range(MAX_RUNS):
            plots.append(gr.Plot(empty_figure(EMPTY_PANEL, 400) if i < 2 else None, visible=i < 2,
                                 label=f"Run {i + 1}", elem_id=f"compare-tree-{i}", show_label=False, min_width=260))
    galleries: list[gr.Gallery] = []
    with gr.Row():  # image runs: each run's candidates, best verifier score first, under its tree
        for i in range(MAX_RUNS):
            galleries.append(gr.Gallery(value=[], visible=False, label=f"Run {i + 1}: candidates", columns=3,
                                        fit_columns=False, height=300, object_fit="contain", interactive=False,
                                        min_width=260, elem_id=f"compare-gallery-{i}", elem_classes=["tts-pixels"]))
    confs: list[gr.Plot] = []
    with gr.Row():  # DeepConf and thinking-budget runs: each run's traces, under its tree
        for i in range(MAX_RUNS):
            confs.append(gr.Plot(visible=False, label=f"Run {i + 1}: traces", show_label=False,
                                 min_width=260, elem_id=f"compare-traces-{i}"))
    crits: list[gr.HTML] = []
    with gr.Row():  # runs a generative critic scored: each run's candidates with their critiques, under its tree
        for i in range(MAX_RUNS):
            crits.append(gr.HTML("", visible=False, min_width=260, elem_id=f"compare-critiques-{i}", padding=False))
    with gr.Row():
        x_axis = gr.Radio([("tokens", "tokens"), ("FLOPs", "flops"), ("eFLOPs", "eflops")], value="tokens",
                          label="Compute axis (image runs: NFE)", elem_id="compare-axis",
                          info="eFLOPs (Kinetics): FLOPs + memory bytes x the accelerator's FLOPs per byte")
        fpb = gr.Number(ctx.limits.flops_per_byte, label="Accelerator FLOPs per byte (eFLOPs)",
                        info="H100: 989.4 TFLOP/s bf16 dense / 3.35 TB/s = 295", elem_id="compare-fpb")
    score_plot = gr.Plot(score_vs_compute_figure([]), label="Best verifier score vs compute (NFE for images)",
                         elem_id="compare-score", show_label=False)
    runs_state = gr.State([])  # [(label, events)] per session

    def axis_of(x: Any, fpb_v: Any, loaded: list) -> tuple[str | None, float]:
        """The curve's axis (NFE when every run is an image run) and the FLOPs per byte, checked."""
        x = parse_choice(x, "compute axis", ["tokens", "flops", "eflops"])
        images = loaded and all(fold(ev).is_image for _, ev in loaded)
        return (None if images else x), _per_byte(fpb_v)

    def score_figure(loaded: list, x: str | None, per_byte: float):
        return score_vs_compute_figure([fold(ev) for _, ev in loaded], [lab for lab, _ in loaded], x=x,
                                       flops_per_byte=per_byte)

    def refresh():
        runs = ctx.store.list_runs(limit=200)
        return gr.update(choices=[(run_label(r), r["id"]) for r in runs])

    refresh_btn.click(refresh, None, [picker], api_visibility="private", show_progress="hidden")

    def frames(loaded: list, k: int | None, per_byte: float):
        states = [fold(ev, upto_step=k) for _, ev in loaded]
        labels = [lab for lab, _ in loaded]
        headers, rows = metrics_rows(states, labels, per_byte)
        # the panels of a domain on one step axis (reasoning steps and denoising steps share none), each node where
        # the whole run puts it, whatever the slider says
        wholes = [fold(ev) for _, ev in loaded]
        steps: dict[bool, int] = {}
        for w in wholes:
            steps[w.is_image] = max(steps.get(w.is_image, 1), tree_steps(w))
        figs = [gr.update(value=tree_figure(st, height=400, title=lab, legend=False,
                                            layout=whole_run_layout(w, steps[w.is_image])), visible=True)
                for st, w, lab in zip(states, wholes, labels)]
        figs += [gr.update(value=None, visible=False)] * (MAX_RUNS - len(figs))
        rest = [gr.update(visible=False)] * (MAX_RUNS - len(states))
        gals = [gallery_update(st) for st in states] + rest
        conf = [traces_update(st) for st in states] + rest
        crit = [critiques_update(st) for st in states] + rest
        return gr.update(value=rows, headers=headers), *figs, *gals, *conf, *crit

    outputs = [problems, metrics, *plots, *galleries, *confs, *crits, score_plot, slider, runs_state]

    def load(ids, x, fpb_v) -> tuple:
        ids = [check_run_id(i) for i in (ids or [])]
        ids = list(dict.fromkeys(ids))
        if not 2 <= len(ids) <= MAX_RUNS:
            raise gr.Error(f"Choose 2 to {MAX_RUNS} different runs to compare.", print_exception=False)
        loaded = []
        for rid in ids:
            if ctx.store.get_run(rid) is None:
                raise gr.Error(f"No run {rid} in the store.", print_exception=False)
            ev = stored_events(ctx.store, rid)
            loaded.append((_label(ev, rid), ev))
        n = max(step_count(ev) for _, ev in loaded)
        axis, per_byte = axis_of(x, fpb_v, loaded)
        note = problems_html([fold(ev) for _, ev in loaded], [lab for lab, _ in loaded])
        return (note, *frames(loaded, None, per_byte), score_figure(loaded, axis, per_byte),
                gr.update(minimum=0, maximum=max(n, 1), value=max(n, 1)), loaded)

    def compare(ids, x, fpb_v):
        """The runs side by side; a refusal's reason stays in the line above the table (the toast repeats it)."""
        try:
            yield load(ids, x, fpb_v)
        except gr.Error as exc:
            yield (error_html(exc.message, "compare-problems"), *(gr.skip(),) * (len(outputs) - 1))
            raise

    go_btn.click(compare, [picker, x_axis, fpb], outputs, api_name="compare", concurrency_id="replay")

    def redraw(x, fpb_v, value, loaded):
        if not loaded:
            return gr.skip(), gr.skip()
        axis, per_byte = axis_of(x, fpb_v, loaded)
        return frames(loaded, _step(value), per_byte)[0], score_figure(loaded, axis, per_byte)

    for control in (x_axis, fpb):
        control.change(redraw, [x_axis, fpb, slider, runs_state], [metrics, score_plot], api_visibility="private",
                       show_progress="hidden", concurrency_id="replay")

    def slide(value, fpb_v, loaded):
        if not loaded:
            return (gr.skip(),) * (1 + 4 * MAX_RUNS)
        return frames(loaded, _step(value), _per_byte(fpb_v))

    slider.input(slide, [slider, fpb, runs_state], [metrics, *plots, *galleries, *confs, *crits],
                 trigger_mode="always_last",
                 api_visibility="private", show_progress="hidden", concurrency_id="replay")

    def open_runs(ids, x, fpb_v):
        """Another tab's runs (Explore's same-problem set) chosen in the picker and compared."""
        runs = ctx.store.list_runs(limit=200)
        yield (gr.update(choices=[(run_label(r), r["id"]) for r in runs], value=list(ids or [])),
               *(gr.skip(),) * len(outputs))
        for values in compare(ids, x, fpb_v):
            yield (gr.skip(), *values)

    return CompareTab(picker, refresh, [picker], open_runs, [x_axis, fpb], [picker, *outputs])
