"""DeepConf: its confidence arithmetic, its stop token and its filtered vote on scripted traces; the policies'
top-k log-probabilities and stop rule on the embedded model; a server without logprobs; one embedded run."""
from __future__ import annotations

import itertools
import math

import pytest

from strategies import deepconf
from strategies.core import Compute, Node
from strategies.params import build
from tests.conftest import embedded_models_ready
from tests.test_openai_backend import Scripted

ready, why = embedded_models_ready()


class ScriptedTraces:
    """Roll-outs taken in order from a script of (answer, token confidences): a token of confidence c has top-k
    log-probabilities all equal to -c, so its confidence is exactly c. ``stop`` is asked after each token, as
    the transformers policy asks it, and a stopped trace keeps the tokens before the one where it fired."""

    max_steps = 4
    seed = 0

    def __init__(self, script: list[tuple[str, list[float]]]) -> None:
        self.script = list(script)
        self.ids = itertools.count()
        self.lps: dict[str, list[list[float]]] = {}
        self.calls: list[int] = []

    def initial(self, n: int) -> list[Node]:
        return [Node(id=f"r{next(self.ids)}", parent=None, depth=0, preview="Q") for _ in range(n)]

    def complete_with_logprobs(self, nodes, top_k, stop=None, temperature=None):
        self.calls.append(len(nodes))
        out = []
        for root in nodes:
            answer, confs = self.script.pop(0)
            lps, kept = [], len(confs)
            for i, c in enumerate(confs):
                lps.append([-c] * top_k)
                if stop is not None and stop(lps):
                    kept = i
                    break
            stopped = kept < len(confs)
            node = Node(id=f"t{next(self.ids)}", parent=root.id, depth=1, preview=answer, finished=not stopped,
                        answer=None if stopped else answer, cost=Compute(generated_tokens=kept))
            self.lps[node.id] = lps
            out.append(node)
        return out

    def token_logprobs(self, node):
        return self.lps.get(node.id, [])

    def extract(self, node):
        return node.answer


def run(space, **values):
    events = [e.to_dict() for e in deepconf.search(space, build(deepconf.Params, values), None)]
    return events, {e["id"]: e for e in events if e["type"] == "TraceConfidence"}


def test_token_and_group_confidence_follow_the_paper():
    assert deepconf.token_confidence([-0.5, -1.5]) == 1.0
    assert deepconf.group_confidences([1, 2, 3, 4], 2) == [1.5, 2.5, 3.5]
    assert deepconf.group_confidences([1, 3], 4) == [2.0]  # shorter than a window: one group, its mean
    confs = [5, 5, 1, 5, 5, 5, 5, 5, 5, 5, 5, 5]
    assert deepconf.trace_confidence(confs, 2, "lowest_group") == 3.0
    assert deepconf.trace_confidence(confs, 2, "tail") == 5.0
    assert math.isclose(deepconf.trace_confidence(confs, 1, "bottom10"), 1.0)
    assert deepconf.quantile([1, 2, 3, 4, 5], 0.9) == pytest.approx(4.6)  # numpy's linear interpolation


def test_online_threshold_from_warmup_and_the_stop_token():
    """Warm-up lowest group confidences 2, 4, 6, 8 with keep = 0.5 give the threshold 5 (their median); a later
    trace whose 2-token window mean first falls below 5 at its 4th token is stopped there, keeping 3 tokens,
    and neither it nor the warm-up traces below 5 vote."""
    warm = [("7", [2.0] * 4), ("9", [4.0] * 4), ("1", [6.0] * 4), ("1", [8.0] * 4)]
    later = [("9", [9.0, 9.0, 6.0, 3.0, 9.0, 9.0]),   # windows 9, 7.5, 4.5 -> stopped at the 4th token
             ("9", [6.0, 6.0, 6.0, 6.0])]             # never below: finishes and votes
    space = ScriptedTraces(warm + later)
    events, conf = run(space, n=6, warmup=4, keep=0.5, window=2, mode="online")
    assert space.calls == [4, 2]
    thresholds = {c["threshold"] for c in conf.values()}
    assert thresholds == {5.0}
    stopped = [c for c in conf.values() if c["stopped_at"] is not None]
    assert len(stopped) == 1 and stopped[0]["stopped_at"] == 3 and stopped[0]["tokens"] == 4
    cut = next(e for e in events if e["type"] == "NodeAdded" and e["id"] == stopped[0]["id"])
    assert cut["node_cost"]["generated_tokens"] == 3 and not cut["finished"]
    pruned = {e["id"] for e in events if e["type"] == "NodePruned"}
    voters = [c for i, c in conf.items() if i not in pruned]
    assert sorted(c["confidence"] for c in voters) == [6.0, 6.0, 8.0]
    # the voters: "1" (6 + 8) against "9" (6): the confidence-weighted vote picks 1
    assert events[-1]["answer"] == "1"


def test_offline_keeps_the_most_confident_share_and_weights_the_vote():
    """Five traces; keep = 0.6 drops the two least confident; among the rest "3" has fewer traces than "4" would
    have had, but the kept ones sum more confidence."""
    script = [("4", [1.0] * 3), ("4", [1.5] * 3), ("4", [3.0] * 3), ("3", [9.0] * 3), ("3", [8.0] * 3)]
    events, conf = run(ScriptedTraces(script), n=5, keep=0.6, window=2, mode="offline")
    pruned = {e["id"] for e in events if e["type"] == "NodePruned"}
    assert sorted(conf[i]["confidence"] for i in pruned) == [1.0, 1.5]
    assert events[-1]["answer"] == "3"
    assert all(c["stopped_at"] is None for c in conf.values())


def test_deepconf_refuses_a_domain_without_token_probabilities():
    class NoLogprobs:
        max_steps, seed = 2, 0

    with pytest.raises(ValueError, match="token probabilities"):
        list(deepconf.search(NoLogprobs(), deepconf.Params(), None))


def test_a_server_without_logprobs_is_a_clear_error():
    from backends.text.openai_backend import EndpointError, OpenAIPolicy

    server = Scripted(lambda body: {"choices": [{"index": 0, "text": "x = 1", "finish_reason": "stop"}],
                                    "usage": {"prompt_tokens": 3, "completion_tokens": 3}})
    try:
        policy = OpenAIPolicy("m", base_url=server.url, retries=0)
        with pytest.raises(EndpointError, match="no token log-probabilities"):
            policy.generate_steps(["Q"], 1, stop_at_delimiter=False, top_logprobs=5)
        assert server.bodies[-1]["logprobs"] == 5
    finally:
        server.close()


def test_a_server_with_logprobs_is_cut_where_the_rule_fires():
    """The completions API's per-token top_logprobs reach the sample, and the stop rule cuts the text there
    (the server generated every token, so every token stays charged)."""
    from backends.text.openai_backend import OpenAIPolicy

    tokens = ["a", "b", "c", "d"]
    reply = {"choices": [{"index": 0, "text": "abcd", "finish_reason": "stop",
                          "logprobs": {"tokens": tokens,
                                       "top_logprobs": [{"z": -5.0, "a": -0.1}, {"b": -0.2, "z": -5.0},
                                                        {"c": -0.5, "z": -1.0}, {"d": -0.1, "z": -4.0}]}}],
             "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    server = Scripted(lambda body: reply)
    try:
        policy = OpenAIPolicy("m", base_url=server.url, retries=0)
        sample = policy.generate_steps(["Q"], 1, stop_at_delimiter=False, top_logprobs=2,
                                       stop=deepconf.stop_below(2.0, 1))[0][0]
        assert sample.stopped and not sample.finished and sample.text == "ab"
        # confidences 2.55, 2.6, then 0.75 < 2: cut before "c"; each token's values sorted, largest first
        assert sample.top_logprobs[0] == [-0.1, -5.0] and len(sample.top_logprobs) == 3
        assert sample.generated_tokens == 4
    finally:
        server.close()


@pytest.mark.skipif(not ready, reason=why)
@pytest.mark.usefixtures("one_torch_thread")
def test_transformers_policy_top_logprobs_and_stop_on_the_embedded_model():
    """The kept log-probabilities are the model's own distribution's top k; a stopped sample is the uncut
    sample's prefix with as many tokens as the rule let through, marked stopped, and charged those only."""
    import torch

    from backends.text.loaders import load_policy

    policy = load_policy("tiny-arith-s")
    prefix = "Start with 12. Add 5. Multiply by 3.\n"
    whole = policy.generate_steps([prefix], 1, 0.8, 1.0, 7, 60, stop_at_delimiter=False, top_logprobs=3)[0][0]
    assert len(whole.top_logprobs) == whole.generated_tokens and whole.generated_tokens > 8
    enc = policy.tokenizer(prefix, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        first = torch.log_softmax(policy.model(**enc).logits[0, -1].float(), -1).topk(3).values.tolist()
    assert whole.top_logprobs[0] == pytest.approx(first, abs=1e-3)
    cut = policy.generate_steps([prefix], 1, 0.8, 1.0, 7, 60, stop_at_delimiter=False, top_logprobs=3,
                                stop=lambda lps: len(lps) == 6)[0][0]
    assert cut.stopped and not cut.finished and cut.generated_tokens == 5
    assert whole.text.startswith(cut.text) and len(cut.text) < len(whole.text)
    assert cut.top_logprobs == whole.top_logprobs[:6]


@pytest.mark.skipif(not ready, reason=why)
@pytest.mark.usefixtures("one_torch_thread")
def test_online_deepconf_on_the_embedded_model_stops_traces_and_saves_tokens():
    """DeepConf-low (keep 0.1) on tiny-arith-s: traces are stopped at the first window below the threshold
    the warm-up set; the stopped ones generated fewer tokens than they hold confidences for no step further;
    and the run generates fewer tokens than majority vote's N full traces would at the same N."""
    from engine.run import RunConfig, run_events

    cfg = RunConfig(model="tiny-arith-s", verifier=None, strategy="deepconf", budget=16, problem_id="test:17",
                    params={"keep": 0.1, "warmup": 4, "window": 4})
    events = list(run_events(cfg))
    conf = [e for e in events if e["type"] == "TraceConfidence"]
    assert len(conf) == 16
    threshold = conf[0]["threshold"]
    stopped = [c for c in conf if c["stopped_at"] is not None]
    assert stopped, "keep = 0.1 must stop some of the 12 traces after the warm-up"
    for c in stopped:
        # the last window is the first below the threshold: every earlier full window is at or above it
        assert c["group"][-1] < threshold and all(g >= threshold for g in c["group"][:-1])
    added = {e["id"]: e for e in events if e["type"] == "NodeAdded"}
    for c in stopped:
        assert added[c["id"]]["node_cost"]["generated_tokens"] == c["stopped_at"]
        assert not added[c["id"]]["finished"]
    assert next(e for e in events if e["type"] == "RunFinished")["answer"] is not None
    mv = list(run_events(RunConfig(model="tiny-arith-s", verifier=None, strategy="majority_vote", budget=16,
                                   problem_id="test:17")))
    spent = sum(e["cost"]["generated_tokens"] for e in events if "cost" in e)
    mv_spent = sum(e["cost"]["generated_tokens"] for e in mv if "cost" in e)
    assert spent < mv_spent
