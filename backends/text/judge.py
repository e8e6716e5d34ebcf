"""Generative verifier: an LLM judge writes a critique and a verdict, sampled k times and aggregated.

This is the line of DeepSeek-GRM, J1, GenPRM and Heimdall in its simplest form: any causal LM (a
``CausalLMPolicy``, or any policy with ``generate_steps`` and ``format_prompt``, such as the OpenAI-compatible
backend) is given ``JUDGE_TEMPLATE`` with the problem and the solution, writes a critique, and ends with a
verdict. ``parse_verdict`` reads the last of these forms in the text:

- ``Verdict: correct`` / ``Verdict: incorrect`` (also right/wrong, yes/no, true/false) -> 1.0 / 0.0
- ``Score: 7/10`` or ``Score: 7`` (1 to 10) -> 0.7
- ``\\boxed{correct}`` / ``\\boxed{incorrect}`` -> 1.0 / 0.0

A judgment without a verdict abstains. Scaling: k judgments are sampled (temperature ``temperature``) and
aggregated by ``rule``:

- ``vote``: the share of parsed judgments that call the solution correct (value >= 0.5);
- ``mean``: the mean parsed value (the judged probability of correct);
- ``min``: the pessimistic rule, the lowest parsed value.

When all k abstain the score is ``abstain_score`` (0.5: no information).

StepVerifier: ``score_whole`` judges each whole solution (steps joined by blank lines). ``score_steps``
has two modes (``per_step``): ``repeat`` (default) judges the solution so far once and repeats that score for
every step, so "last" aggregation equals the judge's verdict on the prefix at hand; ``prefix`` judges every
prefix as if it were a finished solution (k x steps generations, each prefix judged once per run).
Cost: the judge's prompt and generated tokens are counted as ``verifier_tokens``, its forward passes as
``verifier_calls``, and its FLOPs; nothing is added to the policy's own token counters. The judgments of the
last call are kept in ``last_judgments`` for display.

Critiques (the interface of ``backends.text.critic``): ``critique`` samples k judgments of each solution and
reads each as a ``Critique`` (``judgment_critique``): its verdict, and the first wrong step where its text names
one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from backends.text.prm_base import question_of
from strategies.core import CancelToken, Compute, Critique

JUDGE_TEMPLATE = (
    "You are a careful grader of math solutions.\n\n"
    "Problem:\n{question}\n\n"
    "Proposed solution:\n{solution}\n\n"
    "Check the solution step by step and write a short critique. Then end with exactly one line, either\n"
    "\"Verdict: correct\" or \"Verdict: incorrect\".\n"
)

RULES = ("vote", "mean", "min")

_WORDS = {"correct": 1.0, "right": 1.0, "yes": 1.0, "true": 1.0,
          "incorrect": 0.0, "wrong": 0.0, "no": 0.0, "false": 0.0, "not correct": 0.0}
_VERDICT = re.compile(r"verdict\s*[:：]?\s*\**\s*\[*\s*(not correct|incorrect|correct|right|wrong|yes|no|true|false)\b",
                      re.IGNORECASE)
_SCORE = re.compile(r"score\s*[:：]?\s*\**\s*(\d+(?:\.\d+)?)\s*(?:/\s*10|out of 10)?", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\{\s*(incorrect|correct)\s*\}", re.IGNORECASE)


def parse_verdict(text: str) -> float | None:
    """The value of the last verdict in ``text`` (see the module docstring), or None when there is none."""
    found: list[tuple[int, float]] = []
    for m in _VERDICT.finditer(text):
        found.append((m.start(), _WORDS[m.group(1).lower()]))
    for m in _SCORE.finditer(text):
        v = float(m.group(1))
        if 0 <= v <= 10:
            found.append((m.start(), v / 10.0))
    for m in _BOXED.finditer(text):
        found.append((m.start(), _WORDS[m.group(1).lower()]))
    return max(found)[1] if found else None


def aggregate_judgments(values: list[float | None], rule: str, abstain_score: float = 0.5) -> float:
    if rule not in RULES:
        raise ValueError(f"unknown judge rule {rule!r}; choose one of {', '.join(RULES)}")
    parsed = [v for v in values if v is not None]
    if not parsed:
        return abstain_score
    if rule == "vote":
        return sum(v >= 0.5 for v in parsed) / len(parsed)
    if rule == "mean":
        return sum(parsed) / len(parsed)
    return min(parsed)


def verifier_compute(samples) -> Compute:
    """What a generative verifier's samples (``StepSample``s of its policy) cost, charged as verifier compute:
    prompt and generated tokens as ``verifier_tokens``, forward passes as ``verifier_calls``."""
    cost = Compute()
    for s in samples:
        cost.verifier_tokens += s.cost.prompt_tokens + s.cost.generated_tokens
        cost.verifier_calls += s.cost.model_calls
        cost.flops += s.cost.flops
        cost.mem_bytes += s.cost.mem_bytes
        cost.wall_s += s.cost.wall_s
        cost.kv_bytes_peak = max(cost.kv_bytes_peak, s.cost.kv_bytes_peak)
    return cost


_NAMED_STEP = re.compile(r"\bstep\s*(\d+)", re.IGNORECASE)
_FAULT = re.compile(r"wrong|incorrect|error|mistake|should be", re.IGNORECASE)


def judgment_critique(text: str, n_steps: int) -> Critique:
    """A judge's judgment as a ``Critique``: correct where its verdict is (value >= 0.5); else the first step it
    names on a line that finds a fault ("step 3 is wrong"), or step 1 where it names none (the whole solution is
    in doubt). No verdict: step 1 too, ``parsed=False`` (a judgment that reaches none does not vouch)."""
    value = parse_verdict(text)
    if value is not None and value >= 0.5:
        return Critique(None, [True] * n_steps, text)
    named = [int(m.group(1)) for line in text.splitlines() if _FAULT.search(line)
             for m in _NAMED_STEP.finditer(line) if 1 <= int(m.group(1)) <= max(1, n_steps)]
    first = named[0] if named else 1
    return Critique(first, [True] * (first - 1) + [False], text, parsed=value is not None)


@dataclass
class Judgment:
    text: str
    value: float | None


class LLMJudge:
    """A generative verifier over any policy with ``generate_steps`` (see the module docstring)."""

    is_oracle = False

    def __init__(self, policy, name: str = "judge", k: int = 4, rule: str = "mean", temperature: float = 0.7,
                 max_new_tokens: int = 256, per_step: str = "repeat", template: str = JUDGE_TEMPLATE,
                 abstain_score: float = 0.5, seed: int = 0) -> None:
        if rule not in RULES:
            raise ValueError(f"unknown judge rule {rule!r}; choose one of {', '.join(RULES)}")
        if per_step not in ("repeat", "prefix"):
            raise ValueError("per_step must be 'repeat' or 'prefix'")
        if k < 1:
            raise ValueError("k must be at least 1")
        self.policy = policy
        self.name = name
        self.k, self.rule, self.temperature = k, rule, temperature
        self.max_new_tokens, self.per_step, self.template = max_new_tokens, per_step, template
        self.abstain_score, self.seed = abstain_score, seed
        self.last_judgments: dict[str, list[Judgment]] = {}

    def judge_prompt(self, question: str, solution: str) -> str:
        text = self.template.format(question=question, solution=solution)
        if getattr(self.policy, "use_chat_template", False):
            return self.policy.format_prompt(text)
        return text + "\n"

    def _judge(self, question: str, solutions: list[str], cancel: CancelToken | None,
               cache: dict | None = None) -> tuple[list[float], Compute]:
        """Scores of the solutions; each is judged once per run (``cache``, the run's own)."""
        cost = Compute()
        cache = {} if cache is None else cache
        todo = list(dict.fromkeys(s for s in solutions if (question, s) not in cache))
        if todo:
            groups = self.policy.generate_steps([self.judge_prompt(question, s) for s in todo], self.k,
                                                self.temperature, 1.0, self.seed, self.max_new_tokens, cancel,
                                                stop_at_delimiter=False)
            for sol, samples in zip(todo, groups):
                cache[(question, sol)] = [Judgment(s.text, parse_verdict(s.text)) for s in samples]
            cost = verifier_compute([s for g in groups for s in g])
        self.last_judgments = {s: cache[(question, s)] for s in solutions}
        scores = [aggregate_judgments([j.value for j in cache[(question, s)]], self.rule, self.abstain_score)
                  for s in solutions]
        return scores, cost

    def critique(self, problem: object, prompt: str, step_lists: list[list[str]], k: int,
                 temperature: float | None = None, seed: int = 0,
                 cancel: CancelToken | None = None) -> tuple[list[list[Critique]], Compute]:
        """``k`` sampled judgments of each solution read as critiques (``judgment_critique``), so the strategies
        that revise from a flagged step work with a hub judge as with the embedded critic."""
        question = question_of(problem, prompt)
        groups = self.policy.generate_steps([self.judge_prompt(question, self._solution(s)) for s in step_lists],
                                            k, self.temperature if temperature is None else temperature, 1.0, seed,
                                            self.max_new_tokens, cancel, stop_at_delimiter=False)
        out = [[judgment_critique(s.text, len(steps)) for s in g] for g, steps in zip(groups, step_lists)]
        return out, verifier_compute([s for g in groups for s in g])

    @staticmethod
    def _solution(steps: list[str]) -> str:
        return "\n\n".join(steps)

    def score_whole(self, problem: object, prompt: str, step_lists: list[list[str]],
                    cancel: CancelToken | None = None) -> tuple[list[float], Compute]:
        return self._judge(question_of(problem, prompt), [self._solution(s) for s in step_lists], cancel)

    def score_steps(self, problem: object, prompt: str, step_lists: list[list[str]],
                    cancel: CancelToken | None = None, cache: dict | None = None) -> tuple[list[list[float]], Compute]:
        question = question_of(problem, prompt)
        if self.per_step == "repeat":
            whole, cost = self._judge(question, [self._solution(s) for s in step_lists], cancel, cache)
            return [[w] * len(s) for w, s in zip(whole, step_lists)], cost
        prefixes = [self._solution(s[:i]) for s in step_lists for i in range(1, len(s) + 1)]
        scores, cost = self._judge(question, prefixes, cancel, cache)
        out, i = [], 0
        for s in step_lists:
            out.append(scores[i:i + len(s)])
            i += len(s)
        return out, cost


def load_judge(path_or_id: str, name: str | None = None, trust_remote_code: bool = False, **kw) -> LLMJudge:
    """A judge over a causal LM folder or hub id, with its chat template when it has one."""
    from backends.text.transformers_lm import CausalLMPolicy
    policy = CausalLMPolicy(path_or_id, trust_remote_code=trust_remote_code, chat_template=True)
    return LLMJudge(policy, name=name or path_or_id, **kw)
