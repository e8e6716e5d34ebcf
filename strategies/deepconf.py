"""DeepConf: majority voting over the traces the model itself is confident in, and online early stopping.

Follows "Deep Think with Confidence" (Fu et al., 2025) and its reference code (facebookresearch/deepconf).
A token's confidence is the negative mean of the top-k log-probabilities of the model's distribution at it
(high when the distribution is peaked); a trace's group confidence at token t is the mean token confidence
over the window of tokens ending at t.

- Offline: N traces; each gets a trace confidence (``measure``: the lowest group confidence, the mean of the
  bottom 10% of group confidences, the tail's, or the whole trace's mean); the most confident share ``keep``
  (eta) vote, each weighted by its confidence.
- Online: ``warmup`` traces first; the stopping threshold is the (1 - keep) quantile of their lowest group
  confidences, so a share ``keep`` of them would pass (keep = 0.1 is DeepConf-low, 0.9 DeepConf-high). The
  other N - warmup traces decode with the threshold watched: one whose group confidence falls below it is
  stopped at that token (the backend stops it there; what it would have generated after is saved). The vote
  is confidence-weighted over the warm-up traces at or above the threshold and the traces not stopped.

What the budget buys: N traces, at most; online they are shorter wherever one is stopped. No verifier.
Choices where the paper is silent or where a tiny world differs: the window defaults to 8 tokens and top-k
to 5 (the paper's 2048 and 20 are for traces of thousands of tokens over a 150k vocabulary; the embedded
policy's lines are about ten tokens over 71 characters); a trace shorter than the window has one group, its
mean (as the reference code does); the group is only tested against the threshold once a whole window has
been generated (as the reference logits processor does); warm-up takes at most N traces; the paper's
consensus-based early end of sampling is left out (every one of the N traces is started); when no trace is
left to vote, the most confident finished trace is the answer. Votes group answers the domain calls equal.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

from strategies.common import add_nodes, check, finish, weighted_vote
from strategies.core import CancelToken, Event, Node, NodePruned, SearchSpace, StepDone, TraceConfidence
from strategies.params import param

MEASURES = ("lowest_group", "bottom10", "tail", "mean")


@dataclass(frozen=True)
class Params:
    n: int = param(16, "N: traces sampled (the warm-up traces included, online).", lo=1, hi=1024)
    mode: str = param("online", "offline: filter N finished traces; online: stop traces whose confidence drops.",
                      choices=("online", "offline"))
    keep: float = param(0.9, "eta: share of traces kept (0.9 DeepConf-high, 0.1 DeepConf-low).", lo=0.01, hi=1.0)
    warmup: int = param(4, "Online: warm-up traces that set the stopping threshold.", lo=1, hi=1024)
    window: int = param(8, "Tokens in the sliding window of group confidence.", lo=1, hi=4096)
    top_k: int = param(5, "Log-probabilities per token that a token confidence averages.", lo=1, hi=20)
    measure: str = param("lowest_group", "Trace confidence used to filter and weight the vote.", choices=MEASURES)


def token_confidence(top_logprobs: list[float]) -> float:
    return -sum(top_logprobs) / len(top_logprobs) if top_logprobs else 0.0


def group_confidences(confs: list[float], window: int) -> list[float]:
    """Mean token confidence over each window of ``window`` tokens (one group for a shorter trace)."""
    if len(confs) <= window:
        return [sum(confs) / len(confs)] if confs else [0.0]
    run = sum(confs[:window])
    out = [run / window]
    for i in range(window, len(confs)):
        run += confs[i] - confs[i - window]
        out.append(run / window)
    return out


def trace_confidence(confs: list[float], window: int, measure: str) -> float:
    return _measured(confs, group_confidences(confs, window), window, measure)


def _measured(confs: list[float], groups: list[float], window: int, measure: str) -> float:
    """``measure`` of a trace whose token confidences are ``confs`` and group confidences ``groups``."""
    if measure == "lowest_group":
        return min(groups)
    if measure == "bottom10":
        low = sorted(groups)[:max(1, len(groups) // 10)]
        return sum(low) / len(low)
    if measure == "tail":
        tail = confs[-window:] or [0.0]
        return sum(tail) / len(tail)
    return sum(confs) / len(confs) if confs else 0.0


def quantile(values: list[float], q: float) -> float:
    """The q-quantile with linear interpolation (numpy's default), so thresholds match the reference code."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def stop_below(threshold: float, window: int) -> Callable[[list[list[float]]], bool]:
    """The online stop rule: true once the last full window's mean token confidence is below ``threshold``."""
    def stop(top_logprobs: list[list[float]]) -> bool:
        if len(top_logprobs) < window:
            return False
        return sum(token_confidence(t) for t in top_logprobs[-window:]) / window < threshold
    return stop


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    sample = getattr(space, "complete_with_logprobs", None)
    if sample is None:
        raise ValueError("DeepConf needs token probabilities, and this domain gives none")
    root = space.initial(1)[0]
    yield from add_nodes([root])
    check(cancel)
    first = min(params.warmup, params.n) if params.mode == "online" else params.n
    traces = sample([root] * first, params.top_k)
    yield from add_nodes(traces)
    conf: dict[str, list[float]] = {}
    groups: dict[str, list[float]] = {}
    value: dict[str, float] = {}
    _read(space, traces, params, conf, groups, value)
    finished = [t for t in traces if t.finished]
    if params.mode == "offline":
        ranked = [value[t.id] for t in finished]
        threshold = quantile(ranked, 1.0 - params.keep) if ranked else None
        voters = [t for t in finished if threshold is not None and value[t.id] >= threshold]
        yield from _report(traces, conf, groups, value, threshold, set(), warmup=False)
    else:
        threshold = quantile([min(groups[t.id]) for t in traces], 1.0 - params.keep)
        voters = [t for t in finished if min(groups[t.id]) >= threshold]
        yield from _report(traces, conf, groups, value, threshold, set(), warmup=True)
        yield StepDone(step=1)
        rest: list[Node] = []
        if params.n > first:
            check(cancel)
            rest = sample([root] * (params.n - first), params.top_k, stop=stop_below(threshold, params.window))
            yield from add_nodes(rest)
            _read(space, rest, params, conf, groups, value)
            stopped = {t.id for t in rest if not t.finished}
            yield from _report(rest, conf, groups, value, threshold, stopped, warmup=False)
            finished += [t for t in rest if t.finished]
            voters += [t for t in rest if t.finished]
    for t in finished:
        if t not in voters:
            yield NodePruned(id=t.id, reason=f"confidence {value[t.id]:.3f} below the threshold {threshold:.3f}")
    yield StepDone(step=2 if params.mode == "online" else 1)
    pool = voters or finished
    yield from finish(space, pool, value, weighted_vote(space, pool, value))


def _read(space: SearchSpace, traces: list[Node], params: Params, conf: dict, groups: dict, value: dict) -> None:
    """Each trace's token confidences, group confidences and confidence by ``params.measure``, into the dicts."""
    for t in traces:
        conf[t.id] = [token_confidence(top) for top in space.token_logprobs(t)]
        groups[t.id] = group_confidences(conf[t.id], params.window)
        value[t.id] = _measured(conf[t.id], groups[t.id], params.window, params.measure)


def _report(traces: list[Node], conf: dict, groups: dict, value: dict, threshold: float | None, stopped: set[str],
            warmup: bool) -> Iterator[Event]:
    for t in traces:
        # a stopped trace's last confidence is that of the position where it was cut: no token was kept there
        kept = len(conf[t.id]) - 1 if t.id in stopped else None
        yield TraceConfidence(id=t.id, group=[round(g, 4) for g in groups[t.id]], confidence=round(value[t.id], 4),
                              threshold=None if threshold is None else round(threshold, 4),
                              tokens=len(conf[t.id]), stopped_at=kept, warmup=warmup)
        if t.id in stopped:
            yield NodePruned(id=t.id, reason=f"stopped after {kept} tokens: group confidence below {threshold:.3f}")

