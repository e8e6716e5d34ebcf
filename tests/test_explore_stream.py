"""Explore's handlers called directly (no server): the streaming handler on the embedded models (what each
update carries), and the page's inputs turned into a run (``make_config``) and switched per domain
(``domain_updates``), which need no model.

The acknowledgement (status line, the previous run's views cleared) and the first tree go out as one
update when the first node comes within ``ACK_GRACE_S``; a slow start gets the acknowledgement alone.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import plotly.graph_objects as go
import pytest

from tests.conftest import embedded_models_ready

# positions in Viewer.load_outputs: status, tree, particles, candidates, meter, slider, events, gallery, ...
STATUS, TREE, PARTICLES, CANDIDATES, METER, SLIDER, EVENTS, GALLERY, STRIPS, NFE = range(10)
LIVE = -1  # Explore's run adds the live tree's diffs after the viewer's outputs


@pytest.fixture(scope="module")
def ctx():
    ok, why = embedded_models_ready()
    if not ok:
        pytest.skip(f"embedded models not available ({why}); python -m backends.embedded.train writes them")
    from backends.text.loaders import load_policy, load_verifier
    from engine.limits import Limits
    from storage import RunStore
    from ui.common import AppContext

    load_policy("tiny-arith-s")  # cached, as the app's warm-up leaves them
    load_verifier("tiny-prm")
    store = RunStore(Path(tempfile.mkdtemp()) / "runs.db")
    yield AppContext(store=store, limits=Limits(max_budget=64))
    store.close()


def stream(ctx):
    from engine.run import RunConfig
    from ui.live_run import stream_run

    config = RunConfig(strategy="beam_search", budget=16, difficulty=3, seed=0)
    return stream_run(ctx, config, "run:test", viewer=None)


def is_skip(value) -> bool:
    return value == {"__type__": "update"}


def tree_traces(value) -> list[dict]:
    """The traces a tree update draws: a live frame's compact payload (``plot_payload``) or a figure."""
    import json

    from gradio.components.plot import PlotData
    if isinstance(value, PlotData):
        return json.loads(value.plot)["data"]
    assert isinstance(value, go.Figure), value
    return json.loads(value.to_json())["data"]


def test_first_update_carries_the_tree_and_the_resets(ctx, monkeypatch):
    """The first update draws the run (status, tree, the emptied views as plain values) and holds no property
    update (each costs gradio a component rebuilt with its API schema); the next one shows and hides the views."""
    from ui import live_run

    monkeypatch.setattr(live_run, "ACK_GRACE_S", 60.0)  # however loaded the machine, the first node comes first
    outs = list(stream(ctx))
    first, second = outs[0], outs[1]
    assert len(tree_traces(first[TREE])) > 0, "first update without the tree"
    assert "run <code>" in first[STATUS]
    props = [v for v in first if isinstance(v, dict) and v.get("__type__") == "update"
             and set(v) - {"__type__", "value"}]
    assert props == [], f"the first update restyles views: {props}"
    # the acknowledgement's part: this domain's views emptied at once, the other domain's hidden next
    assert first[GALLERY] == [] and first[CANDIDATES] == []
    assert second[GALLERY] == {"__type__": "update", "visible": False}
    assert second[STRIPS]["visible"] is False and second[NFE]["visible"] is False
    assert second[PARTICLES]["visible"] is False
    assert second[CANDIDATES]["visible"] is True
    assert "finished" in outs[-1][STATUS] and not is_skip(outs[-1][EVENTS])
    assert ctx.cancels == {}  # the session's cancel flag is released


def test_defer_props_sends_values_now_and_properties_next():
    import gradio as gr

    from ui.live_run import defer_props

    skip = gr.skip()
    now, later = defer_props(("<b>status</b>", skip, gr.update(value=[1], visible=True), gr.update(visible=False),
                              gr.update(value=None)))
    assert now == ("<b>status</b>", skip, [1], skip, {"__type__": "update", "value": None})
    assert later == (skip, skip, {"__type__": "update", "visible": True}, {"__type__": "update", "visible": False},
                     skip)


def test_slow_start_is_acknowledged_before_the_tree(ctx):
    from backends import catalog
    from ui.figures.tables import compute_meter_html

    gen = stream(ctx)
    # another thread holds the model-load lock (as the app's warm-up does while it loads the models): the
    # run cannot start, and the page must hear of it within the grace period anyway
    with catalog._load_lock:
        ack = next(gen)
    assert is_skip(ack[TREE]), "the acknowledgement re-drew the tree"
    assert "starting" in ack[STATUS]
    assert ack[GALLERY] == {"__type__": "update", "value": [], "visible": False}
    assert ack[CANDIDATES] == {"__type__": "update", "value": [], "visible": True}
    assert ack[METER] == compute_meter_html({})  # the previous run's meter is cleared
    rest = list(gen)
    assert tree_traces(rest[0][TREE])
    assert "finished" in rest[-1][STATUS]


def test_live_frames_send_the_tree_compact_and_only_when_it_changed(ctx, monkeypatch):
    """The first live tree is the figure's own JSON (the same traces as plotly's ``to_json``) without its
    escapes; the later live trees are diffs to the page's copy (``ui.live_figure``), one revision after the
    other, with only what changed; unchanged trees are skipped, and the last frame is the whole figure (the
    replay's starting point)."""
    import json

    from gradio.components.plot import PlotData

    from ui import live_run
    from ui.fold import fold
    from ui.figures.tree import tree_figure

    monkeypatch.setattr(live_run, "ACK_GRACE_S", 60.0)
    monkeypatch.setattr(live_run, "MAX_UPDATES_PER_S", 1000.0)  # an update per drained batch: many frames
    outs = list(stream(ctx))
    drawn = [o[TREE] for o in outs[:-1] if not is_skip(o[TREE])]
    assert all(isinstance(v, PlotData) for v in drawn)
    drawn = [v for v in drawn if json.loads(v.plot)["data"]]  # not the empty tree before the first node
    assert len(drawn) == 1, "a live frame after the first re-sent the figure"
    first = json.loads(drawn[0].plot)
    assert first["data"] and "\\u003c" not in drawn[0].plot and "<br>" in drawn[0].plot  # hovers' tags as is
    diffs = [o[LIVE] for o in outs if not is_skip(o[LIVE])]
    assert diffs[0].get("reset") and diffs[0]["rev"] == 1, "the page's copy starts from the first frame"
    assert [d["rev"] for d in diffs] == list(range(1, len(diffs) + 1))
    assert all(d["base"] == d["rev"] - 1 for d in diffs[1:])
    assert len(diffs) > 2, "too few live frames to test"
    assert is_skip(outs[-1][LIVE]) and isinstance(outs[-1][TREE], go.Figure)
    events = outs[-1][EVENTS]
    final = json.loads(tree_figure(fold(events)).to_json())
    assert tree_traces(outs[-1][TREE]) == final["data"]
    # a diff carries the hovers of the nodes it adds or changes, never all of them again: in all, each
    # node's hover goes out about once (and again when its score, prune or answer changes)
    new_hovers = [d.get("points", {}).get("hovertext", {}) for d in diffs]
    assert all(len(h) < len(fold(events).nodes) for h in new_hovers[1:])
    # live hovers are brief (node, text, score), the last frame's are whole (per-step scores, cost, prunes)
    live_text = " ".join(v for h in new_hovers for v in h.values())
    assert "verifier score" in live_text and "per-step" not in live_text
    hovers = lambda traces: " ".join(h for t in traces for h in t.get("hovertext") or [])  # noqa: E731
    assert "per-step PRM scores" in hovers(final["data"]) and "cost of this step" in hovers(final["data"])
    assert all(set(d) - {"rev", "base"} for d in diffs), "an unchanged tree was sent again"
    # what decides a resend: the tree's signature moves with what the figure draws, not with the meter
    from ui.figures.tree import tree_signature
    st = fold([e for e in events if e["type"] != "RunFinished"])
    before = tree_signature(st)
    fold([{"type": "Cost", "delta": {"generated_tokens": 5}}], state=st)
    assert tree_signature(st) == before
    scored = next(e for e in events if e["type"] == "NodeScored")
    fold([{**scored, "score": scored["score"] / 2}], state=st)
    assert tree_signature(st) != before


def test_the_model_work_sees_the_request_context(ctx, monkeypatch):
    """On a ZeroGPU Space the ``spaces`` package reads the visitor's request from context variables when the
    run's @spaces.GPU function is called, which happens in Explore's worker thread: a variable set in the
    handler's thread must be visible there (a plain thread starts with empty ones). ZeroGPU stands in here:
    the run goes through ``engine.run.gpu_events``, which records what it sees."""
    import contextvars

    from engine import run, zerogpu

    request = contextvars.ContextVar("request", default=None)
    seen = []

    def gpu_events(config, limits=None):
        seen.append(request.get())
        yield from run._gpu_work(config, limits)

    monkeypatch.setattr(run, "on_zerogpu", lambda: True)
    monkeypatch.setattr(zerogpu, "needs_gpu", lambda config: True)
    monkeypatch.setattr(run, "gpu_events", gpu_events)
    token = request.set("visitor-1")
    try:
        outs = list(stream(ctx))
    finally:
        request.reset(token)
    assert seen == ["visitor-1"]
    assert "finished" in outs[-1][STATUS]


# ---- the page's inputs: make_config and the domain switch (no model loaded) ------------------------------

@pytest.fixture(scope="module")
def inputs():
    """(ctx, fields) as Explore's build has them; make_config loads nothing."""
    from engine.limits import Limits
    from ui.common import AppContext
    from ui.registry import param_fields

    return AppContext(store=None, limits=Limits(max_budget=64)), param_fields()


def config_of(inputs, domain, strategy="random_search", problem="", prompt_id=None, digit=None, sampler=(),
              model="", verifier=""):
    from ui.explore import make_config

    ctx, fields = inputs
    return make_config(ctx, fields, domain, model, verifier, strategy, 4, 2, problem, 7, "last", 0.8,
                       [None] * len(fields), digit_v=digit, sampler_values=sampler, prompt_id_v=prompt_id)


def t2i_sampler(**change):
    """Explore's sampler values in SAMPLER_OPTIONS order, at the t2i widgets' defaults (guidance empty)."""
    from ui.explore import SAMPLER_OPTIONS
    values = {"steps": 30, "eta": 1.0, "guidance": None, "scheduler": "auto", "diffusion": 3.0,
              "interpolant": "linear", **change}  # the hidden interpolant keeps the image domain's value
    return tuple(values[name] for name in SAMPLER_OPTIONS)


def test_t2i_takes_a_bundled_prompt_and_the_sampler_options_it_knows(inputs):
    cfg = config_of(inputs, "t2i", prompt_id="test:5", sampler=t2i_sampler(), model="my/pipeline",
                    verifier="clip-score")
    assert (cfg.domain, cfg.model, cfg.verifier, cfg.problem_id, cfg.problem_text) == \
        ("t2i", "my/pipeline", "clip-score", "test:5", None)
    # guidance left empty: the pipeline's own; the interpolant is not a text-to-image option and is dropped
    assert cfg.options == {"steps": 30, "eta": 1.0, "scheduler": "auto", "diffusion": 3.0}
    assert cfg.difficulty is None and cfg.seed == 7 and cfg.budget == 4


def test_t2i_typed_prompt_wins_over_the_bundled_one(inputs):
    cfg = config_of(inputs, "t2i", problem="  a red cube on a blue sphere ", prompt_id="test:5",
                    sampler=t2i_sampler(guidance=4.5), model="my/pipeline")
    assert cfg.problem_text == "a red cube on a blue sphere" and cfg.problem_id is None
    assert cfg.options["guidance"] == 4.5
    # empty prompt: the first bundled prompt (an empty model: the test below)
    assert config_of(inputs, "t2i", model="my/pipeline").problem_id == "test:0"


def test_t2i_model_defaults_to_the_first_pipeline_available_here(inputs, tmp_path, monkeypatch):
    """The domain switch and an empty model box pick the first catalog pipeline in the Hugging Face cache (here
    the second one: the first, not cached, would fail the run); with none cached there is no default, the intro
    says how to get one, and an empty model box is refused with the same way forward."""
    import gradio as gr
    import huggingface_hub.constants
    from huggingface_hub.file_download import repo_folder_name

    from backends import catalog
    from ui.explore import domain_updates

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache
    pipelines = [e.id for e in catalog.models("t2i") if e.kind == "policy"]
    none_here = domain_updates("t2i")
    assert none_here["model"]["value"] is None
    assert "Nothing to run in t2i here yet" in none_here["intro"]["value"]
    assert "`python app.py download stable-diffusion-v1-5/stable-diffusion-v1-5`" in none_here["intro"]["value"]
    assert "TTS_ALLOW_DOWNLOADS=1" in none_here["intro"]["value"]
    with pytest.raises(gr.Error, match="No t2i model is available here.*python app.py download"):
        config_of(inputs, "t2i")
    cached = tmp_path / repo_folder_name(repo_id=pipelines[1], repo_type="model")
    (cached / "snapshots" / "abc").mkdir(parents=True)
    (cached / "snapshots" / "abc" / "model_index.json").write_text("{}")
    (cached / "refs").mkdir()
    (cached / "refs" / "main").write_text("abc")
    u = domain_updates("t2i")
    assert u["model"]["value"] == pipelines[1] == config_of(inputs, "t2i").model
    assert [v for _, v in u["model"]["choices"]] == pipelines  # still offered in catalog order, labelled
    assert sum("not available here" in label for label, _ in u["model"]["choices"]) == len(pipelines) - 1
    assert config_of(inputs, "t2i", model="my/pipeline").model == "my/pipeline"  # a chosen one is kept


def test_image_keeps_its_digit_and_gets_the_flow_options(inputs):
    from ui.explore import SAMPLER_OPTIONS
    sampler = dict(zip(SAMPLER_OPTIONS, (12, 0.5, 2.0, "flow_sde", 1.5, "vp")))
    cfg = config_of(inputs, "image", digit=6, sampler=tuple(sampler.values()))
    assert (cfg.model, cfg.problem_id, cfg.problem_text) == ("tiny-digits", "test:6", None)
    assert cfg.options == sampler
    reasoning = config_of(inputs, "reasoning", strategy="beam_search", sampler=tuple(sampler.values()))
    assert reasoning.options == {} and reasoning.difficulty == 2 and reasoning.model == "tiny-arith-s"


@pytest.mark.parametrize("domain, change, message", [
    ("t2i", {"prompt_id": "train:1"}, "unknown split 'train'"),
    ("t2i", {"prompt_id": "a cat"}, "problem id must look like test:17, got 'a cat'"),
    ("t2i", {"problem": "a cat " * 100}, "the prompt is too long (at most 500 characters)"),
    # flow_ode is an image-domain scheduler, not one any text-to-image family samples with
    ("t2i", {"sampler": t2i_sampler(scheduler="flow_ode")}, "scheduler must be one of auto, ddim, ddpm, euler"),
    ("image", {"problem": "What is love?"}, "an image problem names one digit"),
    ("image", {"digit": 12}, "digit must be a whole number from 0 to 9"),
])
def test_bad_image_domain_input_is_a_clear_gr_error(inputs, domain, change, message):
    import gradio as gr
    with pytest.raises(gr.Error, match=re.escape(message)):
        config_of(inputs, domain, **change)


def test_domain_switch_shows_the_t2i_inputs_with_the_backends_choices():
    from backends import catalog
    from backends.image import t2i
    from backends.image.t2i_pipelines import SCHEDULERS
    from ui.explore import SAMPLER_OPTIONS, domain_updates

    u = domain_updates("t2i")
    shown = {name for name, update in u.items() if update.get("visible") is True}
    hidden = {name for name, update in u.items() if update.get("visible") is False}
    assert {"prompt_id", "sampler_row", "steps", "eta", "guidance", "scheduler", "diffusion"} <= shown
    assert {"digit", "difficulty", "aggregation", "temperature", "interpolant"} <= hidden
    assert "prompt" in u["problem"]["label"]
    # every scheduler some text-to-image family accepts, and auto (the pipeline's own), from the backend
    assert set(u["scheduler"]["choices"]) == {"auto"} | {s for ss in SCHEDULERS.values() for s in ss}
    assert u["scheduler"]["value"] == "auto" and u["guidance"]["value"] is None
    assert u["steps"]["value"] == t2i.DEFAULTS["steps"]
    assert [v for _, v in u["verifier"]["choices"]] == [e.id for e in catalog.models("t2i") if e.kind != "policy"]
    assert u["strategy"]["value"] == "random_search"
    # back to the digits: the digit radio, the image schedulers (flow ones included) and the interpolant
    img = domain_updates("image")
    assert img["digit"]["visible"] and not img["prompt_id"]["visible"] and img["interpolant"]["visible"]
    assert "flow_sde" in img["scheduler"]["choices"] and "auto" not in img["scheduler"]["choices"]
    assert set(SAMPLER_OPTIONS) <= set(img)


def test_verifier_dropdown_offers_every_verifier_the_catalog_lists():
    """Reward verifiers (attribute rewards on digits, CLIP and aesthetic scores) are verifiers too."""
    from backends import catalog
    from ui.registry import verifier_choices

    for domain in ("reasoning", "image", "t2i"):
        offered = [v for _, v in verifier_choices(domain)]
        assert offered == [e.id for e in catalog.models(domain) if e.kind != "policy"]
    assert {"digit-thickness", "digit-centred"} <= {v for _, v in verifier_choices("image")}
    assert {"clip-score", "laion-aesthetic"} <= {v for _, v in verifier_choices("t2i")}


def test_choosing_a_strategy_moves_the_sampler_to_one_it_runs_on():
    """Rollover budget forcing refuses DDIM (the image domain's default sampler): Explore switches it to flow_sde.
    Zero-order search refuses a stochastic sampler: DDIM or DDPM becomes DDIM with eta 0, flow_sde becomes
    flow_ode. A sampler the strategy runs on, and the other strategies, are left alone."""
    from ui.explore import sampler_update

    def moved(strategy, domain, scheduler):
        return tuple(u.get("value") for u in sampler_update(strategy, domain, scheduler))

    assert moved("rollover_budget_forcing", "image", "ddim") == ("flow_sde", None)
    assert moved("rollover_budget_forcing", "image", "flow_ode") == (None, None)
    assert moved("zero_order", "image", "ddim") == (None, 0.0)
    assert moved("zero_order", "image", "ddpm") == ("ddim", 0.0)
    assert moved("zero_order", "image", "flow_sde") == ("flow_ode", None)
    assert moved("zero_order", "image", "flow_ode") == (None, None)
    assert moved("fk_steering", "image", "ddim") == (None, None)
    assert moved("zero_order", "t2i", "flow_sde") == ("auto", 0.0)
    assert moved("zero_order", "t2i", "auto") == (None, 0.0)
    assert moved("random_search", "t2i", "ddpm") == (None, None)
    assert moved("best_of_n", "reasoning", None) == (None, None)


def test_a_domain_starts_on_a_verifier_that_is_available_here(monkeypatch):
    """t2i's first verifier (clip-score) may not be cached while a later one is: the switch picks the later one;
    with none available it keeps the first, whose label says so."""
    from ui import registry
    from ui.explore import domain_updates

    monkeypatch.setattr(registry, "_available", lambda e: e.id == "laion-aesthetic")
    assert domain_updates("t2i")["verifier"]["value"] == "laion-aesthetic"
    monkeypatch.setattr(registry, "_available", lambda e: False)
    assert domain_updates("t2i")["verifier"]["value"] == "clip-score"
    assert registry.default_verifier("reasoning") == "tiny-prm"


def test_reasoning_runs_take_the_kv_reuse_and_drafting_choices(inputs):
    """Explore's Advanced choices become the run's options; a default choice travels as nothing (the stored
    record stays as before) and a value outside the choices is refused with its name."""
    import gradio as gr

    from ui.explore import make_config

    ctx, fields = inputs

    def config(kv, drafting):
        return make_config(ctx, fields, "reasoning", "", "", "beam_search", 4, 2, "", 7, "last", 0.8,
                           [None] * len(fields), text_values=(kv, drafting))

    assert config("on", "off").options == {}
    assert config("off", "ngram").options == {"kv_reuse": "off", "drafting": "ngram"}
    with pytest.raises(gr.Error, match="drafting"):
        config("on", "eagle")


def test_the_meter_shows_accepted_drafts_and_tokens_per_pass():
    from ui.figures.tables import compute_meter_html

    html = compute_meter_html({"generated_tokens": 1000, "draft_tokens": 800, "draft_accepted": 200})
    assert "drafts accepted" in html and "25% of 800" in html and "1.25x" in html
    assert "drafts accepted" not in compute_meter_html({"generated_tokens": 1000})


def test_live_particle_lanes_are_compact_and_the_last_is_the_figure(ctx, monkeypatch):
    from gradio.components.plot import PlotData

    from engine.run import RunConfig
    from ui import live_run
    from ui.live_run import stream_run

    monkeypatch.setattr(live_run, "MAX_UPDATES_PER_S", 1000.0)
    outs = list(stream_run(ctx, RunConfig(strategy="particle_filtering", budget=8, difficulty=2, seed=0),
                           "run:pf", viewer=None))
    live = [o[PARTICLES]["value"] for o in outs[:-1] if "value" in o[PARTICLES]]
    assert live and all(isinstance(v, PlotData) and '"ESS"' in v.plot for v in live)
    assert isinstance(outs[-1][PARTICLES]["value"], go.Figure)
