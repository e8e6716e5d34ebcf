"""The Kinetics cost axis: memory traffic counted where it is spent (``Compute.mem_bytes``), priced in eFLOPs at an
accelerator's FLOPs per byte, in the meter, Compare and Scaling; runs stored before the counter still load."""
from __future__ import annotations

import json

import pytest

from backends.text.transformers_lm import CausalLMPolicy, decode_kv_reads, kv_token_bytes
from strategies.core import H100_FLOPS_PER_BYTE, Compute, eflops_of
from ui.figures.curves import score_vs_compute_figure
from ui.figures.sweeps import compute_optimal_table, scaling_figure
from ui.figures.tables import compute_meter_html, metrics_rows
from ui.fold import fold

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_h100_figure_is_its_bf16_dense_flops_over_its_hbm_bandwidth():
    assert H100_FLOPS_PER_BYTE == pytest.approx(989.4e12 / 3.35e12)
    assert 295 < H100_FLOPS_PER_BYTE < 296


def test_compute_adds_subtracts_and_round_trips_memory_bytes():
    a = Compute(flops=10.0, mem_bytes=100.0, generated_tokens=2)
    a.add(Compute(flops=1.0, mem_bytes=5.0))
    assert a.mem_bytes == 105.0
    assert a.minus(Compute(mem_bytes=5.0)).mem_bytes == 100.0
    d = a.to_dict()
    assert d["mem_bytes"] == 105.0 and Compute.from_dict(d) == a
    assert eflops_of(d, 2.0) == 11.0 + 105.0 * 2.0


def test_a_run_stored_before_the_counter_loads_and_has_no_eflops():
    old = {"prompt_tokens": 5, "generated_tokens": 7, "flops": 3e6, "tokens": 12}
    assert Compute.from_dict(old).mem_bytes == 0.0
    assert eflops_of(old) is None  # unknown, not equal to its FLOPs
    html = compute_meter_html(old)
    assert "memory traffic" in html and "not counted" in html


def test_a_run_that_spent_tokens_with_no_memory_charged_shows_eflops_not_counted():
    server_run = Compute(prompt_tokens=9, generated_tokens=30, model_calls=3).to_dict()  # an OpenAI server's counts
    assert eflops_of(server_run) is None
    assert eflops_of(Compute().to_dict()) == 0.0  # nothing spent, nothing to price


def test_decode_reads_sum_the_cache_length_at_every_forward():
    assert decode_kv_reads(3, 0) == 0
    assert decode_kv_reads(3, 2) == (3 + 1) + (3 + 2)
    assert kv_token_bytes(layers=2, kv_width=8, bytes_per_value=4) == 2 * 2 * 8 * 4


@pytest.fixture(scope="module")
def policy(random_lm_path):
    return CausalLMPolicy(str(random_lm_path), device="cpu")


@pytest.mark.parametrize("k", [1, 3])
def test_policy_memory_is_the_weights_per_forward_plus_the_cache_each_forward_reads(policy, k):
    """Checked against the forwards the model really ran (a hook sees each one's rows and mask width)."""
    seen: list[tuple[int, int, int]] = []  # (rows, new tokens, mask width) per forward

    def hook(_module, _args, kwargs):
        ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
        seen.append((ids.shape[0], ids.shape[1], mask.shape[1]))

    handle = policy.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        groups = policy.generate_steps(["Start with 3. Add 4.\n", "12 * 7"], k=k, temperature=1.0, seed=3,
                                       max_new_tokens=9)
    finally:
        handle.remove()
    samples = [s for g in groups for s in g]
    token_kv = kv_token_bytes(policy.layers, policy.kv_width, policy.bytes_per_value)
    weights = policy.n_params * policy.bytes_per_value
    prefill_rows, width, prefill_width = seen[0]
    assert prefill_rows == 2 and width == prefill_width
    decode_reads = sum(rows * mask_width for rows, new, mask_width in seen[1:])
    copies = 2 * k * width if k > 1 else 0
    expected = weights * len(seen) + token_kv * (2 * width + copies + decode_reads)
    assert sum(s.cost.mem_bytes for s in samples) == pytest.approx(expected)
    assert samples[0].cost.model_calls == len(seen)
    # every row reads the same padded cache; the prefix's first sample also carries its prefill write
    assert groups[1][0].cost.mem_bytes - groups[1][-1].cost.mem_bytes == (token_kv * width if k > 1 else 0)


def test_weights_dominate_a_tiny_models_memory_and_eflops_follow_forwards_not_tokens():
    """Four samples of one prefix in one batch read the weights as often as one sample: memory, unlike FLOPs,
    grows with the forwards rather than the tokens (Kinetics' point, on a model whose weights dwarf its cache)."""
    from backends.catalog import EMBEDDED_DIR
    small = CausalLMPolicy(str(EMBEDDED_DIR / "tiny-arith-s"), device="cpu")
    one, four = (small.generate_steps(["Start with 3. Add 4.\n"], k=k, temperature=0, max_new_tokens=8,
                                      stop_at_delimiter=False) for k in (1, 4))
    assert one[0][0].cost.model_calls == four[0][0].cost.model_calls
    mem1, mem4 = (sum(s.cost.mem_bytes for g in r for s in g) for r in (one, four))
    flops1, flops4 = (sum(s.cost.flops for g in r for s in g) for r in (one, four))
    assert flops4 > 2 * flops1          # four sequences' arithmetic (the prompt's once)
    assert mem1 < mem4 < 1.1 * mem1     # one read of the weights per forward, shared by the batch


def test_an_embedded_run_counts_policy_and_verifier_memory(store):
    from engine.run import RunConfig, execute
    totals = {}
    for verifier in ("oracle", "tiny-prm"):
        last = None
        for last in execute(RunConfig(model="tiny-arith-s", verifier=verifier, strategy="best_of_n", budget=2,
                                      problem_id="test:1", seed=0), store):
            pass
        assert last["status"] == "finished"
        totals[verifier] = last["compute"]
    assert totals["oracle"]["mem_bytes"] > 0
    assert totals["oracle"]["generated_tokens"] == totals["tiny-prm"]["generated_tokens"]
    # the same samples, plus the PRM reading its 1.9 M float32 weights at least once
    assert totals["tiny-prm"]["mem_bytes"] - totals["oracle"]["mem_bytes"] >= 1_918_080 * 4
    stored = store.get_run(store.list_runs()[0]["id"])["totals"]
    assert stored["mem_bytes"] > 0


def test_diffusion_memory_is_the_unets_weights_once_per_batched_forward():
    from backends.image.diffusion import Sampling, denoise, noise_latent
    from tests.image_models import tiny_model
    model = tiny_model()
    weights = sum(p.numel() * p.element_size() for p in model.unet.parameters())
    lats = [noise_latent(model, seed, 4) for seed in range(3)]
    for guidance in (1.0, 3.0):  # a guided batch runs both halves in one forward: same weight read
        _, cost = denoise(model, Sampling(steps=4, guidance=guidance), 2, lats)
        assert cost.model_calls == 1 and cost.mem_bytes == weights


def test_meter_and_compare_show_eflops_at_the_chosen_figure():
    totals = Compute(prompt_tokens=4, generated_tokens=10, flops=1e9, mem_bytes=2e6).to_dict()
    html = compute_meter_html(totals, flops_per_byte=100.0)
    assert "eFLOPs (100 FLOP/B)" in html and "1.20 G" in html   # 1e9 + 2e6 x 100
    assert "eFLOPs (295 FLOP/B)" in compute_meter_html(totals)  # the H100 default
    st = fold([{"type": "RunStarted", "run_id": "r", "strategy": "best_of_n", "config": {}},
               {"type": "RunEnded", "run_id": "r", "status": "finished", "compute": totals}])
    _, rows = metrics_rows([st], ["a"], flops_per_byte=100.0)
    assert ["eFLOPs (100 FLOP/B)", "1.20 G"] in rows


def _events(mem: float | None) -> list[dict]:
    cost = {"prompt_tokens": 4, "generated_tokens": 10, "flops": 1000.0}
    if mem is not None:
        cost["mem_bytes"] = mem
    return [{"type": "RunStarted", "run_id": "r", "strategy": "best_of_n", "config": {}},
            {"type": "NodeAdded", "id": "a", "parent": None, "step": 1, "preview": "x"},
            {"type": "Cost", "totals": cost, "delta": cost},
            {"type": "NodeScored", "id": "a", "score": 0.5, "per_step": [0.5]}]


def test_compare_curve_on_eflops_prices_memory_and_leaves_out_uncounted_runs():
    fig = score_vs_compute_figure([_events(10.0), _events(None)], ["counted", "old"], x="eflops",
                                  flops_per_byte=7.0)
    assert [t.name for t in fig.data] == ["counted"]
    assert float(fig.data[0].x[0]) == pytest.approx(1000.0 + 10.0 * 7.0)
    assert "without memory counts" in json.dumps(fig.layout.annotations[0].to_plotly_json())


def _cell(strategy, budget, acc, tokens, flops, mem):
    return {"strategy": strategy, "budget": budget, "accuracy": acc, "n_problems": 10, "by_difficulty": {},
            "compute": {"tokens": tokens, "generated_tokens": tokens, "flops": flops, "mem_bytes": mem}}


# Many cheap parallel samples (few forwards, many tokens) against a sequential search (many forwards, few tokens):
# ranked by tokens the search wins at a small budget, ranked by eFLOPs the samples do.
KINETICS_SWEEP = {"results": [
    _cell("parallel", 4, 0.50, 400, 4e5, 1e3),
    _cell("parallel", 16, 0.60, 1600, 1.6e6, 2e3),
    _cell("sequential", 4, 0.55, 100, 1e5, 1e5),
    _cell("sequential", 16, 0.65, 400, 4e5, 4e5),
], "oracle": {"pass@k": {}}}


def test_the_compute_optimal_frontier_moves_when_memory_is_priced():
    by_tokens = compute_optimal_table(KINETICS_SWEEP, x="tokens", rank="compute")
    by_eflops = compute_optimal_table(KINETICS_SWEEP, x="eflops", rank="compute", flops_per_byte=300.0)
    assert [(r[2], r[1]) for r in by_tokens] == [("sequential", 4), ("sequential", 16)]
    assert [(r[2], r[1]) for r in by_eflops] == [("parallel", 4), ("parallel", 16), ("sequential", 16)]
    assert by_eflops[0][4] == "700.00 k"  # 4e5 + 1e3 x 300
    # at matched budget the ranking is by accuracy, whatever the axis
    assert [r[2] for r in compute_optimal_table(KINETICS_SWEEP, x="eflops")] == ["sequential", "sequential"]


def test_scaling_figure_on_eflops_and_on_a_sweep_without_memory_counts():
    fig = scaling_figure(KINETICS_SWEEP, x="eflops", flops_per_byte=300.0)
    line = next(t for t in fig.data if t.name == "parallel")
    assert list(line.x) == pytest.approx([4e5 + 3e5, 1.6e6 + 6e5])
    assert "eFLOPs per problem (300 FLOPs per byte)" in fig.layout.xaxis.title.text
    old = {"results": [{**c, "compute": {k: v for k, v in c["compute"].items() if k != "mem_bytes"}}
                       for c in KINETICS_SWEEP["results"]]}
    blank = scaling_figure(old, x="eflops")
    assert not blank.data and "memory" in blank.layout.annotations[0].text
