"""The flow samplers (backends.image.flow, the image domain's flow_ode / flow_sde) and rollover budget forcing.

The math is checked where the answer is known: on Gaussian data the exact x0-hat is known in closed form, so
the ODE and its SDE conversion must keep the interpolant's marginals; with DDIM's noise levels as the grid
and no clipping, Euler on the linear interpolant must reproduce diffusers' DDIM (eta 0) step for step. The
paper's point is checked on the image space: copies of one particle stay identical under the ODE and
diverge under the SDE.
"""
from __future__ import annotations

import math

import pytest
import torch

from backends.image import flow
from backends.image.diffusion import DiffusionModel, FLOW_SCHEDULERS, Latent, Sampling, flow_predict, gaussian, noise_latent, sample
from backends.image.digits import parse_options
from backends.image.space import ImageSpace
from backends.errors import InputError
from strategies import rollover_budget_forcing as rbf
from strategies.core import Compute, Node, NodePruned, Score
from tests import image_models


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return image_models.tiny_model()


class Brightness:
    name = "brightness"

    def score(self, images, labels):
        return [float(torch.sigmoid(x.mean() * 4)) for x in images], Compute(verifier_calls=len(images))


def space(model, scheduler="flow_sde", steps=6, **kw):
    sampling = Sampling(steps=steps, scheduler=scheduler, diffusion=kw.pop("diffusion", 3.0),
                           interpolant=kw.pop("interpolant", "linear"))
    return ImageSpace(model, Brightness(), label=4, sampling=sampling, seed=kw.pop("seed", 0), **kw)


# ---- the math -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("interpolant", flow.INTERPOLANTS)
@pytest.mark.parametrize("strength", [0.0, 3.0])
def test_ode_and_sde_keep_the_marginals_of_gaussian_data(interpolant, strength):
    """Data N(0, v): x0-hat(x_s) = α v x / (α² v + σ²) exactly, so Var(x_s) must stay α² v + σ² along the way."""
    gen = torch.Generator().manual_seed(0)
    v, n, steps = 0.25, 40_000, 200
    top = flow.s_max(interpolant, torch.tensor([0.9999, 1e-6]))
    times = [top * (1 - i / steps) for i in range(steps)] + [0.0]
    a, sig, _, _ = flow.alpha_sigma(interpolant, times[0])
    x = torch.randn(n, generator=gen) * math.sqrt(a * a * v + sig * sig)
    for i in range(steps):
        s, s_next = times[i], times[i + 1]
        a, sig, _, _ = flow.alpha_sigma(interpolant, s)
        x0 = a * v * x / (a * a * v + sig * sig)
        if i == steps // 2:
            assert x.var().item() == pytest.approx(a * a * v + sig * sig, rel=0.04)
        x = flow.step(interpolant, x, x0, s, s_next, flow.diffusion_coefficient(strength, s), torch.randn(n, generator=gen))
    assert x.var().item() == pytest.approx(v, rel=0.04)


def test_sde_step_adds_noise_and_ode_step_does_not():
    x, x0 = torch.ones(1000), torch.zeros(1000)
    z = torch.randn(1000, generator=torch.Generator().manual_seed(1))
    ode = flow.step("linear", x, x0, 0.5, 0.4, 0.0, z)
    sde = flow.step("linear", x, x0, 0.5, 0.4, 0.75, z)
    assert torch.allclose(ode, torch.full_like(x, 0.8))     # Euler: x - Δ (ε - x0) with ε = x / s = 2
    assert sde.std() > 0.1 and ode.std() < 1e-6
    assert torch.equal(flow.step("linear", x, x0, 0.1, 0.0, 0.75, z), x0)  # the last step returns x0-hat


def test_timestep_mapping_inverts_the_ddpm_schedule(model):
    ac = model.scheduler("ddpm", 1).alphas_cumprod
    for k in (0, 7, 50, 99):
        assert flow.ddpm_timestep(ac, float(ac[k])) == pytest.approx(k, abs=1e-6)
    mid = flow.ddpm_timestep(ac, math.sqrt(float(ac[10]) * float(ac[11])))
    assert 10 < mid < 11
    grid = model.flow_grid("linear", 6)
    assert grid.times[0] < 1 and grid.times[-1] == 0 and len(grid.timesteps) == 6
    assert grid.timesteps[0] == pytest.approx(99, abs=1e-6)  # starts at the noisiest trained level
    assert model.flow_grid("vp", 6).times[0] == 1.0          # VP at s = 1 is still inside the trained range


def test_euler_on_the_linear_interpolant_is_ddim_on_ddims_noise_levels():
    """Reparameterisation check: same noise levels, no clipping: the flow ODE and DDIM (eta 0) agree."""
    cfg = {**image_models.SCHEDULER, "clip_sample": False}
    m = DiffusionModel.from_parts(image_models.tiny_unet(), cfg, name="no-clip")
    steps = 5
    sched = m.scheduler("ddim", steps)
    ac = sched.alphas_cumprod
    snr = [float(ac[int(t)] / (1 - ac[int(t)])) for t in sched.timesteps]
    times = [1 / (1 + math.sqrt(r)) for r in snr] + [0.0]
    grid = flow.make_grid("linear", steps, ac, times)
    assert grid.timesteps == pytest.approx([float(t) for t in sched.timesteps], abs=1e-4)
    z = gaussian(5, m.shape)
    want = sample(m, Sampling(steps=steps, eta=0.0), [2], [5])[0]
    assert torch.equal(z, noise_latent(m, 5, steps).x)
    a0, s0, _, _ = flow.alpha_sigma("linear", times[0])
    x = z * math.sqrt(a0 * a0 + s0 * s0)                    # the DDPM latent written on the interpolant
    for i in range(steps):
        s = times[i]
        eps, _ = m.eps(flow.ddpm_input("linear", x, s).unsqueeze(0), torch.tensor([grid.timesteps[i]]),
                       torch.tensor([2]), 1.0)
        x0 = flow.x0_from_eps("linear", x, eps[0], s, None)
        x = flow.step("linear", x, x0, s, times[i + 1], 0.0, None)
    assert torch.allclose(x, want, atol=1e-4), (x - want).abs().max()


# ---- the sampler in the image space -----------------------------------------------------------------------

@pytest.mark.parametrize("interpolant", flow.INTERPOLANTS)
def test_resampled_copies_stay_identical_under_the_ode_and_diverge_under_the_sde(model, interpolant):
    """The seed paper's point: particle methods need the SDE. One particle at step 2 is copied four times
    (``resample``, each copy with its own RNG key) and every copy is denoised to the end."""
    finals = {}
    for kind in ("flow_ode", "flow_sde"):
        sp = space(model, kind, interpolant=interpolant)
        root = sp.initial(1)[0]
        ancestor = sp.extend(sp.extend([root], 1)[0], 1)[0][0]
        copies = sp.resample([ancestor], [0, 0, 0, 0])
        assert len({c.payload.key for c in copies}) == 4
        leaves = sp.complete(copies)
        finals[kind] = torch.stack([leaf.payload.x for leaf in leaves])
    ode, sde = finals["flow_ode"], finals["flow_sde"]
    assert (ode - ode[0]).abs().max() < 1e-5                 # ODE: four identical copies
    pairwise = [(sde[i] - sde[j]).abs().max().item() for i in range(4) for j in range(i + 1, 4)]
    assert min(pairwise) > 0.05                               # SDE: every pair differs


def test_a_flow_candidate_is_scored_on_its_own_x0_hat_and_costs_one_nfe(model):
    sp = space(model)
    root = sp.initial(1)[0]
    noise = sp.noises(root, 1)[0]
    before = sp.meter.nfe
    sp.score([noise])                                          # a noise gets its x0-hat when first scored
    assert sp.meter.nfe - before == 1 and noise.payload.x0 is not None
    before = sp.meter.nfe
    kids = sp.extend([noise], 3)[0]                            # reuses the noise's x0-hat: one NFE per child
    assert sp.meter.nfe - before == 3
    xs = [k.payload.x0 for k in kids]
    assert not torch.allclose(xs[0], xs[1])                    # siblings differ, and so do their x0-hats
    fresh = Latent(kids[0].payload.x.clone(), 1, 6, 0, (), 0)
    flow_predict(model, sp.sampling, 4, [fresh])
    assert torch.allclose(fresh.x0, kids[0].payload.x0, atol=1e-6)
    before = sp.meter.nfe
    leaves = sp.complete([root] * 2)                           # a full trajectory: steps NFE
    assert sp.meter.nfe - before == 2 * 6 and all(leaf.finished for leaf in leaves)
    assert torch.equal(leaves[0].payload.x, leaves[0].payload.x0)


@pytest.mark.parametrize("kind", FLOW_SCHEDULERS)
def test_flow_candidates_regenerate_exactly_from_their_recipes(model, kind):
    sp = space(model, kind, interpolant="vp" if kind == "flow_sde" else "linear")
    root = sp.initial(1)[0]
    a = sp.extend(sp.extend([root], 2)[0], 1)[1][0]
    b = sp.perturb([a], 0.9, 1)[0][0]
    c = sp.renoise(sp.extend([b], 2)[0][1:], 1, 1)[0][0]
    copy = sp.resample([c], [0, 0])[1]
    leaf = sp.complete([copy])[0]
    torch.testing.assert_close(sp.regenerate(leaf), leaf.payload.x, rtol=1e-4, atol=1e-5)


def test_flow_options_are_validated():
    assert parse_options({"scheduler": "flow_sde", "diffusion": "1.5", "interpolant": "vp"})["diffusion"] == 1.5
    for bad, msg in [({"scheduler": "euler"}, "scheduler must be one of"), ({"diffusion": 11}, "diffusion must be"),
                     ({"interpolant": "cosine"}, "interpolant must be one of"), ({"diffusion": "x"}, "bad value")]:
        with pytest.raises(InputError, match=msg):
            parse_options(bad)


def test_rbf_asks_for_a_flow_sampler(tmp_path):
    from engine.run import ConfigError, RunConfig, prepare
    models = image_models.build(tmp_path)
    cfg = dict(domain="image", model=str(models["model"]), verifier=str(models["verifier"]),
               judge=str(models["judge"]), strategy="rollover_budget_forcing", budget=2, problem_id="test:1")
    with pytest.raises(ConfigError, match="choose a flow sampler"):
        prepare(RunConfig(**cfg, options={"scheduler": "ddim"}))
    assert prepare(RunConfig(**cfg)).domain_run.options["scheduler"] == "flow_sde"


# ---- rollover budget forcing as an algorithm ---------------------------------------------------------------

class Scripted:
    """An image search space whose candidates' rewards are scripted per depth, in the order they are drawn."""

    def __init__(self, rewards: dict[int, list[float]], steps: int):
        self.max_steps, self.seed = steps, 0
        self.rewards = {d: list(r) for d, r in rewards.items()}
        self.value: dict[str, float] = {}
        self.children: dict[int, int] = {}
        self.ids = 0

    def _node(self, parent, depth):
        self.ids += 1
        n = Node(id=f"n{self.ids}", parent=parent.id if parent else None, depth=depth, preview="",
                 finished=depth == self.max_steps, answer="7" if depth == self.max_steps else None)
        if parent is not None:
            self.value[n.id] = self.rewards[depth].pop(0) if depth < self.max_steps else self.value[parent.id]
        return n

    def initial(self, n):
        return [self._node(None, 0) for _ in range(n)]

    def noises(self, parent, n, steps=None):
        return [self._node(parent, 0) for _ in range(n)]

    def extend(self, nodes, k, temperature=None):
        for p in nodes:
            self.children[p.depth + 1] = self.children.get(p.depth + 1, 0) + k
        return [[self._node(p, p.depth + 1) for _ in range(k)] for p in nodes]

    def score(self, nodes):
        return [Score(self.value[n.id], [self.value[n.id]]) for n in nodes]

    def extract(self, node):
        return node.answer


def test_rbf_moves_on_at_the_first_better_candidate_and_rolls_the_rest_over():
    # one chain, n = 2 trajectories of 4 steps = 8 NFE: 1 initial noise, quotas [2, 2, 3] for steps 1..3
    assert rbf.plan(8, 4, 0.1) == (1, [2, 2, 3])
    sp = Scripted({0: [0.5], 1: [0.6, 0.0], 2: [0.4, 0.3, 0.55], 3: [0.1, 0.9, 0.2, 0.0]}, steps=4)
    events = list(rbf.search(sp, rbf.Params(n=2, chains=1)))
    # step 1: the first candidate beats 0.5, its leftover 1 rolls over; step 2 (quota 3) finds nothing
    # better than 0.6 and takes its best (0.55); the last search step spends all 3 and keeps 0.9
    assert sp.children == {1: 1, 2: 3, 3: 3, 4: 1}
    assert 1 + sum(sp.children[d] for d in (1, 2, 3)) == 8     # every NFE of the budget, none more
    end = events[-1]
    assert end.score == 0.9
    pruned = {e.id for e in events if isinstance(e, NodePruned)}
    by_id = {e.id: e for e in events if type(e).__name__ == "NodeAdded"}
    path, node = [], by_id[end.node_id]
    while node.parent is not None:                             # the chosen image's lineage, never pruned
        assert node.id not in pruned
        path.append(sp.value[node.id])
        node = by_id[node.parent]
    assert path == [0.9, 0.9, 0.55, 0.6, 0.5]
    assert len(pruned) == 2 + 2                                # step 2's two others, step 3's two others


def test_rbf_budget_split_matches_random_search_nfe():
    for n, steps, chains in [(1, 20, 2), (4, 20, 2), (16, 20, 2), (5, 3, 4), (3, 1, 2)]:
        bs = rbf.budgets(n, steps, chains)
        assert sum(bs) == n * steps and len(bs) == min(chains, n)
        for b in bs:
            init, quotas = rbf.plan(b, steps, 0.1)
            assert init >= 1 and all(q >= 1 for q in quotas) and init + sum(quotas) == b


def test_rbf_on_the_flow_sde_spends_exactly_n_times_steps(model):
    sp = space(model, "flow_sde", steps=5)
    events = list(rbf.search(sp, rbf.Params(n=3, chains=2)))
    assert sp.meter.nfe == 3 * 5
    end = events[-1]
    assert type(end).__name__ == "RunFinished" and len(end.candidates) == 2
