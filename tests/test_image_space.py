"""The image domain's sampler and search space on a tiny random UNet: shapes, determinism, x0-hat, NFE,
resampling, zero-order neighbours, regeneration; and FK weights with extreme scores."""
from __future__ import annotations

import math
import random
import re

import pytest
import torch

from backends.image.diffusion import Sampling, denoise, noise_latent, sample, x0_formula
from backends.image.digits import parse_options, parse_problem, problem_at
from backends.image.space import ImageSpace
from strategies import fk_steering, smc
from strategies.core import Node, Score
from tests import image_models


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return image_models.tiny_model()


class Verifier:
    """A deterministic stand-in verifier: mean brightness of the image mapped to (0, 1)."""
    name = "brightness"

    def __init__(self):
        self.calls = 0

    def score(self, images, labels):
        self.calls += len(images)
        from strategies.core import Compute
        return [float(torch.sigmoid(x.mean() * 4)) for x in images], Compute(verifier_calls=len(images))


def space(model, **kw):
    sampling = Sampling(steps=kw.pop("steps", 5), eta=kw.pop("eta", 1.0), guidance=kw.pop("guidance", 1.0),
                           scheduler=kw.pop("scheduler", "ddim"))
    return ImageSpace(model, kw.pop("verifier", Verifier()), label=kw.pop("label", 3), sampling=sampling,
                         seed=kw.pop("seed", 0), **kw)


@pytest.mark.parametrize("kind", ["ddim", "ddpm"])
def test_sampling_shapes_and_determinism_from_a_seed(model, kind):
    s = Sampling(steps=4, eta=1.0, scheduler=kind)
    a = sample(model, s, [1, 2, 2], [10, 11, 12])
    b = sample(model, s, [1, 2, 2], [10, 11, 12])
    assert a.shape == (3, 1, 8, 8)
    assert torch.equal(a, b)
    c = sample(model, s, [1, 2, 2], [10, 11, 99])
    assert torch.equal(a[:2], c[:2]) and not torch.equal(a[2], c[2])


def test_space_nodes_carry_latents_and_steps(model, tmp_path):
    sp = space(model, images_dir=tmp_path / "imgs")
    root = sp.initial(1)[0]
    assert root.payload is None and root.preview == "digit 3"
    kids = sp.extend([root], 3)[0]
    assert [k.depth for k in kids] == [1, 1, 1] and all(k.parent == root.id for k in kids)
    assert all(k.payload.x.shape == (1, 8, 8) and k.payload.x0 is not None for k in kids)
    assert len({k.payload.seed for k in kids}) == 3  # one fresh initial noise per child
    leaves = sp.complete(kids)
    assert all(leaf.finished and leaf.depth == 5 and leaf.answer == "3" for leaf in leaves)
    # previews written once per node: x0-hat (or the final image) and x_t beside it
    assert all(k.preview.endswith(".png") for k in kids + leaves)
    assert (tmp_path / "imgs" / f"{kids[0].id}_xt.png").exists()
    assert not (tmp_path / "imgs" / f"{leaves[0].id}_xt.png").exists()


def test_x0_hat_from_the_scheduler_equals_the_formula(model):
    sched = model.scheduler("ddim", 5)
    lat = noise_latent(model, 7, 5)
    for step in range(3):
        t = int(sched.timesteps[step])
        eps, _ = model.eps(lat.x.unsqueeze(0), torch.tensor([t]), torch.tensor([3]), 1.0)
        a = float(sched.alphas_cumprod[t])
        expected = x0_formula(lat.x.unsqueeze(0), eps, a).clamp(-1, 1)  # the config clips x0-hat
        nxt = denoise(model, Sampling(steps=5), 3, [lat])[0][0]
        torch.testing.assert_close(nxt.x0.unsqueeze(0), expected, rtol=1e-5, atol=1e-5)
        lat = nxt


def test_x0_hat_formula_without_clipping_inverts_the_forward_process():
    x0 = torch.randn(2, 1, 4, 4)
    eps = torch.randn(2, 1, 4, 4)
    a = 0.3
    xt = math.sqrt(a) * x0 + math.sqrt(1 - a) * eps
    torch.testing.assert_close(x0_formula(xt, eps, a), x0)


@pytest.mark.parametrize("guidance, per_step", [(1.0, 1), (3.0, 2)])
def test_nfe_counting_matches_the_samplers_calls(model, guidance, per_step):
    sp = space(model, guidance=guidance, steps=4)
    before_evals, before_calls = model.evaluations, model.forward_calls
    root = sp.initial(1)[0]
    kids = sp.extend([root], 3)[0]
    sp.complete(kids + [root])
    assert sp.meter.nfe == model.evaluations - before_evals
    assert sp.meter.model_calls == model.forward_calls - before_calls
    assert sp.meter.nfe == per_step * (3 * 4 + 1 * 4)  # 3 particles x 4 steps and one fresh image x 4 steps
    assert sp.meter.flops > 0


def test_verifier_calls_are_counted_and_cached_per_node(model):
    v = Verifier()
    sp = space(model, verifier=v)
    leaves = sp.complete([sp.initial(1)[0]] * 4)
    s1 = sp.score(leaves)
    s2 = sp.score(leaves)
    assert [a.value for a in s1] == [b.value for b in s2]
    assert v.calls == 4 and sp.meter.verifier_calls == 4


def test_resampling_copies_the_whole_state(model):
    sp = space(model, eta=1.0)
    parts = sp.extend([sp.initial(1)[0]], 3)[0]
    parts = [p[0] for p in sp.extend(parts, 1)]
    copies = sp.resample(parts, [0, 0, 2])
    for c, a in zip(copies, [0, 0, 2]):
        src = parts[a].payload
        assert c.id == parts[a].id and c.depth == parts[a].depth
        assert torch.equal(c.payload.x, src.x) and torch.equal(c.payload.x0, src.x0)
        assert (c.payload.step, c.payload.steps, c.payload.recipe, c.payload.seed) == \
               (src.step, src.steps, src.recipe, src.seed)
        assert c.payload.x is not src.x  # a real copy, not a shared tensor
    assert len({c.payload.key for c in copies}) == 3  # each copy draws its own noise from here on
    copies[0].payload.x.add_(1.0)
    assert not torch.equal(copies[0].payload.x, parts[0].payload.x)
    nxt = [g[0] for g in sp.extend(copies, 1)]
    assert not torch.equal(nxt[0].payload.x, nxt[1].payload.x)  # stochastic sampler: copies diverge


def test_zero_order_neighbours_have_the_pivots_norm_and_the_asked_cosine(model):
    sp = space(model)
    pivot = sp.noises(sp.initial(1)[0], 1)[0]
    for cos in (0.95, 0.5, 0.0):
        nbrs = sp.perturb([pivot], cos, 5)[0]
        x = pivot.payload.x.flatten().double()
        for nb in nbrs:
            y = nb.payload.x.flatten().double()
            assert float(y.norm()) == pytest.approx(float(x.norm()), rel=1e-5)
            assert float(x @ y / (x.norm() * y.norm())) == pytest.approx(cos, abs=1e-5)
            assert nb.depth == 0 and nb.parent == pivot.id
        assert len({tuple(nb.payload.x.flatten().tolist()) for nb in nbrs}) == 5


def test_renoise_goes_back_to_an_earlier_noise_level(model):
    sp = space(model, steps=6)
    node = sp.complete([sp.noises(sp.initial(1)[0], 1)[0]])[0]
    mid = sp.extend([sp.noises(sp.initial(1)[0], 1)[0]], 1)[0][0]
    mid = [g[0] for g in sp.extend([mid], 1)][0]
    back = sp.renoise([mid], 1, 3)[0]
    assert all(b.depth == 1 and not b.finished for b in back)
    assert len({tuple(b.payload.x.flatten().tolist()) for b in back}) == 3
    with pytest.raises(ValueError):
        sp.renoise([mid], 4, 1)
    assert node.finished


def test_every_candidate_regenerates_from_its_recipe(model):
    sp = space(model, eta=1.0, steps=4)
    root = sp.initial(1)[0]
    leaves = sp.complete([root] * 3)
    mid = sp.extend([root], 2)[0]
    mutated = sp.perturb([mid[0]], 0.9, 1)[0]
    back = sp.renoise([leaves[0]], 2, 1)[0]
    for node in leaves + sp.complete(mutated + back):
        torch.testing.assert_close(sp.regenerate(node), node.payload.x, rtol=1e-4, atol=1e-5)


def test_fk_weights_stay_finite_with_extreme_scores():
    # the weights each extreme case must give, and their ESS: a naive exp() overflows or divides 0 by 0 here
    for log_w, expected in [([1e6, -1e6, 0.0], [1.0, 0.0, 0.0]), ([-1e308, -1e308], [0.5, 0.5]),
                            ([float("-inf"), 0.0], [0.0, 1.0]), ([1000.0, 1000.0 + 1e-9], [0.5, 0.5]),
                            ([float("nan"), 1.0], [0.5, 0.5])]:
        ws = smc.normalise_log(log_w)
        assert ws == pytest.approx(expected)
        assert smc.ess(ws) == pytest.approx(1.0 / sum(w * w for w in expected))
    for kind in ("max", "sum", "diff"):
        state: dict = {}
        total = 0.0
        for r in (0.0, 1.0, 1e-12, 1.0):
            g, state = fk_steering.log_potential(kind, 1000.0, r, state)
            total += g
            assert math.isfinite(g)
        ws = fk_steering.final_weights([total, 0.0], [total, 0.0], [1.0, 0.0], 1000.0)
        assert all(math.isfinite(w) for w in ws) and ws[0] == pytest.approx(1.0)


class ScriptedSpace:
    """A stand-in ImageSearchSpace for FK steering: particle i's verifier reward at depth d is rewards[i][d]."""

    def __init__(self, rewards: list[list[float]], seed: int) -> None:
        self.rewards, self.seed, self.max_steps = rewards, seed, len(rewards[0]) - 1
        self._ids = 0

    def _node(self, parent: Node | None, particle: int, depth: int) -> Node:
        self._ids += 1
        done = depth == self.max_steps
        return Node(id=f"n{self._ids}", parent=parent.id if parent else None, depth=depth, preview="",
                    finished=done, answer="x" if done else None, payload=particle)

    def initial(self, n):
        return [self._node(None, -1, 0) for _ in range(n)]

    def extend(self, nodes, k, temperature=None):
        if nodes[0].payload == -1:  # the prompt root: one particle per child
            return [[self._node(nodes[0], i, 1) for i in range(k)]]
        return [[self._node(n, n.payload, n.depth + 1) for _ in range(k)] for n in nodes]

    def score(self, nodes):
        return [Score(self.rewards[n.payload][n.depth]) for n in nodes]

    def resample(self, nodes, ancestors):
        return [nodes[a] for a in ancestors]

    def extract(self, node):
        return node.answer


def log_potentials(kind: str, lmbda: float, rs: list[float]) -> list[float]:
    """The log potentials a lineage with rewards ``rs`` at the scheduled steps collects, in order."""
    state: dict = {}
    out = []
    for r in rs:
        g, state = fk_steering.log_potential(kind, lmbda, r, state)
        out.append(g)
    return out


@pytest.mark.parametrize("potential", ["max", "sum", "diff"])
def test_fk_steering_draws_its_answer_from_the_tilted_target(potential):
    """Without resampling, the final-step correction leaves each particle's weight ∝ exp(λ r_0) whatever the
    potential: the strategy's draw (select=sample) is the one those weights give, and often not the one the
    uncorrected potentials give (particle 0 led all the way and ends worst)."""
    from strategies.core import Selected
    from strategies.params import build
    rewards = [[0.0, 0.9, 0.9, 0.9, 0.9, 0.0], [0.0, 0.1, 0.1, 0.1, 0.1, 0.9], [0.0, 0.5, 0.5, 0.5, 0.5, 0.5]]
    lmbda = 1.0
    params = build(fk_steering.Params, {"n": 3, "potential": potential, "lmbda": lmbda, "every": 1,
                                        "window_start": 0.0, "window_end": 1.0, "ess_threshold": 0.0,
                                        "select": "sample"})
    tilted = smc.normalise_log([lmbda * r[-1] for r in rewards])
    differs = 0
    for seed in range(40):
        space = ScriptedSpace(rewards, seed)
        events = list(fk_steering.search(space, params))
        chosen = next(e for e in events if isinstance(e, Selected))
        particle = {e.id: i for i, e in enumerate(events[1:4])}  # the root's three children, in order
        parents = {e.id: e.parent for e in events if hasattr(e, "parent")}
        node = chosen.id
        while node not in particle:
            node = parents[node]
        expected = random.Random(seed).choices(range(3), weights=tilted, k=1)[0]
        assert particle[node] == expected
        uncorrected = smc.normalise_log([sum(log_potentials(potential, lmbda, r[1:-1])) for r in rewards])
        differs += random.Random(seed).choices(range(3), weights=uncorrected, k=1)[0] != expected
    assert differs > 0


def test_systematic_resampling_gives_floor_or_ceil_copies():
    rng = random.Random(0)
    ws = [0.5, 0.25, 0.125, 0.125]
    for _ in range(20):
        anc = smc.systematic(ws, rng)
        assert anc == sorted(anc) and len(anc) == 4
        for i, w in enumerate(ws):
            assert math.floor(4 * w) <= anc.count(i) <= math.ceil(4 * w)


def test_problems_are_class_and_seed():
    p = problem_at("test", 17)
    assert p.label == 7 and p.answer == "7" and p.uid == "test:17"
    assert p.seed == problem_at("test", 17).seed != problem_at("test", 27).seed
    assert parse_problem("digit 4").label == 4 and parse_problem("seven").label == 7
    with pytest.raises(ValueError):
        parse_problem("a cat")
    with pytest.raises(ValueError):
        parse_options({"eta": "2"})
    assert parse_options({"steps": "8", "scheduler": "ddpm"})["steps"] == 8


@pytest.mark.parametrize("domain", ["image", "t2i"])
def test_image_domains_resolve_problems_by_id_or_text(domain):
    """Both image domains read ``split:index`` ids and typed text with the same rules and messages; each reads
    typed text its own way."""
    from backends.image import digits, t2i

    mod = {"image": digits, "t2i": t2i}[domain]
    assert mod.resolve_problem(None, None).uid == "test:0"
    assert mod.resolve_problem("  ", "test:3").uid == "test:3"  # blank text falls through to the id
    assert mod.resolve_problem(None, "test:12") == mod.problem_at("test", 12)
    for problem_id, message in [("val:1", "unknown split 'val'; choose one of " + ", ".join(mod.SPLITS)),
                                ("test:x", "problem id must look like test:17, got 'test:x'"),
                                ("test:-1", "problem id must look like test:17, got 'test:-1'"),
                                ("7", "problem id must look like test:17, got '7'")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            mod.resolve_problem(None, problem_id)
    with pytest.raises(ValueError, match="problem index must be 0 or more"):
        mod.problem_at("test", -1)
    if domain == "image":
        p = mod.resolve_problem(" seven ", "test:3")  # typed text wins over the id
        assert (p.uid, p.label, p.seed) == ("digit:7", 7, 0)
        with pytest.raises(ValueError, match="^the problem text is too long$"):
            mod.resolve_problem("7" * 201, None)
        with pytest.raises(ValueError, match="an image problem names one digit"):
            mod.resolve_problem("a cat", None)
    else:
        p = mod.resolve_problem("  a red\n cube ", "test:3")
        assert (p.prompt, p.seed) == ("a red cube", 0) and p.uid.startswith("prompt:")
        assert mod.resolve_problem("a red cube", None).uid == p.uid
        assert mod.resolve_problem("x " * 250, None).prompt == "x " * 249 + "x"  # 499 after folding: fits
        with pytest.raises(ValueError, match=re.escape("the prompt is too long (at most 500 characters)")):
            mod.resolve_problem("x" * 501, None)


def test_node_payload_is_invisible_to_strategies():
    # strategies only see Node fields; the payload is opaque to them
    n = Node(id="n0", parent=None, depth=0, preview="digit 1")
    assert n.payload is None
