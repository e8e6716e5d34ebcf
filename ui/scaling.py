"""Scaling: sweep strategies x budgets x problems from the page (progress, stop) or open a stored sweep;
accuracy against compute per strategy with the oracle ceiling, per difficulty, and the compute-optimal table.
Reasoning sweeps run on the arithmetic test split; image sweeps on the digits, graded by a held-out judge while the
search verifier's own score is drawn beside it (verifier hacking shows as the two parting)."""
from __future__ import annotations

import logging
import queue
from dataclasses import dataclass
from typing import Any

import gradio as gr

from engine.saturation import DEFAULT_GAIN
from ui.figures.sweeps import (AXES, BINNINGS, OPTIMAL_HEADERS, RANKS, compute_optimal_table, optimal_headers,
                               scaling_figure)
from ui.common import AppContext, check_run_id, parse_choice, parse_int, session_key, start_worker
from ui.figures.style import esc
from ui.figures.thinking_sweeps import parallel_sequential_figure, thinking_budget_figure

log = logging.getLogger(__name__)

DEFAULT_STRATEGIES = ["greedy", "best_of_n", "beam_search"]
DEFAULT_BUDGETS = [1, 4, 16]
SWEEP_DOMAINS = {"reasoning": "reasoning (arithmetic chains)", "image": "image (digits, graded by a held-out judge)"}
DOMAIN_DEFAULTS = {  # domain -> (policy, verifier, strategies, compute axis, problems label)
    "reasoning": ("tiny-arith-s", "tiny-prm", DEFAULT_STRATEGIES, "tokens", "Problems (test split)"),
    "image": ("tiny-digits", "digit-classifier", ["random_search", "fk_steering"], "nfe",
              "Digits (test split: 0, 1, 2, ... in turn)"),
}
_DONE = object()


@dataclass
class ScalingTab:
    sweeps: gr.Dropdown
    refresh: Any


def progress_html(done: int, total: int, left_s: float | None = None, note: str = "") -> str:
    """The progress bar; ``left_s`` is the engine's estimate (``SweepClock``: each cell's measured time per run)."""
    pct = 100.0 * done / total if total else 0.0
    eta = ""
    if left_s is not None and done and total and done < total:
        eta = f" · about {left_s:.0f} s left"
    return (f'<div data-testid="sweep-progress" style="font-family:system-ui,sans-serif">'
            f'<div style="background:#eee;border-radius:6px;height:12px;overflow:hidden">'
            f'<div style="background:#3b6fd6;height:12px;width:{pct:.1f}%"></div></div>'
            f'<div style="font-size:13px;margin-top:4px">{done} / {total} runs{esc(eta)} {esc(note)}</div></div>')


@dataclass(frozen=True)
class View:
    """How a sweep is read: compute axis, difficulty binning, the table's ranking, eFLOPs' FLOPs per byte, and
    the gain below which one more unit of budget counts as saturated."""

    x: str
    binning: str
    rank: str
    flops_per_byte: float
    gain: float


def parse_view(x: Any, binning: Any, rank: Any, flops_per_byte: Any, gain: Any) -> View:
    """The view settings from the page (every handler is an API endpoint: each value is checked here)."""
    from engine.limits import check_flops_per_byte
    x = parse_choice(x, "compute axis", list(AXES))
    binning = parse_choice(binning, "difficulty binning", list(BINNINGS))
    rank = parse_choice(rank, "table ranking", list(RANKS))
    try:
        fpb = check_flops_per_byte(flops_per_byte, "FLOPs per byte")
    except ValueError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    try:
        g = float(gain)
    except (TypeError, ValueError):
        g = float("nan")
    if not 0 < g < 1:
        raise gr.Error("the saturation gain must be above 0 and below 1 (accuracy per unit of budget)",
                       print_exception=False)
    return View(x, binning, rank, fpb, g)


def views(result: dict | None, v: View) -> tuple[Any, Any]:
    """The figure and the compute-optimal table of ``result`` read as ``v``."""
    fig = scaling_figure(result, x=v.x, binning=v.binning, flops_per_byte=v.flops_per_byte, gain=v.gain)
    rows = compute_optimal_table(result, x=v.x, binning=v.binning, rank=v.rank, flops_per_byte=v.flops_per_byte,
                                 gain=v.gain)
    return fig, {"data": rows, "headers": optimal_headers(v.x, v.binning)}


def sweep_label(s: dict) -> str:
    cfg = s.get("config") or {}
    thinking = "".join(f" · {name} {','.join(map(str, cfg[key]))}" for key, name in
                       (("thinking_budgets", "thinking budgets"), ("samples", "samples")) if cfg.get(key))
    return (f"{s['id']} · {s.get('status')} · {','.join(cfg.get('strategies') or [])} · budgets "
            f"{','.join(map(str, cfg.get('budgets') or []))}{thinking} · {cfg.get('problems')} problems")


def build(ctx: AppContext) -> ScalingTab:
    from strategies.registry import STRATEGIES
    from backends.image.digits import DEFAULT_JUDGE
    from ui.registry import budget_choices, judge_choices, model_choices, strategy_choices, verifier_choices

    budgets_all = budget_choices(ctx.limits.max_budget)
    gr.Markdown("Sweep strategies and budgets over the same test problems, then read accuracy against compute. "
                "The dotted line is the oracle pass@N of the best-of-N samples: how often *some* one of them is "
                "right — the ceiling a perfect verifier choosing among them would reach. An image sweep draws the "
                "held-out judge's accuracy (solid) beside the search verifier's score (dashed): a verifier the "
                "search hacks climbs while the judge does not.")
    domain = gr.Radio([(label, key) for key, label in SWEEP_DOMAINS.items()], value="reasoning", label="Domain",
                      elem_id="sweep-domain")
    with gr.Row():
        model = gr.Dropdown(model_choices("reasoning"), value="tiny-arith-s", label="Policy model",
                            allow_custom_value=True, elem_id="sweep-model")
        verifier = gr.Dropdown(verifier_choices("reasoning"), value="tiny-prm", label="Verifier",
                               allow_custom_value=True, elem_id="sweep-verifier")
        problems = gr.Number(min(10, ctx.limits.max_problems), precision=0, label="Problems (test split)",
                             info=f"1 to {ctx.limits.max_problems}", elem_id="sweep-problems")
        seeds = gr.Number(1, precision=0, label="Seeds", info=f"1 to {ctx.limits.max_seeds}")
        judge = gr.Dropdown(judge_choices("image"), value=DEFAULT_JUDGE, label="Held-out judge", visible=False,
                            allow_custom_value=True, elem_id="sweep-judge")
    strategies = gr.CheckboxGroup(strategy_choices("reasoning"),
                                  value=DEFAULT_STRATEGIES,
                                  label="Strategies", elem_id="sweep-strategies")
    budgets = gr.CheckboxGroup(budgets_all, value=[b for b in DEFAULT_BUDGETS if b in budgets_all],
                               label="Budgets N", elem_id="sweep-budgets")
    token_cap = ctx.limits.max_budget * max(i.budget_scale for i in STRATEGIES.values())
    with gr.Row():
        thinking_budgets = gr.CheckboxGroup(budget_choices(token_cap), value=[],
                                            label="Thinking budgets B (budget forcing: tokens per sample)",
                                            info="none: budget forcing runs at the budgets N", scale=3,
                                            elem_id="sweep-thinking-budgets")
        samples = gr.CheckboxGroup(budgets_all, value=[], label="Parallel samples (budget forcing's n)",
                                   info="N samples of B vote; set against one sample of N x B", scale=2,
                                   elem_id="sweep-samples")
    with gr.Row():
        run_btn = gr.Button("Run sweep", variant="primary", elem_id="sweep-run")
        stop_btn = gr.Button("Stop sweep", variant="stop", elem_id="sweep-stop")
    progress = gr.HTML(progress_html(0, 0, note="not started"), elem_id="sweep-progress")
    with gr.Row():
        sweeps = gr.Dropdown([], value=None, allow_custom_value=True, label="…or open a stored sweep", scale=5,
                             elem_id="sweep-pick")
        refresh_btn = gr.Button("↻ Refresh", scale=1)
    with gr.Row():
        x_axis = gr.Radio([(label, key) for key, label in AXES.items()], value="tokens", label="Compute axis",
                          info="eFLOPs (Kinetics): FLOPs + memory bytes x the accelerator's FLOPs per byte",
                          elem_id="sweep-axis")
        fpb = gr.Number(ctx.limits.flops_per_byte, label="Accelerator FLOPs per byte (eFLOPs)",
                        info="H100: 989.4 TFLOP/s bf16 dense / 3.35 TB/s = 295", elem_id="sweep-fpb")
        binning = gr.Radio([("task labels", "difficulty"), ("pass@1 quintiles", "pass1")], value="difficulty",
                           label="Difficulty bins", info="pass@1 of the sweep's own samples, in five levels",
                           elem_id="sweep-binning")
    with gr.Row():
        rank = gr.Radio([("matched budget N", "budget"), ("matched compute (the axis)", "compute")],
                        value="budget", label="Compute-optimal table ranks at", elem_id="sweep-rank")
        gain = gr.Number(DEFAULT_GAIN, label="Saturation gain",
                         info="N*: beyond it one more unit of N buys less accuracy than this (TTSPM fit)",
                         elem_id="sweep-gain")
    figure = gr.Plot(scaling_figure(None), label="Accuracy vs compute", elem_id="sweep-figure")
    table = gr.Dataframe(value=[], headers=OPTIMAL_HEADERS, interactive=False,
                         label="Compute-optimal strategy per difficulty and budget", elem_id="sweep-table")
    with gr.Row():
        thinking_fig = gr.Plot(thinking_budget_figure(None), label="Accuracy vs thinking budget",
                               elem_id="sweep-thinking")
        pairs_fig = gr.Plot(parallel_sequential_figure(None), label="Parallel vs sequential at equal thinking tokens",
                            elem_id="sweep-pairs")
    result_state = gr.State(None)
    view_inputs = [x_axis, binning, rank, fpb, gain]

    def on_domain(d: str):
        d = d if d in DOMAIN_DEFAULTS else "reasoning"
        policy, verifier_id, chosen, axis, problems_label = DOMAIN_DEFAULTS[d]
        offered = strategy_choices(d)
        return (gr.update(choices=model_choices(d), value=policy), gr.update(choices=verifier_choices(d),
                                                                            value=verifier_id),
                gr.update(visible=d == "image"), gr.update(label=problems_label),
                gr.update(choices=offered, value=[v for v in chosen if any(v == n for _, n in offered)]),
                gr.update(value=axis))

    domain.change(on_domain, [domain], [model, verifier, judge, problems, strategies, x_axis],
                  api_visibility="private", show_progress="hidden")

    def refresh():
        return gr.update(choices=[(sweep_label(s), s["id"]) for s in ctx.store.list_sweeps(limit=100)])

    refresh_btn.click(refresh, None, [sweeps], api_visibility="private", show_progress="hidden")

    def open_sweep(sid, x, binning_v, rank_v, fpb_v, gain_v):
        if sid in (None, ""):
            return gr.skip(), gr.skip(), gr.skip()
        sid = check_run_id(sid)
        s = ctx.store.get_sweep(sid)
        if s is None:
            raise gr.Error(f"No sweep {sid} in the store.", print_exception=False)
        if not s.get("result"):
            raise gr.Error(f"Sweep {sid} has no result ({s.get('status')}).", print_exception=False)
        return (*views(s["result"], parse_view(x, binning_v, rank_v, fpb_v, gain_v)), s["result"])

    sweeps.change(open_sweep, [sweeps, *view_inputs], [figure, table, result_state], api_name="open_sweep")

    def redraw(x, binning_v, rank_v, fpb_v, gain_v, result):
        v = parse_view(x, binning_v, rank_v, fpb_v, gain_v)
        return views(result, v) if result else (gr.skip(), gr.skip())

    for control in view_inputs:
        control.change(redraw, [*view_inputs, result_state], [figure, table], api_visibility="private",
                       show_progress="hidden")

    def thinking_views(result, x, binning_v, rank_v, fpb_v, gain_v):
        v = parse_view(x, binning_v, rank_v, fpb_v, gain_v)
        return thinking_budget_figure(result, gain=v.gain), parallel_sequential_figure(result)

    for trigger in (result_state, gain):  # whatever sets the result (a sweep, a stored one) draws these too
        trigger.change(thinking_views, [result_state, *view_inputs], [thinking_fig, pairs_fig],
                       api_visibility="private", show_progress="hidden")

    def run_sweep(model_v, verifier_v, problems_v, seeds_v, strategies_v, budgets_v, x, binning_v, rank_v, fpb_v,
                  gain_v, thinking_v, samples_v, domain_v, judge_v, request: gr.Request):
        from engine.run import ConfigError
        from engine.sweep import SweepClock, SweepConfig, run_sweep as engine_sweep

        n_problems = parse_int(problems_v, "problems", 1, ctx.limits.max_problems)
        n_seeds = parse_int(seeds_v, "seeds", 1, ctx.limits.max_seeds)
        chosen = [parse_choice(s, "strategy", list(STRATEGIES)) for s in (strategies_v or [])]
        bs = sorted({parse_int(b, "budget", 1, ctx.limits.max_budget) for b in (budgets_v or [])})
        ts = sorted({parse_int(b, "thinking budget", 1, token_cap) for b in (thinking_v or [])})
        ks = sorted({parse_int(k, "parallel samples", 1, ctx.limits.max_budget) for k in (samples_v or [])})
        if not chosen or not (bs or ts):
            raise gr.Error("Choose at least one strategy and one budget.", print_exception=False)
        view = parse_view(x, binning_v, rank_v, fpb_v, gain_v)
        domain_v = parse_choice(domain_v or "reasoning", "domain", list(SWEEP_DOMAINS))
        needed = (model_v, verifier_v, judge_v) if domain_v == "image" else (model_v,)  # budget forcing needs no verifier
        if any(not isinstance(v, str) or not v or len(v) > 300 for v in needed) or len(str(verifier_v or "")) > 300:
            raise gr.Error("choose a model, a verifier and (image sweeps) a judge", print_exception=False)
        config = SweepConfig(domain=domain_v, model=model_v, verifier=verifier_v, strategies=chosen, budgets=bs,
                             split="test", problems=n_problems, seeds=list(range(n_seeds)),
                             judge=judge_v if domain_v == "image" else None, thinking_budgets=ts, samples=ks)
        clock = SweepClock()
        key = session_key(request, "sweep")
        token = ctx.claim(key, "A sweep is already running in this session.")
        q: queue.Queue = queue.Queue()

        def work():
            try:
                q.put(("result", engine_sweep(config, ctx.store, token,
                                              lambda d, t: q.put(("progress", d, t, clock.left_s())), ctx.limits,
                                              clock=clock)))
            except ConfigError as exc:
                q.put(("error", str(exc)))
            except Exception as exc:  # noqa: BLE001
                log.exception("sweep failed")
                q.put(("error", f"the sweep failed: {type(exc).__name__}: {exc}"))
            finally:
                q.put(_DONE)

        start_worker(work, "sweep")
        finished = False
        try:
            yield progress_html(0, 1, note="starting…"), gr.skip(), gr.skip(), gr.skip()
            done = total = 0
            left = None
            result = None
            while True:
                item = q.get()
                if item is not _DONE and item[0] == "progress":
                    done, total, left = item[1:]
                    while True:  # collapse a burst of progress reports into one update
                        try:
                            item = q.get_nowait()
                        except queue.Empty:
                            item = None
                            break
                        if item is _DONE or item[0] != "progress":
                            break
                        done, total, left = item[1:]
                    yield progress_html(done, total, left), gr.skip(), gr.skip(), gr.skip()
                    if item is None:
                        continue
                if item is _DONE:
                    finished = True
                    break
                if item[0] == "error":
                    raise gr.Error(item[1], print_exception=False)
                if item[0] == "result":
                    result = item[1]
            note = "stopped" if (result or {}).get("status") == "cancelled" else "done"
            yield (progress_html(done, total or done, note=note), *views(result, view), result)
        finally:
            if not finished:
                token.cancel()
            ctx.release_cancel(key, token)

    run_btn.click(run_sweep, [model, verifier, problems, seeds, strategies, budgets, *view_inputs, thinking_budgets,
                              samples, domain, judge],
                  [progress, figure, table, result_state], api_name="sweep", concurrency_limit=1,
                  concurrency_id="sweep")

    def stop(request: gr.Request):
        if not ctx.cancel(session_key(request, "sweep")):
            gr.Info("No sweep is running in this session.")

    stop_btn.click(stop, None, None, api_name="stop_sweep", concurrency_limit=None, concurrency_id="stop")
    return ScalingTab(sweeps, refresh)
