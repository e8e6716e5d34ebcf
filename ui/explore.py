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
import time
from dataclasses import dataclass
from typing import Any, Iterator

import gradio as gr

from backends.domains import IMAGE_DOMAINS
from ui.figures.style import empty_figure, plot_payload
from ui.figures.tables import compute_meter_html, status_html
from ui.figures.tree import tree_figure, tree_signature
from ui.fold import ViewState, fold, step_count
from ui import download as download_ui
from ui.common import (AppContext, Viewer, build_viewer, candidates_update, gallery_update, load_values,
                       nfe_update, traces_update, critiques_update, parse_choice, parse_int, particles_update, session_key, start_worker, strips_update)
from ui.registry import (PROBLEM_TEXT_MAX, ParamField, budget_choices, default_model, default_verifier,
                         domain_choices, model_choices, param_fields, sampler_spec, strategy_choices, strategy_markdown,
                         t2i_prompt_choices, verifier_choices)

log = logging.getLogger(__name__)

MAX_UPDATES_PER_S = 3.0
ACK_GRACE_S = 0.15  # a cached model's first node comes within milliseconds; a first load takes seconds
DEFAULT_STRATEGY = "beam_search"
DEFAULT_BUDGET = 16
DEFAULT_DIFFICULTY = 3
DEFAULT_DIGIT = 3
DEFAULT_PROMPT = "test:0"
ANSWER_MAX = 200
# the image domains' sampler options Explore offers, in widget order; a domain gets those its backend knows
SAMPLER_OPTIONS = ("steps", "eta", "guidance", "scheduler", "diffusion", "interpolant")
PROBLEM_BOX = {  # label and placeholder of the typed-problem box, per domain
    "reasoning": ("…or type a problem (leave empty for a random one)",
                  "Start with 37. Add 48. Multiply by 6. Subtract 125."),
    "image": ("…or type the digit (leave empty for the one above)", "digit 7"),
    "t2i": ("…or type a prompt (leave empty for the one above)", "a red cube on top of a blue sphere"),
}
_DONE = object()


@dataclass
class ExploreTab:
    run_btn: gr.Button
    stop_btn: gr.Button
    viewer: Viewer
    run_event: Any


def build(ctx: AppContext) -> ExploreTab:
    from backends.image import flow
    from engine.run import ConfigError, RunConfig, execute  # noqa: F401 - fail at build time if missing
    from strategies.core import AGGREGATIONS
    from strategies.registry import STRATEGIES

    fields = param_fields()
    budgets = budget_choices(ctx.limits.max_budget)
    default_budget = DEFAULT_BUDGET if DEFAULT_BUDGET in budgets else budgets[-1]

    gr.Markdown("Pick a strategy and a budget, then **Run**: the embedded tiny model solves an arithmetic "
                "chain while the verifier guides the search (or, in the image domain, a tiny diffusion model "
                "draws a digit; in t2i, a text-to-image pipeline draws a prompt). Hover over a node to read its "
                "step and scores.")
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
    download_ui.build(ctx, domain, model, verifier)
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
        prompt_id = gr.Dropdown(t2i_prompt_choices(), value=DEFAULT_PROMPT, label="Prompt (bundled set)",
                                elem_id="explore-prompt-id", scale=3, visible=False)
        problem = gr.Textbox(label=PROBLEM_BOX["reasoning"][0], lines=1,
                             max_length=PROBLEM_TEXT_MAX, elem_id="explore-problem", scale=4,
                             placeholder=PROBLEM_BOX["reasoning"][1])
        answer = gr.Textbox("", label="Expected answer (a typed question to your own model; empty: not graded)",
                            lines=1, max_length=ANSWER_MAX, elem_id="explore-answer", scale=2)
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            seed = gr.Number(0, precision=0, label="Seed", elem_id="explore-seed")
            aggregation = gr.Dropdown(list(AGGREGATIONS), value="last", label="PRM score aggregation",
                                      info="how per-step scores become one score", elem_id="explore-aggregation")
            temperature = gr.Slider(0.0, 2.0, value=0.8, step=0.05, label="Sampling temperature",
                                    elem_id="explore-temperature")
        # the image domains' sampler (RunConfig.options), set to the image domain's defaults here and to the
        # chosen domain's on a switch (domain_updates); the engine validates the values
        spec = sampler_spec("image")
        with gr.Row(visible=False) as sampler_row:
            steps = gr.Number(spec.defaults["steps"], precision=0, label="Denoising steps",
                              info="[1–200] per trajectory", elem_id="explore-steps")
            eta = gr.Slider(0.0, 1.0, value=spec.defaults["eta"], step=0.05, label="eta (DDIM noise)",
                            info="0 = deterministic (zero-order needs it); particle and path methods need > 0",
                            elem_id="explore-eta")
            guidance = gr.Number(spec.defaults["guidance"], label="Classifier-free guidance", info=spec.guidance_info,
                                 elem_id="explore-guidance")
            scheduler = gr.Dropdown(list(spec.schedulers), value=spec.defaults["scheduler"], label="Scheduler",
                                    info=spec.scheduler_info, elem_id="explore-scheduler")
            diffusion = gr.Number(spec.defaults["diffusion"], label="Diffusion (flow_sde)",
                                  info="noise scale of the flow SDE: g = diffusion × s²", elem_id="explore-diffusion")
            interpolant = gr.Dropdown(list(flow.INTERPOLANTS), value=spec.defaults["interpolant"],
                                      label="Interpolant (flow samplers)", elem_id="explore-interpolant")
        # the reasoning domain's backend options (backends.text.reasoning.TextOptions); only a changed one is sent
        with gr.Row() as text_row:
            kv_reuse = gr.Dropdown(list(TEXT_OPTIONS["kv_reuse"]), value="on", label="KV reuse across steps",
                                   info="continue each step from its parent's cache (same answers)",
                                   elem_id="explore-kv-reuse")
            drafting = gr.Dropdown(list(TEXT_OPTIONS["drafting"]), value="off", label="Drafting (speculative sampling)",
                                   info="ngram: model-free drafts from the problem, siblings and earlier steps "
                                        "(same distribution)", elem_id="explore-drafting")
    sampler = [steps, eta, guidance, scheduler, diffusion, interpolant]
    with gr.Row():
        run_btn = gr.Button("Run", variant="primary", elem_id="run-btn", scale=3)
        stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn", scale=1)
    viewer = build_viewer("explore", flops_per_byte=ctx.limits.flops_per_byte)

    def on_strategy(name: str, d: str, sched: str | None):
        name = name if name in STRATEGIES else DEFAULT_STRATEGY
        info = STRATEGIES[name]
        return (strategy_markdown(name), *[gr.update(visible=s == name) for s in groups],
                gr.update(interactive=info.uses_verifier), *sampler_update(name, d, sched))

    strategy.change(on_strategy, [strategy, domain, scheduler],
                    [strategy_info, *groups.values(), verifier, scheduler, eta],
                    api_visibility="private", show_progress="hidden", queue=False)

    switched = {"strategy": strategy, "model": model, "verifier": verifier, "difficulty": difficulty, "digit": digit,
                "prompt_id": prompt_id, "problem": problem, "answer": answer, "aggregation": aggregation,
                "temperature": temperature,
                "sampler_row": sampler_row, "text_row": text_row, **dict(zip(SAMPLER_OPTIONS, sampler))}

    def on_domain(d: str) -> dict:
        updates = domain_updates(d)
        return {component: updates[name] for name, component in switched.items()}

    domain.change(on_domain, [domain], list(switched.values()), api_visibility="private", show_progress="hidden")

    # gr.Request first: gradio injects it only into positional parameters, and the strategy parameters
    # arrive as *param_values
    # parameter names are the API's names (they shadow the widgets only inside this function)
    def run(request: gr.Request, domain, model, verifier, strategy, budget, difficulty, problem,
            seed, aggregation, temperature, digit, prompt_id, steps, eta, guidance, scheduler, diffusion,
            interpolant, answer, kv_reuse, drafting, *strategy_params) -> Iterator[tuple]:
        config = make_config(ctx, fields, domain, model, verifier, strategy, budget, difficulty,
                             problem, seed, aggregation, temperature, strategy_params, digit_v=digit,
                             prompt_id_v=prompt_id,
                             sampler_values=(steps, eta, guidance, scheduler, diffusion, interpolant), answer_v=answer,
                             text_values=(kv_reuse, drafting))
        yield from stream_run(ctx, config, session_key(request, "run"), viewer)

    run_event = run_btn.click(
        run, [domain, model, verifier, strategy, budget, difficulty, problem, seed, aggregation, temperature,
              digit, prompt_id, *sampler, answer, kv_reuse, drafting, *param_boxes],
        viewer.load_outputs, api_name="run", concurrency_limit=ctx.run_concurrency, concurrency_id="run",
        show_progress="minimal", show_progress_on=[viewer.status])

    def stop(request: gr.Request) -> None:
        if not ctx.cancel(session_key(request, "run")):
            gr.Info("Nothing is running in this session.")

    stop_btn.click(stop, None, None, api_name="stop", concurrency_limit=None, concurrency_id="stop",
                   show_progress="hidden")
    return ExploreTab(run_btn, stop_btn, viewer, run_event)


def domain_updates(domain: str) -> dict[str, Any]:
    """Widget updates for a switch to ``domain``, by widget name: its strategies, models and verifiers (the
    first strategy, but beam search kept where the domain has it; the first model and the first verifier that
    are available here); its problem inputs (difficulty, digit or bundled prompt, and the typed-problem box's
    wording); for the image domains the sampler options their backend knows, at its defaults (the others
    hidden); for reasoning the aggregation and temperature."""
    d = domain if domain in domain_choices() else domain_choices()[0]
    strategies = strategy_choices(d)
    models, verifiers = model_choices(d), verifier_choices(d)
    first = lambda cs: cs[0][1] if cs else None  # noqa: E731
    keep = DEFAULT_STRATEGY if any(v == DEFAULT_STRATEGY for _, v in strategies) else first(strategies)
    img = d in IMAGE_DOMAINS
    label, placeholder = PROBLEM_BOX.get(d, PROBLEM_BOX["reasoning"])
    out = {"strategy": gr.update(choices=strategies, value=keep),
           "model": gr.update(choices=models, value=default_model(d)),
           "verifier": gr.update(choices=verifiers, value=default_verifier(d)),
           "difficulty": gr.update(visible=not img), "digit": gr.update(visible=d == "image"),
           "prompt_id": gr.update(visible=d == "t2i"), "problem": gr.update(label=label, placeholder=placeholder),
           "answer": gr.update(visible=not img),
           "aggregation": gr.update(visible=not img), "temperature": gr.update(visible=not img),
           "sampler_row": gr.update(visible=img), "text_row": gr.update(visible=not img)}
    if not img:  # the sampler row is hidden: its widgets keep what they show
        return {**out, **{name: gr.update() for name in SAMPLER_OPTIONS}}
    spec = sampler_spec(d)
    for name in SAMPLER_OPTIONS:
        out[name] = gr.update(value=spec.defaults[name], visible=True) if name in spec.defaults \
            else gr.update(visible=False)
    out["guidance"] = gr.update(**out["guidance"], info=spec.guidance_info)
    out["scheduler"] = gr.update(**out["scheduler"], choices=list(spec.schedulers), info=spec.scheduler_info)
    return out


def sampler_update(strategy: str, domain: str, scheduler: str | None) -> tuple[dict, dict]:
    """The (scheduler, eta) updates when a strategy is chosen, so that the run is not refused for its sampler.

    The image domain's flow-only strategies (rollover budget forcing) run on a flow sampler: a DDIM or DDPM choice
    switches to flow_sde, the sampler the CLI gives them by default. Its deterministic-only strategies (zero-order
    search) run on a deterministic sampler: DDIM or DDPM becomes DDIM with eta 0 (the CLI's default for them),
    flow_sde becomes flow_ode; on t2i, eta goes to 0 and DDPM or flow_sde to auto (DDIM for the UNet families,
    euler, the flow ODE, for the flow ones). Any other choice is left alone."""
    if domain not in ("image", "t2i"):
        return gr.update(), gr.update()
    from backends.image.diffusion import DETERMINISTIC_STRATEGIES, FLOW_ONLY_STRATEGIES, FLOW_SCHEDULERS

    if domain == "t2i":  # "auto" is ddim for the UNet families and euler (the flow ODE) for the flow ones
        if strategy not in DETERMINISTIC_STRATEGIES:
            return gr.update(), gr.update()
        return (gr.update(value="auto") if scheduler in ("ddpm", "flow_sde") else gr.update()), gr.update(value=0.0)
    if strategy in FLOW_ONLY_STRATEGIES and scheduler not in FLOW_SCHEDULERS:
        return gr.update(value="flow_sde"), gr.update()
    if strategy in DETERMINISTIC_STRATEGIES:
        if scheduler in FLOW_SCHEDULERS:
            return (gr.update(value="flow_ode") if scheduler != "flow_ode" else gr.update()), gr.update()
        return (gr.update(value="ddim") if scheduler != "ddim" else gr.update()), gr.update(value=0.0)
    return gr.update(), gr.update()


def _check_problem(domain: str, text: str | None, problem_id: str | None) -> None:
    """The image domains' own problem check (``resolve_problem``: a digit, a prompt's length, an id's form) as a
    gr.Error before anything starts."""
    from backends.image import digits, t2i
    from backends.errors import InputError

    try:
        {"image": digits, "t2i": t2i}[domain].resolve_problem(text, problem_id)
    except InputError as exc:
        raise gr.Error(str(exc), print_exception=False) from None


# the reasoning domain's option widgets: name -> choices, the default first
TEXT_OPTIONS = {"kv_reuse": ("on", "off"), "drafting": ("off", "ngram")}


def make_config(ctx: AppContext, fields: list[ParamField], domain_v, model_v, verifier_v, strategy_v, budget_v,
                difficulty_v, problem_v, seed_v, aggregation_v, temperature_v, param_values, digit_v=None,
                sampler_values: tuple = (), prompt_id_v=None, answer_v=None, text_values: tuple = ()):
    """A RunConfig from raw widget / API values; gr.Error with a clear message on anything bad.

    Reasoning runs take the difficulty unless a problem is typed, and the aggregation and temperature. The
    image domains take the sampler options their backend knows (``SAMPLER_OPTIONS`` order; the scheduler
    checked against the offered choices, the numbers by the engine, which names a bad one); reasoning runs the
    KV-reuse and drafting choices (``TEXT_OPTIONS`` order; only those that differ from the default travel), and
    as the problem
    the typed text, else the digit (image: problem ``test:<digit>``) or the bundled prompt (t2i: ``test:<i>``).
    An empty model or verifier is the domain's first. ``answer_v`` is the expected answer of a typed question
    to a policy of one's own (reasoning only; empty: the run is not graded)."""
    from engine.run import RunConfig
    from strategies.core import AGGREGATIONS
    from strategies.registry import STRATEGIES

    domain_v = parse_choice(domain_v, "domain", domain_choices())
    strategy_v = parse_choice(strategy_v, "strategy", list(STRATEGIES))
    info = STRATEGIES[strategy_v]
    budget_n = parse_int(budget_v, "budget", 1, ctx.limits.max_budget * info.budget_scale)
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
    text = problem_v.strip() if isinstance(problem_v, str) else ""
    if len(text) > PROBLEM_TEXT_MAX:
        raise gr.Error(f"the problem text is too long ({PROBLEM_TEXT_MAX} characters at most)",
                       print_exception=False)
    expected = answer_v.strip() if isinstance(answer_v, str) else ""
    if len(expected) > ANSWER_MAX:
        raise gr.Error(f"the expected answer is too long ({ANSWER_MAX} characters at most)", print_exception=False)
    params: dict[str, Any] = {}
    for f, value in zip(fields, param_values):
        if f.strategy == strategy_v and value is not None:
            params[f.spec.name] = f.coerce(value)
    model = (model_v or "").strip() or default_model(domain_v)
    verifier = ((verifier_v or "").strip() or None) if info.uses_verifier else None
    common = dict(domain=domain_v, model=model, verifier=verifier, strategy=strategy_v, budget=budget_n,
                  params=params, problem_text=text or None, seed=seed_n)
    if domain_v not in IMAGE_DOMAINS:
        options = {}
        for (name, choices), value in zip(TEXT_OPTIONS.items(), text_values):
            if value not in (None, "") and parse_choice(value, name, list(choices)) != choices[0]:
                options[name] = value
        return RunConfig(**common, difficulty=None if text else difficulty_n, aggregation=aggregation_v,
                         temperature=temp, answer=expected or None, options=options)
    if text:
        problem_id = None
    elif domain_v == "t2i":
        problem_id = str(prompt_id_v).strip()[:40] if prompt_id_v not in (None, "") else DEFAULT_PROMPT
    else:
        problem_id = f"test:{parse_int(digit_v if digit_v not in (None, '') else DEFAULT_DIGIT, 'digit', 0, 9)}"
    _check_problem(domain_v, text or None, problem_id)
    spec = sampler_spec(domain_v)
    options = {name: (value[:40] if isinstance(value, str) else value)
               for name, value in zip(SAMPLER_OPTIONS, sampler_values)
               if name in spec.defaults and value not in (None, "")}
    if "scheduler" in options:
        parse_choice(options["scheduler"], "scheduler", spec.schedulers)
    return RunConfig(**common, problem_id=problem_id, options=options)


def stream_run(ctx: AppContext, config, key: str, viewer: Viewer) -> Iterator[tuple]:
    """Run ``config`` in a worker thread and yield viewer outputs as events arrive (throttled)."""
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
                    yield load_values(with_reset((status_html(st), refused, *(skip,) * 8)), skip, skip)
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
                yield load_values(with_reset((status_html(st), *(skip,) * 9)), skip, skip)
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
                # live frames: the tree only when it changed, with brief hovers, in compact JSON (plot_payload);
                # the last frame (and every replay) sends the whole figure
                tree = (skip if not changed("tree", tree_signature(st)) else
                        tree_figure(st) if finished else plot_payload(tree_figure(st, brief=True)))
                values = (status_html(st), tree, particles, cands,
                          compute_meter_html(st.totals, ctx.limits.flops_per_byte), gallery, strips, nfe, traces,
                          crits)
                if not acked:
                    values, acked = with_reset(values), True
                if finished:
                    n = step_count(events)
                    yield load_values(values, gr.update(minimum=0, maximum=max(n, 1), value=max(n, 1)), events)
                else:
                    yield load_values(values, skip, skip)
                last_sent, dirty, shown_nodes = time.monotonic(), False, shown_nodes or bool(st.nodes)
    finally:
        # A closed tab or a cancelled job ends here too: stop the worker at its next step.
        if not finished:
            token.cancel()
        ctx.release_cancel(key, token)
