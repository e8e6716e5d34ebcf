"""Thought truncation (TrimR): cut the rest of a thought once its answer has settled and a verifier accepts it.

"TrimR: Verifier-based Training-Free Thinking Compression for Efficient Test-Time Scaling" (Lin et al. 2025)
watches a reasoning model's thought with a small verifier and truncates redundant thinking: overthinking, where
the thought keeps re-checking an answer it already has (consecutive intermediate thoughts reach the same
answer), is cut and the model is prompted to conclude. Neither model is fine-tuned.

In this miniature the intermediate answers are probed every ``chunk`` thinking tokens (the end of thinking forced
on a copy of the thought, the model's answer after it: ``feedback.probe``). When the last ``repeats`` probes
agree (by the domain's answer equality), the thought has settled; with ``confirm=critic`` (the default) the
critic must also accept the settled answer (``k_fast`` critiques, ``k_slow`` more when they disagree), with
``confirm=none`` the agreement alone truncates (TrimR's verifier judges only answers' equivalence). Truncated:
the rest of the thought is never generated and the settled answer, written after the truncated thought, is the
run's. Unlike Solve-Detect-Verify it does not stop at the first answer a critic accepts: it waits for the thought
to repeat it, so it thinks longer and relies less on the critic. Left out: TrimR's underthinking rule (truncating
a thought whose answers keep changing); a thought ends itself or at ``budget`` (forced) instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import answer_groups, finish, require_thinking
from strategies.core import CancelToken, Event, Node, SearchSpace
from strategies.feedback import flexible_verdict, need_critic, think_and_probe
from strategies.params import param


@dataclass(frozen=True)
class Params:
    budget: int = param(256, "Thinking tokens at most: at this many, the end of thinking is forced.", lo=1,
                        hi=1_000_000)
    chunk: int = param(16, "Thinking tokens between probes of the thought's answer so far.", lo=1, hi=100_000)
    repeats: int = param(2, "Probes in a row that must give the same answer before the thought is cut.",
                         lo=1, hi=64)
    confirm: str = param("critic", "critic: the critic must also accept the settled answer; none: agreement alone.",
                         choices=("critic", "none"))
    k_fast: int = param(1, "Critiques of a settled answer in the fast pass.", lo=1, hi=64)
    k_slow: int = param(4, "More critiques when the fast ones disagree (0: never).", lo=0, hi=64)


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    require_thinking(space, "thought truncation")
    if params.confirm == "critic":
        need_critic(space, "thought truncation with confirm=critic")
    scores: dict[str, float] = {}
    verdicts: dict[str, int | None] = {}
    seen: list[Node] = []

    def settled(candidate: Node) -> Iterator[Event]:
        seen.append(candidate)
        last = seen[-params.repeats:]
        groups = answer_groups(space, [space.extract(c) for c in last])
        if len(last) < params.repeats or groups[0] is None or len(set(groups)) > 1:
            return False
        if params.confirm == "none":
            return True
        yield from flexible_verdict(space, candidate, params.k_fast, params.k_slow, scores, verdicts)
        return verdicts[candidate.id] is None

    answer, probes, tokens = yield from think_and_probe(space, params.budget, params.chunk, settled, "trimmed",
                                                        cancel)
    stats = {"probes": probes, "truncated": answer in seen, "thinking_tokens": tokens}
    done = [answer] if answer.finished else []
    yield from finish(space, done, scores, answer if answer.finished else None, stats)
