"""Explore: choose a strategy and its budget, press Run, watch the search live; Stop keeps what was done.

The engine runs in a worker thread and pushes its events into a queue; the handler folds them and
sends the views at most ``MAX_UPDATES_PER_S`` times a second (each yield re-sends whole figures), but
always at once for the first node, so the first visible update is not held back by the throttle. The
acknowledgement (status line, the previous run's views cleared) waits up to ``ACK_GRACE_S`` for that
first node and goes out with it as one update: two back-to-back updates cost the browser two renders
before the tree shows (bench/first_update.py measures it).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

import gradio as gr

from ui import views
from ui.common import (AppContext, Viewer, build_viewer, candidates_update, gallery_update, load_values, nfe_update,
                       parse_choice, parse_int, particles_update, session_key, strips_update)
from ui.registry import (PROBLEM_TEXT_MAX, ParamField, budget_choices, domain_choices, model_choices,
                         param_fields, strategy_choices, strategy_markdown, verifier_choices)

log = logging.getLogger(__name__)

MAX_UPDATES_PER_S = 3.0
ACK_GRACE_S = 0.15  # a cached model's first node comes within milliseconds; a first load takes seconds
DEFAULT_STRATEGY = "beam_search"
DEFAULT_BUDGET = 16
DEFAULT_DIFFICULTY = 3
DEFAULT_DIGIT = 3
SAMPLER_OPTIONS = ("steps", "eta", "guidance", "scheduler")  # the image options Explore offers, in widget order
PROBLEM_BOX = {  # label and placeholder of the typed-problem box, per domain
    "reasoning": ("…or type a problem (leave empty for a random one)",
                  "Start with 37. Add 48. Multiply by 6. Subtract 125."),
    "image": ("…or type the digit (leave empty for the one above)", "digit 7"),
}
_DONE = object()


@dataclass
class ExploreTab:
    run_btn: gr.Button
    stop_btn: gr.Button
    viewer: Viewer
    run_event: Any


def build(ctx: AppContext) -> ExploreTab:
    from backends import image
    from engine.run import ConfigError, RunConfig, execute  # noqa: F401 - fail at build time if missing
    from strategies.core import AGGREGATIONS
    from strategies.registry import STRATEGIES

    fields = param_fields()
    budgets = budget_choices(ctx.limits.max_budget)
    default_budget = DEFAULT_BUDGET if DEFAULT_BUDGET in budgets else budgets[-1]

    gr.Markdown("Pick a strategy and a budget, then **Run**: the embedded tiny model solves an arithmetic "
                "chain while the verifier guides the search (or, in the image domain, a tiny diffusion model "
                "draws a digit). Hover over a node to read its step and scores.")
    with gr.Row():
        domain = gr.Dropdown(domain_choices(), value=domain_choices()[0], label="Domain", elem_id="explore-domain",
                             scale=1, min_width=120)
        model = gr.Dropdown(model_choices("reasoning"), value="tiny-arith-s", label="Policy model",
                            allow_custom_value=True, elem_id="explore-model", scale=2)
        verifier = gr.Dropdown(verifier_choices("reasoning"), value="tiny-prm", label="Verifier",
                               allow_custom_value=True, elem_id="explore-verifier", scale=2)
        # custom values allowed so that the choices can follow the domain; the handler validates
        strategy = gr.Dropdown(strategy_choices("reasoning"), value=DEFAULT_STRATEGY, label="Strategy",
                               allow_custom_value=True, elem_id="explore-strategy", scale=2)
        budget = gr.Dropdown(budgets, value=default_budget, label="Budget (N)", allow_custom_value=True,
                             elem_id="explore-budget", scale=1, min_width=110,
                             info=f"at most {ctx.limits.max_budget} here")
    strategy_info = gr.Markdown(strategy_markdown(DEFAULT_STRATEGY), elem_id="explore-strategy-info")
    param_boxes: list[gr.Component] = []
    groups: dict[str, gr.Row] = {}
    with gr.Accordion("Strategy parameters", open=True):
        for name in STRATEGIES:
            mine = [f for f in fields if f.strategy == name]
            with gr.Row(visible=name == DEFAULT_STRATEGY) as row:
                if not mine:
                    gr.Markdown("This strategy has no parameters besides the budget.")
                for f in mine:
                    param_boxes.append(f.component(elem_id=f"param-{name}-{f.spec.name}"))
            groups[name] = row
    with gr.Row():
        difficulty = gr.Radio([1, 2, 3, 4, 5], value=DEFAULT_DIFFICULTY, label="Random problem of difficulty",
                              elem_id="explore-difficulty", scale=2)
        digit = gr.Radio(list(range(10)), value=DEFAULT_DIGIT, label="Digit to draw", elem_id="explore-digit",
                         scale=2, visible=False)
        problem = gr.Textbox(label=PROBLEM_BOX["reasoning"][0], lines=1,
                             max_length=PROBLEM_TEXT_MAX, elem_id="explore-problem", scale=4,
                             placeholder=PROBLEM_BOX["reasoning"][1])
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            seed = gr.Number(0, precision=0, label="Seed", elem_id="explore-seed")
            aggregation = gr.Dropdown(list(AGGREGATIONS), value="last", label="PRM score aggregation",
                                      info="how per-step scores become one score", elem_id="explore-aggregation")
            temperature = gr.Slider(0.0, 2.0, value=0.8, step=0.05, label="Sampling temperature",
                                    elem_id="explore-temperature")
        # the image domain's sampler (RunConfig.options); the engine validates the values
        with gr.Row(visible=False) as sampler_row:
            steps = gr.Number(image.DEFAULTS["steps"], precision=0, label="Denoising steps",
                              info="[1–200] per trajectory", elem_id="explore-steps")
            eta = gr.Slider(0.0, 1.0, value=image.DEFAULTS["eta"], step=0.05, label="eta (DDIM noise)",
                            info="0 = deterministic; particle and path methods need > 0", elem_id="explore-eta")
            guidance = gr.Slider(0.0, 20.0, value=image.DEFAULTS["guidance"], step=0.5,
                                 label="Classifier-free guidance", info="1 = off (1 NFE per step, 2 otherwise)",
                                 elem_id="explore-guidance")
            scheduler = gr.Dropdown(list(image.SCHEDULERS), value=image.DEFAULTS["scheduler"], label="Scheduler",
                                    elem_id="explore-scheduler")
    sampler = [steps, eta, guidance, scheduler]
    with gr.Row():
        run_btn = gr.Button("Run", variant="primary", elem_id="run-btn", scale=3)
        stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn", scale=1)
    viewer = build_viewer("explore")

    def on_strategy(name: str):
        name = name if name in STRATEGIES else DEFAULT_STRATEGY
        info = STRATEGIES[name]
        return (strategy_markdown(name), *[gr.update(visible=s == name) for s in groups],
                gr.update(interactive=info.uses_verifier))

    strategy.change(on_strategy, [strategy], [strategy_info, *groups.values(), verifier],
                    api_visibility="private", show_progress="hidden", queue=False)

    def on_domain(d: str):
        d = d if d in domain_choices() else domain_choices()[0]
        strategies = strategy_choices(d)
        models, verifiers = model_choices(d), verifier_choices(d)
        first = lambda cs: cs[0][1] if cs else None  # noqa: E731
        keep = DEFAULT_STRATEGY if any(v == DEFAULT_STRATEGY for _, v in strategies) else first(strategies)
        img = d == "image"
        return (gr.update(choices=strategies, value=keep), gr.update(choices=models, value=first(models)),
                gr.update(choices=verifiers, value=first(verifiers)), gr.update(visible=not img),
                gr.update(visible=img), gr.update(label=PROBLEM_BOX.get(d, PROBLEM_BOX["reasoning"])[0],
                          placeholder=PROBLEM_BOX.get(d, PROBLEM_BOX["reasoning"])[1]),
                gr.update(visible=not img), gr.update(visible=not img), gr.update(visible=img))

    domain.change(on_domain, [domain], [strategy, model, verifier, difficulty, digit, problem, aggregation,
                                        temperature, sampler_row], api_visibility="private", show_progress="hidden")

    # gr.Request first: gradio injects it only into positional parameters, and the strategy parameters
    # arrive as *param_values
    # parameter names are the API's names (they shadow the widgets only inside this function)
    def run(request: gr.Request, domain, model, verifier, strategy, budget, difficulty, problem,
            seed, aggregation, temperature, digit, steps, eta, guidance, scheduler,
            *strategy_params) -> Iterator[tuple]:
        config = make_config(ctx, fields, domain, model, verifier, strategy, budget, difficulty,
                             problem, seed, aggregation, temperature, strategy_params, digit_v=digit,
                             sampler_values=(steps, eta, guidance, scheduler))
        yield from stream_run(ctx, config, session_key(request, "run"), viewer)

    run_event = run_btn.click(
        run, [domain, model, verifier, strategy, budget, difficulty, problem, seed, aggregation, temperature,
              digit, *sampler, *param_boxes],
        viewer.load_outputs, api_name="run", concurrency_limit=ctx.run_concurrency, concurrency_id="run",
        show_progress="minimal", show_progress_on=[viewer.status])

    def stop(request: gr.Request) -> None:
        if not ctx.cancel(session_key(request, "run")):
            gr.Info("Nothing is running in this session.")

    stop_btn.click(stop, None, None, api_name="stop", concurrency_limit=None, concurrency_id="stop",
                   show_progress="hidden")
    return ExploreTab(run_btn, stop_btn, viewer, run_event)


def make_config(ctx: AppContext, fields: list[ParamField], domain_v, model_v, verifier_v, strategy_v, budget_v,
                difficulty_v, problem_v, seed_v, aggregation_v, temperature_v, param_values, digit_v=None,
                sampler_values: tuple = ()):
    """A RunConfig from raw widget / API values; gr.Error with a clear message on anything bad.

    Image runs take the digit (problem ``test:<digit>``) unless a problem is typed, and the sampler
    options (steps, eta, guidance, scheduler; validated by the engine, which names a bad one)."""
    from engine.run import RunConfig
    from strategies.core import AGGREGATIONS
    from strategies.registry import STRATEGIES

    domain_v = parse_choice(domain_v, "domain", domain_choices())
    strategy_v = parse_choice(strategy_v, "strategy", list(STRATEGIES))
    info = STRATEGIES[strategy_v]
    budget_n = parse_int(budget_v, "budget", 1, ctx.limits.max_budget)
    difficulty_n = parse_int(difficulty_v if difficulty_v not in (None, "") else DEFAULT_DIFFICULTY,
                             "difficulty", 1, 5)
    seed_n = parse_int(seed_v if seed_v not in (None, "") else 0, "seed", 0, 2**31 - 1)
    aggregation_v = parse_choice(aggregation_v or "last", "aggregation", list(AGGREGATIONS))
    try:
        temp = float(temperature_v if temperature_v not in (None, "") else 0.8)
    except (TypeError, ValueError):
        raise gr.Error("temperature must be a number from 0 to 2", print_exception=False) from None
    if not 0.0 <= temp <= 2.0:
        raise gr.Error("temperature must be a number from 0 to 2", print_exception=False)
    for name, value in (("model", model_v), ("verifier", verifier_v)):
        if value is not None and (not isinstance(value, str) or len(value) > 300):
            raise gr.Error(f"{name} must be a model id", print_exception=False)
    text = problem_v if isinstance(problem_v, str) else ""
    if len(text) > PROBLEM_TEXT_MAX:
        raise gr.Error(f"the problem text is too long ({PROBLEM_TEXT_MAX} characters at most)",
                       print_exception=False)
    params: dict[str, Any] = {}
    for f, value in zip(fields, param_values):
        if f.strategy == strategy_v and value is not None:
            params[f.spec.name] = f.coerce(value)
    if domain_v == "image":
        digit_n = parse_int(digit_v if digit_v not in (None, "") else DEFAULT_DIGIT, "digit", 0, 9)
        options = {name: (value[:40] if isinstance(value, str) else value)
                   for name, value in zip(SAMPLER_OPTIONS, sampler_values) if value not in (None, "")}
        return RunConfig(domain=domain_v, model=(model_v or "tiny-digits").strip(),
                         verifier=(verifier_v or "").strip() or None if info.uses_verifier else None,
                         strategy=strategy_v, budget=budget_n, params=params, problem_text=text.strip() or None,
                         problem_id=None if text.strip() else f"test:{digit_n}", seed=seed_n, options=options)
    return RunConfig(domain=domain_v, model=(model_v or "tiny-arith-s").strip(),
                     verifier=(verifier_v or "").strip() or None if info.uses_verifier else None,
                     strategy=strategy_v, budget=budget_n, params=params,
                     problem_text=text.strip() or None, difficulty=None if text.strip() else difficulty_n,
                     seed=seed_n, aggregation=aggregation_v, temperature=temp)


def stream_run(ctx: AppContext, config, key: str, viewer: Viewer) -> Iterator[tuple]:
    """Run ``config`` in a worker thread and yield viewer outputs as events arrive (throttled)."""
    from engine.run import ConfigError, execute
    from strategies.core import CancelToken

    with ctx.lock:
        if key in ctx.cancels:
            raise gr.Error("A run is already going in this session: stop it or wait for it to end.",
                           print_exception=False)
    token = CancelToken()
    ctx.register_cancel(key, token)
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

    worker = threading.Thread(target=work, name=f"run-{key[-8:]}", daemon=True)
    worker.start()
    skip = gr.skip()
    st = views.ViewState(strategy=config.strategy, status="starting", domain=config.domain)
    is_image = st.is_image
    events: list[dict] = []
    finished = False
    try:
        # What the acknowledgement clears: the other domain's widgets hidden, this domain's emptied. The
        # tree is left alone until it has a node (an empty figure would cost a plot render right before
        # the first real one).
        hidden = gr.update(visible=False)
        reset = (None, None, hidden, gr.update(value=[], visible=not is_image), views.compute_meter_html({}),
                 gr.update(value=[], visible=is_image), hidden, hidden)
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
                    refused = views.empty_figure("The run was refused: see the message.")
                    yield load_values(with_reset((views.status_html(st), refused, *(skip,) * 6)), skip, skip)
                    raise gr.Error(item[1], print_exception=False)
                events.append(item)
                views.fold([item], state=st)
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
                yield load_values(with_reset((views.status_html(st), *(skip,) * 7)), skip, skip)
                acked, last_sent = True, time.monotonic()
                continue
            if finished or (dirty and (first_nodes or now - last_sent >= interval)):
                fin = [n for n in st.nodes.values() if n.finished]
                n_fin = len(fin) + (0 if st.candidates is None else 10**6)
                particles = particles_update(st) if changed("particles", len(st.particle_steps)) else skip
                if is_image:
                    cands = skip
                    gallery = gallery_update(st) if changed("gallery", (
                        n_fin, sum(n.score is not None for n in fin), len(st.judged), st.selected)) else skip
                    strips = strips_update(st) if changed("strips", (len(st.nodes), len(st.score_trace))) else skip
                    nfe = nfe_update(st) if changed("nfe", len(st.score_trace)) else skip
                else:
                    cands = candidates_update(st) if changed("candidates", n_fin) else skip
                    gallery = strips = nfe = skip
                values = (views.status_html(st), views.tree_figure(st), particles, cands,
                          views.compute_meter_html(st.totals), gallery, strips, nfe)
                if not acked:
                    values, acked = with_reset(values), True
                if finished:
                    n = views.step_count(events)
                    yield load_values(values, gr.update(minimum=0, maximum=max(n, 1), value=max(n, 1)), events)
                else:
                    yield load_values(values, skip, skip)
                last_sent, dirty, shown_nodes = time.monotonic(), False, shown_nodes or bool(st.nodes)
    finally:
        # A closed tab or a cancelled job ends here too: stop the worker at its next step.
        if not finished:
            token.cancel()
        ctx.release_cancel(key, token)
