"""Explore: choose a strategy and its budget, press Run, watch the search live (``ui.live_run`` streams it); Stop
keeps what was done. A problem can be pinned, and "Run on this problem with..." runs several strategies on it one
after the other and opens them in Compare.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator

import gradio as gr

from backends.domains import IMAGE_DOMAINS
from ui.figures.tables import PROBLEM_ID_RE, problem_id
from ui.fold import fold
from ui.live_figure import channel
from ui.live_run import refused_values, stream_run
from ui import download as download_ui
from ui.compare import MAX_RUNS as SAME_PROBLEM_MAX  # the runs Compare shows side by side
from ui.common import N_BASE_VIEWS, AppContext, Viewer, build_viewer, parse_choice, parse_int, session_key
from ui.registry import (PROBLEM_TEXT_MAX, ParamField, budget_widget, default_model, default_verifier,
                         domain_choices, missing_note, model_choices, no_policy_here, param_fields, sampler_spec,
                         strategy_choices, strategy_markdown, t2i_prompt_choices, verifier_choices)

log = logging.getLogger(__name__)

DEFAULT_STRATEGY = "beam_search"
DEFAULT_BUDGET = 16
DEFAULT_DIFFICULTY = 3
DEFAULT_DIGIT = 3
DEFAULT_PROMPT = "test:0"
ANSWER_MAX = 200
# the image domains' sampler options Explore offers, in widget order; a domain gets those its backend knows
SAMPLER_OPTIONS = ("steps", "eta", "guidance", "scheduler", "diffusion", "interpolant")
PROBLEM_BOX = {  # label and placeholder of the typed-problem box, per domain (the image one names the chosen digit)
    "reasoning": ("…or type a problem (leave empty for a random one)",
                  "Start with 37. Add 48. Multiply by 6. Subtract 125."),
    "image": ("…or type the digit (leave empty for the one above)", "digit {digit}"),
    "t2i": ("…or type a prompt (leave empty for the one above)", "a red cube on top of a blue sphere"),
}
INTRO = {  # what each domain's search is, above its widgets
    "reasoning": "Pick a strategy and a budget, then **Run**: the embedded tiny model solves an arithmetic chain "
                 "(*Start with 37. Add 48. Multiply by 6.*) one line per step, while the verifier, a process reward "
                 "model, scores each partial solution and guides the search. Hover over a node to read its step "
                 "and scores.",
    "image": "Pick a strategy and a budget, then **Run**: a tiny diffusion model draws the digit you choose (16x16 "
             "pixels), one denoising step per column of the tree. The search verifier scores each step's predicted "
             "clean image (x0-hat): a digit classifier, or an attribute reward (thickness, centring) that ignores "
             "the digit and can be hacked. A held-out judge the search never sees grades the final images. The "
             "gallery shows the candidates, the strips each lineage's x_t | x0-hat.",
    "t2i": "Pick a strategy and a budget, then **Run**: a text-to-image pipeline (Stable Diffusion, SDXL, SD3, FLUX) "
           "draws the prompt you choose while a verifier (CLIP score, an aesthetic or reward model) scores each "
           "image against it. These are Hugging Face models: none is embedded, so they run where they are cached.",
}
PINNED_MAX = 40
SAME_PROBLEM_DEFAULT = ("beam_search", "particle_filtering")


@dataclass
class ExploreTab:
    run_btn: gr.Button
    stop_btn: gr.Button
    viewer: Viewer
    run_event: Any
    same_event: Any     # "Run on this problem with…": ends with the run ids in same_ids
    same_ids: gr.State


def build(ctx: AppContext) -> ExploreTab:
    from backends.image import flow
    from engine.run import ConfigError, RunConfig, execute  # noqa: F401 - fail at build time if missing
    from strategies.core import AGGREGATIONS
    from strategies.registry import STRATEGIES

    fields = param_fields()
    start = budget_widget(DEFAULT_STRATEGY, ctx.limits.max_budget)
    budgets = start.choices
    default_budget = DEFAULT_BUDGET if DEFAULT_BUDGET in budgets else budgets[-1]

    intro = gr.Markdown(domain_intro("reasoning"), elem_id="explore-intro")
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
        budget = gr.Dropdown(budgets, value=default_budget, label=start.label, allow_custom_value=True,
                             elem_id="explore-budget", scale=1, min_width=110, info=start.info)
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
    # the same problem for several strategies: pinned by id (a random one has none: pinning types its text)
    with gr.Row(equal_height=False) as pin_row:
        with gr.Column(scale=2, min_width=220):
            pinned = gr.Textbox("", label="Pinned problem id (every Run uses it; empty: as above)",
                                placeholder="test:17", max_lines=1, max_length=PINNED_MAX, elem_id="explore-pin")
            pin_btn = gr.Button("Pin the last run's problem", elem_id="explore-pin-btn", size="sm")
        with gr.Column(scale=5):
            same = gr.CheckboxGroup([c for c in strategy_choices("reasoning") if c[1] in STRATEGIES],
                                    value=list(SAME_PROBLEM_DEFAULT), label="Run on this problem with… (2 to 4 "
                                    "strategies at the budget above, their parameters at the defaults)",
                                    elem_id="explore-same")
            same_btn = gr.Button("Run them on this problem, then compare", elem_id="explore-same-run", size="sm")
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
    live_tree = channel("explore-tree", "explore-tree-live")  # the live tree's diffs after its first frame

    def on_strategy(name: str, d: str, sched: str | None, current: Any):
        name = name if name in STRATEGIES else DEFAULT_STRATEGY
        info = STRATEGIES[name]
        w = budget_widget(name, ctx.limits.max_budget)
        try:  # a budget that fits the new strategy's cap stays; typed nonsense is the run handler's to refuse
            keep = 1 <= int(current) <= w.cap
        except (TypeError, ValueError):
            keep = True
        fallback = DEFAULT_BUDGET if DEFAULT_BUDGET in w.choices else w.choices[-1]
        return (strategy_markdown(name), *[gr.update(visible=s == name) for s in groups],
                gr.update(interactive=info.uses_verifier), *sampler_update(name, d, sched),
                gr.update(choices=w.choices, label=w.label, info=w.info, value=current if keep else fallback))

    strategy.change(on_strategy, [strategy, domain, scheduler, budget],
                    [strategy_info, *groups.values(), verifier, scheduler, eta, budget],
                    api_visibility="private", show_progress="hidden", queue=False)

    switched = {"intro": intro,
                "strategy": strategy, "model": model, "verifier": verifier, "difficulty": difficulty, "digit": digit,
                "prompt_id": prompt_id, "problem": problem, "answer": answer, "aggregation": aggregation,
                "temperature": temperature, "pin_row": pin_row,
                "sampler_row": sampler_row, "text_row": text_row, **dict(zip(SAMPLER_OPTIONS, sampler))}

    def on_domain(d: str, digit_v: Any) -> dict:
        updates = domain_updates(d, digit_v)
        return {component: updates[name] for name, component in switched.items()}

    domain.change(on_domain, [domain, digit], list(switched.values()), api_visibility="private",
                  show_progress="hidden")
    digit.change(lambda d: gr.update(placeholder=PROBLEM_BOX["image"][1].format(digit=d)), [digit], [problem],
                 api_visibility="private", show_progress="hidden", queue=False)

    # gr.Request first: gradio injects it only into positional parameters, and the strategy parameters
    # arrive as *param_values
    # parameter names are the API's names (they shadow the widgets only inside this function)
    def run(request: gr.Request, domain, model, verifier, strategy, budget, difficulty, problem,
            seed, aggregation, temperature, digit, prompt_id, steps, eta, guidance, scheduler, diffusion,
            interpolant, answer, kv_reuse, drafting, pinned, *strategy_params) -> Iterator[tuple]:
        try:
            config = make_config(ctx, fields, domain, model, verifier, strategy, budget, difficulty,
                                 problem, seed, aggregation, temperature, strategy_params, digit_v=digit,
                                 prompt_id_v=prompt_id,
                                 sampler_values=(steps, eta, guidance, scheduler, diffusion, interpolant),
                                 answer_v=answer, text_values=(kv_reuse, drafting), pinned_v=pinned)
        except gr.Error as exc:  # the reason stays in the status line; the toast repeats it
            yield (*refused_values(exc.message), gr.skip())
            raise
        yield from stream_run(ctx, config, session_key(request, "run"), viewer)

    inputs = [domain, model, verifier, strategy, budget, difficulty, problem, seed, aggregation, temperature,
              digit, prompt_id, *sampler, answer, kv_reuse, drafting, pinned]
    run_event = run_btn.click(
        run, inputs + param_boxes,
        viewer.load_outputs + [live_tree], api_name="run", concurrency_limit=ctx.run_concurrency,
        concurrency_id="run", show_progress="minimal", show_progress_on=[viewer.status])

    def pin(events: list[dict]):
        """The shown run's problem pinned: its id, else (a random or typed problem) its text typed in."""
        first = next((e for e in events or [] if e.get("type") == "RunStarted"), None)
        if first is None or fold([first]).is_image:
            raise gr.Error("Run (or open) a reasoning run first: its problem is the one pinned.", print_exception=False)
        st = fold([first])
        pid = problem_id(st)
        if pid:
            gr.Info(f"Pinned {pid}: every Run now solves it.")
            return pid, gr.update()
        gr.Info("This problem has no id (a random one): its text is typed in, so every Run solves it.")
        return "", str((st.problem or {}).get("text") or "")[:PROBLEM_TEXT_MAX]

    pin_btn.click(pin, [viewer.events], [pinned, problem], api_visibility="private", show_progress="hidden")

    def run_same(request: gr.Request, chosen, *values) -> Iterator[tuple]:
        """Each chosen strategy at the budget above on the pinned (or typed) problem, one after the other, each
        shown live as a Run is; the run ids go to ``same_ids`` (Compare opens them)."""
        ids: list[str] = []
        try:
            chosen = [parse_choice(c, "strategy", list(STRATEGIES)) for c in (chosen or [])]
            if not 2 <= len(chosen) <= SAME_PROBLEM_MAX:
                raise gr.Error(f"Choose 2 to {SAME_PROBLEM_MAX} strategies to run on the problem.",
                               print_exception=False)
            d, text, pinned_v = values[0], values[6], values[-1]
            if d in IMAGE_DOMAINS or not (str(pinned_v or "").strip() or str(text or "").strip()):
                raise gr.Error("Pin a problem first (the Pin button after a run, an id such as test:17, or a "
                               "typed problem).", print_exception=False)
            # each strategy with its own parameters at their defaults
            configs = [make_config(ctx, fields, *values[:3], name, *values[4:10], (), answer_v=values[-4],
                                   text_values=values[-3:-1], pinned_v=pinned_v) for name in chosen]
        except gr.Error as exc:
            yield (*refused_values(exc.message), gr.skip(), ids)
            raise
        for config in configs:
            ended = None
            for out in stream_run(ctx, config, session_key(request, "run"), viewer):
                events = out[N_BASE_VIEWS + 1]  # the last update of a run carries its events
                if isinstance(events, list) and events:
                    ids += [str(e["run_id"]) for e in events[:1] if e.get("run_id")]
                    ended = events[-1]
                yield (*out, gr.skip())
            if (ended or {}).get("status") != "finished":  # stopped (or failed): the rest is not run, nothing opens
                yield (*(gr.skip(),) * (len(viewer.load_outputs) + 1), [])
                return
        yield (*(gr.skip(),) * (len(viewer.load_outputs) + 1), ids)

    same_ids = gr.State([])
    same_event = same_btn.click(run_same, [same] + inputs, viewer.load_outputs + [live_tree, same_ids],
                                api_visibility="private", concurrency_limit=ctx.run_concurrency,
                                concurrency_id="run", show_progress="minimal", show_progress_on=[viewer.status])

    def stop(request: gr.Request) -> None:
        if not ctx.cancel(session_key(request, "run")):
            gr.Info("Nothing is running in this session.")

    stop_btn.click(stop, None, None, api_name="stop", concurrency_limit=None, concurrency_id="stop",
                   show_progress="hidden")
    return ExploreTab(run_btn, stop_btn, viewer, run_event, same_event, same_ids)


def domain_intro(domain: str) -> str:
    """The domain's own intro, then what it lacks here and how to get it (``missing_note``)."""
    missing = missing_note(domain)
    return INTRO.get(domain, INTRO["reasoning"]) + (f"\n\n{missing}" if missing else "")


def domain_updates(domain: str, digit: Any = DEFAULT_DIGIT) -> dict[str, Any]:
    """Widget updates for a switch to ``domain``, by widget name: its intro; its strategies, models and verifiers
    (the first strategy, but beam search kept where the domain has it; the first model and the first verifier
    that are available here, and no model at all where none is, the intro saying how to get one); its problem
    inputs (difficulty, digit or bundled prompt, and the typed-problem box's wording, the image one naming
    ``digit``); for the image domains the sampler options their backend knows, at its defaults (the others
    hidden); for reasoning the aggregation and temperature."""
    d = domain if domain in domain_choices() else domain_choices()[0]
    strategies = strategy_choices(d)
    models, verifiers = model_choices(d), verifier_choices(d)
    first = lambda cs: cs[0][1] if cs else None  # noqa: E731
    keep = DEFAULT_STRATEGY if any(v == DEFAULT_STRATEGY for _, v in strategies) else first(strategies)
    img = d in IMAGE_DOMAINS
    label, placeholder = PROBLEM_BOX.get(d, PROBLEM_BOX["reasoning"])
    placeholder = placeholder.format(digit=digit if digit not in (None, "") else DEFAULT_DIGIT)
    nothing = no_policy_here(d)
    out = {"intro": gr.update(value=domain_intro(d)), "strategy": gr.update(choices=strategies, value=keep),
           "model": gr.update(choices=models, value=None if nothing else default_model(d)),
           "verifier": gr.update(choices=verifiers, value=default_verifier(d)),
           "difficulty": gr.update(visible=not img), "digit": gr.update(visible=d == "image"),
           "prompt_id": gr.update(visible=d == "t2i"), "problem": gr.update(label=label, placeholder=placeholder),
           "answer": gr.update(visible=not img),
           "aggregation": gr.update(visible=not img), "temperature": gr.update(visible=not img),
           "sampler_row": gr.update(visible=img), "text_row": gr.update(visible=not img),
           "pin_row": gr.update(visible=not img)}
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
                sampler_values: tuple = (), prompt_id_v=None, answer_v=None, text_values: tuple = (), pinned_v=None):
    """A RunConfig from raw widget / API values; gr.Error with a clear message on anything bad.

    Reasoning runs take the difficulty unless a problem is typed, and the aggregation and temperature. The
    image domains take the sampler options their backend knows (``SAMPLER_OPTIONS`` order; the scheduler
    checked against the offered choices, the numbers by the engine, which names a bad one); reasoning runs the
    KV-reuse and drafting choices (``TEXT_OPTIONS`` order; only those that differ from the default travel), and
    as the problem
    the typed text, else the digit (image: problem ``test:<digit>``) or the bundled prompt (t2i: ``test:<i>``).
    An empty model or verifier is the domain's first. ``answer_v`` is the expected answer of a typed question
    to a policy of one's own (reasoning only; empty: the run is not graded). ``pinned_v`` is a pinned problem id
    (reasoning only, ``test:17``): it wins over the difficulty, a typed problem over it."""
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
    # no model chosen and none here: refused once the problem and options are checked (their messages come first)
    no_model = not (model_v or "").strip() and no_policy_here(domain_v)
    model = (model_v or "").strip() or default_model(domain_v)
    verifier = ((verifier_v or "").strip() or None) if info.uses_verifier else None
    common = dict(domain=domain_v, model=model, verifier=verifier, strategy=strategy_v, budget=budget_n,
                  params=params, problem_text=text or None, seed=seed_n)
    if domain_v not in IMAGE_DOMAINS:
        options = {}
        for (name, choices), value in zip(TEXT_OPTIONS.items(), text_values):
            if value not in (None, "") and parse_choice(value, name, list(choices)) != choices[0]:
                options[name] = value
        _refuse_without_model(no_model, domain_v)
        pin = pinned_v.strip() if isinstance(pinned_v, str) else ""
        if pin and not PROBLEM_ID_RE.match(pin):
            raise gr.Error(f"a pinned problem id looks like test:17, got {pin[:PINNED_MAX]!r}", print_exception=False)
        pin = "" if text else pin
        return RunConfig(**common, difficulty=None if text or pin else difficulty_n, aggregation=aggregation_v,
                         temperature=temp, answer=expected or None, options=options, problem_id=pin or None)
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
    _refuse_without_model(no_model, domain_v)
    return RunConfig(**common, problem_id=problem_id, options=options)


def _refuse_without_model(no_model: bool, domain: str) -> None:
    if no_model:
        raise gr.Error(f"No {domain} model is available here: download one (python app.py download ID, or pick one "
                       "and press Download), as the note at the top of Explore says.", print_exception=False)
