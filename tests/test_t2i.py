"""The text-to-image domain on tiny random pipelines built from configs and saved with ``save_pretrained``:
SD style (UNet2DConditionModel + AutoencoderKL + CLIPTextModel + CLIPTokenizer, DDIM), SDXL style (two text
encoders, pooled and size conditions), SD3 flow style
(SD3Transformer2DModel + AutoencoderKL + two CLIP text encoders + FlowMatchEulerDiscreteScheduler) and FLUX
style (FluxTransformer2DModel with guidance embedding + CLIP + T5), loaded by folder through the catalog (the
loader a hub id takes); a tiny random CLIPModel and a tiny LLaVA for the verifiers.

The step loop is checked against the diffusers pipelines' own ``__call__``; random search, FK steering and
evolutionary search run end to end through ``engine.run.execute`` into a SQLite file."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from backends.image.loaders import load_t2i_verifier
from engine.run import ConfigError, RunConfig, execute, summary
from tests import t2i_models

STEPS = 3
PROMPT = "a red cube on a blue sphere"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return t2i_models.build(tmp_path_factory.mktemp("t2i-models"))


def pipeline(models, family):
    from backends.image.loaders import load_t2i_model
    return load_t2i_model(str(models[family]))


def config(models, family, strategy, budget, **kw):
    size = {"size": 16} if family == "flux" else {}  # FLUX's native size is 128 latent pixels
    return RunConfig(domain="t2i", model=str(models[family]), verifier=str(models["clip"]),
                     judge=str(models["aesthetic"]), strategy=strategy, budget=budget,
                     problem_id=kw.pop("problem_id", "test:3"),
                     options={"steps": STEPS, "guidance": 2.0, **size, **kw.pop("options", {})}, **kw)


CASES = [
    ("random_search", 3, {}),
    ("fk_steering", 3, {"every": 1, "window_start": 0.1, "adaptive": False}),
    ("evo_search", 4, {"population": 2, "elites": 1, "tournament": 2}),
]


@pytest.mark.parametrize("family, strategy, budget, params",
                         [(f, *c) for f in ("sd", "sd3", "flux") for c in CASES] + [("sdxl", *CASES[1])]
                         + [("flux", "fk_steering", 3, {"every": 1, "window_start": 0.1, "scheduler": "flow_sde"}),
                            ("sd3", "zero_order", 3, {"neighbours": 2}),
                            ("sd", "search_over_paths", 2, {"branches": 2, "forward": 1, "backward": 2})])
def test_t2i_strategy_end_to_end(models, store, family, strategy, budget, params, tmp_path, monkeypatch):
    from PIL import Image
    monkeypatch.setenv("TTS_IMAGES_DIR", str(tmp_path / "images"))
    params = dict(params)
    options = {"scheduler": params.pop("scheduler")} if "scheduler" in params else {}
    events = list(execute(config(models, family, strategy, budget, params=params, options=options), store))
    end = events[-1]
    assert end["type"] == "RunEnded" and end["status"] == "finished", end["error"]
    run = store.get_run(events[0]["run_id"])
    assert run["status"] == "finished" and run["domain"] == "t2i" and run["problem_text"] == events[0]["prompt"]
    assert [e["type"] for e in store.events(run["id"])] == [e["type"] for e in events[:-1]]
    # NFE: classifier-free guidance evaluates prompt and empty prompt, 2 per image per step; FLUX takes its
    # guidance as an input of the transformer, 1
    per = 1 if family == "flux" else 2
    totals = end["compute"]
    assert sum(e["cost"]["nfe"] for e in events[:-1]) == totals["nfe"]
    if strategy == "evo_search":
        assert per * (budget - 1) * STEPS < totals["nfe"] <= per * budget * STEPS
    elif strategy == "search_over_paths":  # the paths the budget pays for, each with its re-noised branches
        from strategies import search_over_paths as sop
        plan = sop.plan(budget, STEPS, sop.Params(**params))
        assert totals["nfe"] == per * plan.paths * plan.steps_per_path
    else:
        assert totals["nfe"] == per * budget * STEPS
    assert totals["verifier_calls"] > 0 and totals["flops"] > 0
    # previews: a PNG per node in the run's folder; intermediate nodes also show x_t; finals are RGB decodes
    added = [e for e in events if e["type"] == "NodeAdded" and e["parent"] is not None]
    assert added and all(Path(e["preview"]).is_file() and str(tmp_path / "images") in e["preview"] for e in added)
    inter = [Path(e["preview"][:-4] + "_xt.png").is_file() for e in added if not e["finished"] and e["step"] > 0]
    if strategy == "fk_steering":  # every intermediate step is a node with its x0-hat
        assert inter and all(inter)
    elif strategy in ("evo_search", "search_over_paths"):  # a mutated or re-noised x_t has no x0-hat yet
        assert any(inter)
    final = next(e for e in added if e["finished"])
    with Image.open(final["preview"]) as im:
        assert im.mode == "RGB" and im.size == (64, 64)
    # the judge's score and verdict and the search verifier's score of every candidate, stored
    judged = end["extras"]["candidates_judged"]
    assert {j["id"] for j in judged} == {c["id"] for c in end["candidates"]}
    assert all(j["verifier_score"] is not None for j in judged)
    assert all(j["judge_correct"] is (j["judge_score"] >= 5.0) for j in judged)
    chosen = next(j for j in judged if j["id"] == next(e["id"] for e in events if e["type"] == "Selected"))
    assert end["correct"] is end["extras"]["chosen_judge_correct"] is chosen["judge_correct"]
    assert run["result"]["candidates_judged"] == judged
    if strategy == "fk_steering":
        res = [e for e in events if e["type"] == "Resampled"]
        assert res and all(len(e["ancestors"]) == budget for e in res)
    assert summary(events)["extras"]["model_family"] == family


@pytest.mark.parametrize("family, scheduler", [("sd", "ddim"), ("sdxl", "ddim"), ("sd3", "euler"),
                                               ("sd3", "flow_sde"), ("flux", "euler")])
def test_our_loop_matches_the_pipeline(models, family, scheduler):
    """Deterministic sampling (eta 0; the flow SDE at diffusion 0) one step at a time gives the pipeline's own
    latents and decoded image."""
    from diffusers import DDIMScheduler

    from backends.image.diffusion import noise_latent
    from backends.image.t2i_pipelines import PromptGenerator, T2ISampling
    p = pipeline(models, family)
    if family == "sdxl":  # the pipeline's own loop with the scheduler ours builds from its Euler config
        p.pipe.scheduler = DDIMScheduler.from_config(p.pipe.scheduler.config)
    gen = PromptGenerator(p, PROMPT, T2ISampling(steps=STEPS, eta=0.0, guidance=2.0, scheduler=scheduler, size=16,
                                                 diffusion=0.0))
    lat = noise_latent(gen, 5, STEPS)
    noise = lat.x.clone()
    for _ in range(STEPS):
        lat = gen.denoise([lat])[0][0]
    kw = {"eta": 0.0} if family in ("sd", "sdxl") else {}
    start = p.pipe._pack_latents(noise[None], 1, *noise.shape) if family == "flux" else noise[None]
    ref = p.pipe(prompt=PROMPT, latents=start, num_inference_steps=STEPS, guidance_scale=2.0, height=16,
                 width=16, output_type="latent", **kw).images
    if family == "flux":  # FLUX returns its packed latents
        ref = p.pipe._unpack_latents(ref, 16, 16, p.vae_scale)
    assert torch.allclose(lat.x, ref[0].float(), atol=1e-4)
    image = p.pipe(prompt=PROMPT, latents=start, num_inference_steps=STEPS, guidance_scale=2.0, height=16,
                   width=16, output_type="pt", **kw).images
    assert torch.allclose(p.decode(lat.x[None])[0][0], image[0] * 2 - 1, atol=1e-4)


@pytest.mark.parametrize("family, scheduler", [("sd", "ddim"), ("sd3", "euler")])
def test_x0_hat_per_step(models, family, scheduler):
    from backends.image.diffusion import noise_latent
    from backends.image.t2i_pipelines import PromptGenerator, T2ISampling
    p = pipeline(models, family)
    gen = PromptGenerator(p, PROMPT, T2ISampling(steps=4, eta=1.0, guidance=1.0, scheduler=scheduler, size=16))
    lat = gen.denoise([noise_latent(gen, 1, 4)])[0][0]
    t = torch.tensor([float(gen._sched(4).timesteps[1])])
    out, nfe = p.predict(lat.x[None], t, gen.emb, 1.0)
    assert nfe == 1  # guidance 1: no unconditional pass
    nxt = gen.denoise([lat])[0][0]
    a, s = gen.level(4, 1)
    if family == "sd":   # epsilon prediction: x0 = (x - s eps) / a
        expect = (lat.x - s * out[0]) / a
    else:                # velocity v = eps - x0 at x = (1 - σ) x0 + σ eps: x0 = x - σ v
        expect = lat.x - s * out[0]
    assert torch.allclose(nxt.x0, expect, atol=1e-5)


def test_stochastic_sampler_separates_resampled_copies(models):
    """Euler at eta 0 keeps two copies of a particle identical; at eta > 0, or with the flow SDE, they draw their
    own noise."""
    from backends.image.t2i import T2ISpace
    from backends.image.t2i_pipelines import PromptGenerator, T2ISampling
    p = pipeline(models, "sd3")
    for scheduler, eta, same in (("euler", 0.0, True), ("euler", 0.5, False), ("flow_sde", 0.0, False)):
        s = T2ISampling(steps=4, eta=eta, guidance=1.0, scheduler=scheduler, size=16)
        sp = T2ISpace(PromptGenerator(p, PROMPT, s), None, PROMPT, s, previews="none")
        first = sp.extend(sp.initial(1), 1)[0]
        copies = sp.resample(first, [0, 0])
        a, b = [g[0] for g in sp.extend(copies, 1)]
        assert torch.equal(a.payload.x, b.payload.x) is same


def test_regenerate_rebuilds_a_candidate_exactly(models):
    from backends.image.t2i import T2ISpace
    from backends.image.t2i_pipelines import PromptGenerator, T2ISampling
    p = pipeline(models, "sd")
    s = T2ISampling(steps=4, eta=1.0, guidance=2.0, scheduler="ddim", size=16)
    sp = T2ISpace(PromptGenerator(p, PROMPT, s), None, PROMPT, s, previews="none", seed=3)
    noise = sp.noises(sp.initial(1)[0], 1)[0]
    moved = sp.perturb([noise], math.sqrt(0.75), 1)[0][0]
    mid = sp.extend([moved], 1)[0][0]
    mid = sp.extend([mid], 1)[0][0]
    back = sp.renoise([mid], 1, 1)[0][0]
    leaf = sp.complete([back])[0]
    assert leaf.finished and [op[0] for op in leaf.payload.recipe] == \
        ["noise", "perturb", "step", "step", "renoise", "step", "step", "step"]
    assert torch.equal(sp.regenerate(leaf), leaf.payload.x)


def test_explore_runs_t2i_from_the_page_inputs(models, store, tmp_path, monkeypatch):
    """Explore's handlers as the page calls them: the t2i inputs (a bundled prompt, the sampler widgets) become
    a run that streams into the image views; a scheduler the model's family does not take is refused."""
    import gradio as gr

    from backends.image.t2i import prompt_set
    from engine.limits import Limits
    from ui.common import AppContext
    from ui.explore import SAMPLER_OPTIONS, make_config, stream_run
    from ui.registry import param_fields
    monkeypatch.setenv("TTS_IMAGES_DIR", str(tmp_path / "images"))
    ctx, fields = AppContext(store=store, limits=Limits(max_budget=8)), param_fields()

    def config(scheduler: str):
        sampler = dict(zip(SAMPLER_OPTIONS, (STEPS, 1.0, 2.0, scheduler, 3.0, "linear")))
        return make_config(ctx, fields, "t2i", str(models["sd"]), f"clip:{models['clip']}", "random_search", 2,
                           3, "", 0, "last", 0.8, [None] * len(fields), digit_v=3, prompt_id_v="test:3",
                           sampler_values=tuple(sampler.values()))

    outs = list(stream_run(ctx, config("auto"), "run:t2i", viewer=None))
    status, gallery, events = outs[-1][0], outs[-1][7], outs[-1][6]
    assert "finished" in status, status
    assert gallery["visible"] and len(gallery["value"]) == 2  # both candidates, as PNG previews
    assert all(str(tmp_path / "images") in str(item[0]) for item in gallery["value"])
    run = store.get_run(events[0]["run_id"])
    assert (run["domain"], run["problem_uid"], run["strategy"]) == ("t2i", "test:3", "random_search")
    assert run["problem_text"] == prompt_set()[3]["prompt"] and run["totals"]["nfe"] == 2 * 2 * STEPS
    with pytest.raises(gr.Error, match="samples with ddim, ddpm, not 'euler'"):
        list(stream_run(ctx, config("euler"), "run:t2i", viewer=None))
    assert ctx.cancels == {}


# ---- verifiers -------------------------------------------------------------------------------------------------

def _images(n: int, size: int = 16) -> torch.Tensor:
    return torch.rand((n, 3, size, size), generator=torch.Generator().manual_seed(n)) * 2 - 1


def _pixels(processor, images: torch.Tensor) -> torch.Tensor:
    from PIL import Image
    arr = ((images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return processor(images=[Image.fromarray(a) for a in arr], return_tensors="pt")["pixel_values"]


def test_clip_score_is_the_cosine_of_clip_embeddings(models):
    from transformers import CLIPModel, CLIPProcessor

    verifier = load_t2i_verifier(f"clip:{models['clip']}")  # cached: earlier tests may have used it
    images, prompts = _images(3), ["a cat", "a dog on grass", "a cat"]
    before = verifier.calls
    scores, cost = verifier.score(images, prompts)
    assert cost.verifier_calls == 3 and verifier.calls - before == 3
    # manual: CLIP's own forward gives logits = scale x cosine of the normalised projected embeddings
    model, processor = CLIPModel.from_pretrained(str(models["clip"])).eval(), CLIPProcessor.from_pretrained(
        str(models["clip"]))
    tok = processor(text=prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"],
                    pixel_values=_pixels(processor, images))
    cos = torch.diagonal(out.logits_per_image) / model.logit_scale.exp()
    assert scores == pytest.approx(cos.tolist(), abs=1e-5)
    assert len(set(round(s, 6) for s in scores)) == 3


def test_aesthetic_is_the_laion_head_on_normalised_clip_embeddings(models, tmp_path):
    from safetensors.torch import load_file
    from transformers import CLIPModel, CLIPProcessor

    from backends.image.t2i_verifiers import AestheticHead, AestheticScore, load_head
    verifier = load_t2i_verifier(str(models["aesthetic"]))
    images = _images(2)
    scores, cost = verifier.score(images, ["x", "y"])
    assert cost.verifier_calls == 2
    model, processor = CLIPModel.from_pretrained(str(models["clip"])).eval(), CLIPProcessor.from_pretrained(
        str(models["clip"]))
    with torch.no_grad():
        emb = model(input_ids=torch.zeros((2, 1), dtype=torch.long),
                    pixel_values=_pixels(processor, images)).image_embeds
    w = load_file(str(models["aesthetic"] / "head.safetensors"))
    h = emb
    for i in (0, 2, 4, 6, 7):  # the MLP has no activations: five affine maps (dropout is off at inference)
        h = h @ w[f"layers.{i}.weight"].T + w[f"layers.{i}.bias"]
    assert scores == pytest.approx(h[:, 0].tolist(), abs=1e-5)
    # the published formats: the MLP's state dict as .pth, and the first LAION predictor's bare linear layer
    torch.save(w, tmp_path / "mlp.pth")
    assert torch.allclose(load_head(tmp_path / "mlp.pth")(emb), h[:, 0], atol=1e-5)
    lin = AestheticHead(emb.shape[1], linear=True).layers[0]
    torch.save(lin.state_dict(), tmp_path / "linear.pth")
    head = load_head(tmp_path / "linear.pth")
    assert head.linear and torch.allclose(head(emb), lin(emb)[:, 0], atol=1e-6)
    assert isinstance(verifier, AestheticScore)


def test_vlm_judge_samples_k_critiques_and_reads_their_verdicts(models, monkeypatch):
    judge = load_t2i_verifier(f"vlm:{models['vlm']}")
    judge.max_new_tokens = 5  # too short for any verdict: random text abstains
    scores, cost = judge.score(_images(2), ["a cat", "a dog"])
    assert scores == [0.5, 0.5] and cost.verifier_calls == 2 and cost.verifier_tokens > 0
    assert [len(g) for g in judge.last_judgments] == [judge.k, judge.k]
    # the parsing and aggregation path on fixed samples: mean of the parsed verdicts, abstentions left out
    tok = judge.processor.tokenizer
    texts = ["Verdict: yes", "Verdict: no", "Verdict: yes", "no verdict here"]

    def generate(**inputs):
        ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        width = max(len(i) for i in ids)
        new = torch.tensor([i + [tok.pad_token_id] * (width - len(i)) for i in ids])
        return torch.cat([inputs["input_ids"].repeat_interleave(judge.k, 0), new], dim=1)

    monkeypatch.setattr(judge.model, "generate", generate)
    scores, _ = judge.score(_images(1), ["a cat"])
    assert scores == [pytest.approx(2 / 3)] and judge.last_judgments == [texts]


def test_any_verifier_judges_another(models, store):
    """CLIP score searches, the VLM judges (and the other way round with the aesthetic head)."""
    for verifier, judge in (("clip", "vlm"), ("aesthetic", "clip")):
        cfg = config(models, "sd3", "random_search", 2, options={"previews": "none", "guidance": 1.0})
        cfg.verifier, cfg.judge = f"clip:{models['clip']}" if verifier == "clip" else str(models[verifier]), \
            (f"vlm:{models['vlm']}" if judge == "vlm" else str(models[judge]))
        end = list(execute(cfg, store))[-1]
        assert end["status"] == "finished", end["error"]
        judged = end["extras"]["candidates_judged"]
        assert len(judged) == 2
        assert all(j["judge_correct"] is (j["judge_score"] >= end["extras"]["judge_pass"]) for j in judged)
        assert end["compute"]["nfe"] == 2 * STEPS  # guidance 1: one evaluation per image per step


# ---- catalog and bad input ----------------------------------------------------------------------------------

def test_catalog_lists_hub_pipelines_and_verifiers_with_reasons(monkeypatch):
    import importlib.util

    from backends import catalog
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = {e.id: e.to_dict() for e in catalog.models("t2i")}
    policies = [r for r in rows.values() if r["kind"] == "policy"]
    assert len(policies) >= 4 and {"clip-score", "laion-aesthetic", "imagereward", "hpsv2"} <= set(rows)
    for r in policies:
        if not r["available"]:
            assert "Hugging Face cache" in r["reason"]
    for rid, module, pip_name in (("imagereward", "ImageReward", "image-reward"), ("hpsv2", "hpsv2", "hpsv2")):
        if importlib.util.find_spec(module) is None:
            assert not rows[rid]["available"] and f"pip install {pip_name}" in rows[rid]["reason"]
            with pytest.raises(catalog.ModelLoadError, match="not installed"):
                load_t2i_verifier(rid)


@pytest.mark.parametrize("change, message", [
    ({"options": {"bogus": 1}}, "unknown text-to-image option"),
    ({"options": {"scheduler": "ddpm"}, "family": "sd3"}, "samples with euler"),
    ({"options": {"size": 15}}, "size must be a multiple of 2"),
    ({"options": {"eta": 2}}, "eta must be"),
    ({"verifier": "digit-classifier"}, "image domain"),
    ({"model": "tiny-digits"}, "image domain"),
    ({"problem_id": "train:2"}, "unknown split"),
    ({"strategy": "beam_search"}, "unknown strategy"),
])
def test_bad_t2i_input_is_refused(models, store, change, message):
    kw = {"family": "sd", "strategy": "random_search", **change}
    cfg = config(models, kw.pop("family"), kw.pop("strategy"), 2, problem_id=kw.pop("problem_id", "test:0"),
                 options=kw.pop("options", {}))
    for k, v in kw.items():
        setattr(cfg, k, v)
    with pytest.raises(ConfigError, match=message):
        list(execute(cfg, store))


def test_sd3_pipeline_folder_is_a_flow_family(models):
    p = pipeline(models, "sd3")
    assert p.family == "sd3" and p.pipe.text_encoder_3 is None and p.default_size == 16
    assert pipeline(models, "sd").pipe.safety_checker is None


def test_t2i_sweep_needs_a_judge_and_breaks_down_by_category(models, store):
    from engine.sweep import SweepConfig, run_sweep
    cfg = SweepConfig(domain="t2i", model=str(models["sd"]), verifier=str(models["clip"]),
                      judge=str(models["aesthetic"]), strategies=["random_search"], budgets=[1, 2], problems=2,
                      options={"steps": 2, "guidance": 1.0, "previews": "none"})
    result = run_sweep(cfg, store)
    rows = {r["budget"]: r for r in result["results"]}
    assert set(rows) == {1, 2} and all(r["compute"]["nfe"] == r["budget"] * 2 for r in rows.values())
    assert set(rows[2]["by_difficulty"]) == {"colors"} and rows[2]["verifier_score"] is not None
    with pytest.raises(ConfigError, match="needs a held-out judge"):
        run_sweep(SweepConfig(**{**cfg.__dict__, "judge": None}), store)


def test_cli_refuses_an_uncached_hub_pipeline_in_one_line(tmp_path):
    import os
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "app.py", "--db", str(tmp_path / "cli.db"), "run", "--domain", "t2i",
                        "--model", "stabilityai/sd-turbo", "--verifier", "clip-score", "--strategy", "random_search",
                        "--budget", "2"], cwd=root, capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].endswith("not in the local Hugging Face cache and HF_HUB_OFFLINE=1 "
                                                      "(no download)")


@pytest.mark.parametrize("family, options, sampler", [("sd", {}, ("ddim", 0.0)), ("sd3", {}, ("euler", 0.0)),
                                                      ("sd", {"scheduler": "ddpm"}, None),
                                                      ("sd", {"eta": 0.5}, None),
                                                      ("sd3", {"scheduler": "flow_sde"}, None)])
def test_t2i_zero_order_runs_only_on_a_deterministic_sampler(models, family, options, sampler):
    """As on the digits: zero-order gets DDIM at eta 0 (or the flow families' euler, the ODE) unless the user
    chose a stochastic sampler, which is refused with one line."""
    from backends.errors import InputError
    from backends.image import t2i
    cfg = config(models, family, "zero_order", 2, options=options)
    if sampler is None:
        with pytest.raises(InputError, match="needs a deterministic sampler"):
            t2i.prepare(cfg, uses_verifier=True)
        return
    run = t2i.prepare(cfg, uses_verifier=True)
    assert (run.options["scheduler"], run.options["eta"]) == sampler
