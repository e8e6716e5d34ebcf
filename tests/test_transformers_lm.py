import pytest
import torch

from backends.text.transformers_lm import CausalLMPolicy
from strategies.core import CancelToken, Cancelled


@pytest.fixture(scope="module")
def policy(random_lm_path):
    return CausalLMPolicy(str(random_lm_path), device="cpu")


def test_batched_greedy_equals_one_by_one(policy):
    prefixes = ["Start with 3. Add 4.\n", "12 * 7 = ", "x"]
    batched = policy.generate_steps(prefixes, k=1, temperature=0, max_new_tokens=12, stop_at_delimiter=False)
    for prefix, group in zip(prefixes, batched):
        alone = policy.generate_steps([prefix], k=1, temperature=0, max_new_tokens=12, stop_at_delimiter=False)
        assert group[0].text == alone[0][0].text


def test_stops_per_sequence_at_delimiter_and_counts_tokens(policy):
    prefixes = ["Start with 3. Add 4.\n", "a b c d e f g h"]
    groups = policy.generate_steps(prefixes, k=3, temperature=1.0, seed=1, max_new_tokens=20)
    tok = policy.tokenizer
    for prefix, group in zip(prefixes, groups):
        assert len(group) == 3
        assert group[0].prompt_tokens == len(tok(prefix, add_special_tokens=False)["input_ids"])
        assert all(s.prompt_tokens == 0 for s in group[1:])  # the prefix is prefilled once for k samples
        for s in group:
            assert "\n" not in s.text
            # generated tokens = the step's tokens plus the delimiter or EOS that ended it (if any)
            n_text = len(tok(s.text, add_special_tokens=False)["input_ids"])
            assert s.generated_tokens in (n_text, n_text + 1)
            assert s.generated_tokens <= 20


def test_sampling_is_reproducible_from_seed(policy):
    a = policy.generate_steps(["1 + 1 = "], k=4, temperature=1.0, seed=7, max_new_tokens=8)
    b = policy.generate_steps(["1 + 1 = "], k=4, temperature=1.0, seed=7, max_new_tokens=8)
    c = policy.generate_steps(["1 + 1 = "], k=4, temperature=1.0, seed=8, max_new_tokens=8)
    assert [s.text for s in a[0]] == [s.text for s in b[0]]
    assert [s.text for s in a[0]] != [s.text for s in c[0]]


def test_cancel_stops_generation(policy):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        policy.generate_steps(["1 + 1 = "], k=2, temperature=1.0, cancel=token)
