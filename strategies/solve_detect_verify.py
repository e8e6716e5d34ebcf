"""Solve-Detect-Verify: think in chunks, probe the thought for its answer, stop thinking once a critic verifies it.

"Solve-Detect-Verify: Inference-Time Scaling with Flexible Generative Verifier" (Zhong et al. 2025): the solver
reasons; at a point where its thought holds a solution (detect) it pauses and a generative verifier, FlexiVe,
checks that solution with a flexible budget (a fast pass, a slower one only when the fast one is unsure); a
verified solution ends the run there, saving the rest of the thought, and a rejected one lets the solver go on.

In this miniature a detection point is every ``chunk`` thinking tokens (a thinking model here writes a line of
arithmetic in about 13 tokens; the paper detects hesitation words such as "Wait" after a solution). The solution
at that point is probed: the end of thinking is forced on a copy of the thought and the model writes its answer
(``feedback.probe``); the critic checks it with ``k_fast`` critiques, and ``k_slow`` more only when those
disagree (FlexiVe's fast and slow modes; the oracle's critiques always agree). Verified (more than half call it
correct, and it has an answer): the thought stops there and that answer is the run's. Rejected: the thought goes
on from where it was (the paper's solver feedback is in context; a tiny thinker cannot read it, so the only
feedback here is that it keeps thinking). A thought the model ends itself, or that reaches ``budget`` thinking
tokens (forced, as budget forcing does), is answered without a probe. Probes cost answer tokens and critiques
verifier tokens: the run counts both, and its thinking tokens are what it saves.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from strategies.common import finish, require_thinking
from strategies.core import CancelToken, Event, Node, SearchSpace
from strategies.feedback import flexible_verdict, need_critic, think_and_probe
from strategies.params import param


@dataclass(frozen=True)
class Params:
    budget: int = param(256, "Thinking tokens at most: at this many, the end of thinking is forced.", lo=1,
                        hi=1_000_000)
    chunk: int = param(16, "Thinking tokens between detection points (where the answer so far is probed).",
                       lo=1, hi=100_000)
    k_fast: int = param(1, "Critiques of a probed answer in the fast pass.", lo=1, hi=64)
    k_slow: int = param(4, "More critiques when the fast ones disagree (0: never).", lo=0, hi=64)


def search(space: SearchSpace, params: Params, cancel: CancelToken | None = None) -> Iterator[Event]:
    require_thinking(space, "solve-detect-verify")
    need_critic(space, "solve-detect-verify")
    scores: dict[str, float] = {}
    verdicts: dict[str, int | None] = {}

    def verify(candidate: Node) -> Iterator[Event]:
        yield from flexible_verdict(space, candidate, params.k_fast, params.k_slow, scores, verdicts)
        return candidate.finished and verdicts[candidate.id] is None

    answer, probes, tokens = yield from think_and_probe(space, params.budget, params.chunk, verify, "verified",
                                                        cancel)
    stats = {"probes": probes, "stopped_by_verifier": answer.id in verdicts, "thinking_tokens": tokens}
    done = [answer] if answer.finished else []
    yield from finish(space, done, scores, answer if answer.finished else None, stats)
