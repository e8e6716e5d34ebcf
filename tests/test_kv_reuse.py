"""KV reuse across search steps (backends/text/kv_reuse.py): the store, a continued prefill against a fresh one,
the policy and the likelihood PRM with and without it, and whole runs on the embedded models (same answers and
trees on the same seeds, what is encoded, the budget's bound)."""
from __future__ import annotations

import pytest
import torch

from backends.errors import InputError
from backends.text import kv_reuse
from backends.text.kv_reuse import KVStore
from backends.text.reasoning import parse_text_options
from backends.text.transformers_lm import CausalLMPolicy
from engine.run import RunConfig, run_events
from tests.conftest import embedded_models_ready

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ready, why = embedded_models_ready()
needs_embedded = pytest.mark.skipif(not ready, reason=why)


@pytest.fixture(scope="module")
def policy(random_lm_path):
    return CausalLMPolicy(str(random_lm_path), device="cpu")


def ids_of(policy, text: str) -> list[int]:
    return policy.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_continued_prefill_gives_the_logits_of_a_fresh_one_and_encodes_only_the_rest(policy):
    store = KVStore()
    first = [ids_of(policy, "Start with 3. Add 4.\n"), ids_of(policy, "12 * 7 = 84\n")]
    kv_reuse.prefill(policy.model, store, first, 0, policy.device)
    assert not store.entries  # prefill alone keeps nothing: the caller decides what to keep
    pre = kv_reuse.prefill(policy.model, store, first, 0, policy.device)
    for row, ids in enumerate(first):
        kv_reuse.keep(store, pre.cache, row, pre.mask[row].nonzero().flatten(), tuple(ids))
    # one continues a stored sequence, one shares only a part of one, one is new, one repeats the first
    asked = [first[0] + ids_of(policy, "3 + 4 = 7\n"), ids_of(policy, "12 * 7 = 8"),
             ids_of(policy, "x y"), first[0] + ids_of(policy, "3 + 4 = 7\n")]
    pre = kv_reuse.prefill(policy.model, store, asked, 0, policy.device)
    assert pre.reused == [len(first[0]), len(ids_of(policy, "12 * 7 = 8")) - 1, 0, len(first[0])]
    assert pre.encoded == [len(asked[0]) - len(first[0]), 1, len(asked[2]), 0]
    for row, ids in enumerate(asked):
        fresh = policy.model(input_ids=torch.tensor([ids])).logits[0, -1]
        assert torch.allclose(pre.logits[row], fresh, atol=1e-4), row


def test_store_evicts_least_recently_used_within_its_budget(policy):
    layer = (torch.zeros(2, 10, 8), torch.zeros(2, 10, 8))
    one = 2 * layer[0].numel() * 4
    store = KVStore(budget_bytes=2 * one)
    store.put((1, 2, 3), [layer])
    store.put((4, 5, 6), [layer])
    assert store.longest((1, 2, 3, 9), 3)[1] == 3  # touches (1, 2, 3): (4, 5, 6) is now the oldest
    store.put((7, 8), [layer])
    assert set(store.entries) == {(1, 2, 3), (7, 8)} and store.evictions == 1
    assert store.bytes == 2 * one and store.peak_bytes == 2 * one
    assert store.longest((4, 5, 6), 3) == (None, 0)
    assert store.longest((1, 2, 7), 3)[1] == 2  # a shared part of an entry is reused too


def test_policy_with_a_store_generates_what_it_generates_without_one(policy):
    store = policy.new_kv_store()
    prompt = "Start with 3. Add 4.\n"
    for temperature in (0.0, 1.0):
        plain = policy.generate_steps([prompt], k=3, temperature=temperature, seed=5, max_new_tokens=10)
        kept = policy.generate_steps([prompt], k=3, temperature=temperature, seed=5, max_new_tokens=10,
                                     kv_store=store)
        assert [s.text for s in kept[0]] == [s.text for s in plain[0]]
        children = [prompt + s.text + "\n" for s in plain[0]]
        plain2 = policy.generate_steps(children, k=2, temperature=temperature, seed=6, max_new_tokens=10)
        kept2 = policy.generate_steps(children, k=2, temperature=temperature, seed=6, max_new_tokens=10,
                                      kv_store=store)
        assert [[s.text for s in g] for g in kept2] == [[s.text for s in g] for g in plain2]
        encoded = sum(s.prompt_tokens for g in kept2 for s in g)
        distinct = {tuple(ids_of(policy, c)) for c in children}
        assert encoded < sum(len(c) for c in distinct)  # only what no earlier call encoded
        assert sum(s.prompt_tokens for g in plain2 for s in g) == sum(len(ids_of(policy, c)) for c in children)
    assert kept2[0][0].cost.kv_bytes_peak >= store.peak_bytes > 0


def test_options_parse_and_refuse_bad_values():
    assert parse_text_options({}).kv_reuse and parse_text_options({}).drafting == "off"
    assert not parse_text_options({"kv_reuse": "off"}).kv_reuse
    assert parse_text_options({"kv_budget_mb": "1.5"}).kv_budget_bytes == int(1.5 * 2**20)
    for bad in ({"kv_reuse": "maybe"}, {"kv_budget_mb": "-1"}, {"drafting": "eagle"}, {"steps": "3"}):
        with pytest.raises(InputError):
            parse_text_options(bad)


def run(strategy: str, reuse: str, problem: str, **options) -> list[dict]:
    cfg = RunConfig(model="tiny-arith-s", verifier="tiny-prm", strategy=strategy, budget=16, problem_id=problem,
                    options={"kv_reuse": reuse, **options})
    return list(run_events(cfg))


def shape(events: list[dict]) -> list[tuple]:
    """What a run decided: every node, prune and selection, and the answer (not its timings or counters)."""
    return [(e["type"], e.get("id"), e.get("parent"), e.get("preview"), e.get("answer"))
            for e in events if e["type"] in ("NodeAdded", "NodePruned", "Selected", "RunFinished")]


@needs_embedded
@pytest.mark.parametrize("strategy", ["beam_search", "particle_filtering"])
def test_runs_decide_the_same_with_reuse_and_encode_a_quarter_token_per_generated_one_at_most(strategy):
    for problem in ("test:1", "test:2", "test:8"):
        off, on = run(strategy, "off", problem), run(strategy, "on", problem)
        assert shape(on) == shape(off)
        scored_off = {e["id"]: e["score"] for e in off if e["type"] == "NodeScored"}
        scored_on = {e["id"]: e["score"] for e in on if e["type"] == "NodeScored"}
        assert scored_on.keys() == scored_off.keys()
        assert max(abs(scored_on[k] - scored_off[k]) for k in scored_on) < 1e-4  # float32 summation order
        t_off, t_on = off[-1]["totals"], on[-1]["totals"]
        assert t_on["generated_tokens"] == t_off["generated_tokens"]
        assert t_on["prompt_tokens"] <= 0.25 * t_on["generated_tokens"] < t_off["prompt_tokens"]
        assert t_on["verifier_tokens"] < t_off["verifier_tokens"]
        assert t_on["kv_bytes_peak"] > 0


@needs_embedded
def test_a_tight_budget_evicts_and_still_decides_the_same():
    off = run("beam_search", "off", "test:2")
    tight = run("beam_search", "on", "test:2", kv_budget_mb="0.3")  # a few entries of ~40 tokens at 3 KiB each
    roomy = run("beam_search", "on", "test:2")
    assert shape(tight) == shape(off)
    prefill = [r[-1]["totals"]["prompt_tokens"] for r in (roomy, tight, off)]
    assert prefill == sorted(set(prefill))  # evicted entries are encoded again, not lost
    assert tight[-1]["totals"]["kv_bytes_peak"] < roomy[-1]["totals"]["kv_bytes_peak"]


@needs_embedded
def test_the_prm_scored_from_its_parents_cache_is_exact_in_float64():
    """A child's cumulative log-probabilities from the parent's cache (one overlapping token) against one full
    forward pass of the child, in float64: equal to 1e-10, so the 1e-5 gaps of float32 runs are summation
    order, not a token read from the wrong place."""
    from pathlib import Path

    from backends.embedded import arith
    from backends.text.prm_families import LikelihoodPRM

    prm = LikelihoodPRM(str(Path(__file__).resolve().parents[1] / "backends/embedded/models/tiny-prm"),
                        device="cpu")
    prm.model.double()
    problem = arith.problem_at("test", 17)
    steps = arith.split_steps(problem.solution)
    store = prm.new_kv_store()
    for n in range(1, len(steps) + 1):
        (got,), cost = prm.score_steps(problem, problem.text + "\n", [steps[:n]], kv_store=store)
        ids, positions = prm._encode(problem.text, steps[:n])
        with torch.inference_mode():
            logp = torch.log_softmax(prm.model(input_ids=torch.tensor([ids])).logits[0], -1)
        cum = torch.cat([torch.zeros(1, dtype=logp.dtype),
                         logp[:-1].gather(-1, torch.tensor(ids[1:])[:, None]).squeeze(-1).cumsum(0)])
        assert got == pytest.approx(prm._read(cum, positions), abs=1e-10)
        if n > 1:  # the parent's tokens came from the store: the step's own, plus the one overlapping token
            assert cost.verifier_tokens == len(ids) - len(prm._encode(problem.text, steps[:n - 1])[0]) + 1
