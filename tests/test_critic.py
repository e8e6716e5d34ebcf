"""The generative critic: parsing critiques (hand-written, malformed ones included), the vote rules, pessimistic
selection on a space with scripted verdicts, and the embedded tiny-critic as a verifier (k critiques, verifier
tokens charged, GenPRM per-step scores, options) and inside a best-of-N run."""
from __future__ import annotations

import math

import pytest

from backends.embedded import arith
from backends.errors import InputError
from backends.text.critic import CriticSettings, parse_critique, vote
from backends.text.judge import judgment_critique
from backends.text.reasoning import parse_text_options
from strategies import best_of_n, weighted_bon
from strategies.core import Critique, Node, Score
from strategies.pessimistic import pessimistic_scores
from tests.fake_space import FakeSpace

# ---- parsing ----------------------------------------------------------------------------------------


def test_parse_critique_reads_checks_and_verdict():
    c = parse_critique("1: 37 + 48 = 85 ok\n2: 85 * 6 = 510 ok\nVerdict: correct")
    assert (c.verdict, c.checks, c.parsed) == (None, [True, True], True)
    c = parse_critique("1: 37 + 48 = 85 ok\n2: 85 * 6 = 520 wrong, 85 * 6 = 510\nVerdict: step 2 wrong")
    assert (c.verdict, c.checks, c.parsed) == (2, [True, False], True)


def test_parse_critique_takes_the_last_verdict_and_keeps_the_text():
    text = "1: 1 + 1 = 2 ok\nVerdict: correct\nVerdict: step 1 wrong"
    c = parse_critique(text)
    assert c.verdict == 1 and c.text == text and c.parsed


@pytest.mark.parametrize("text, verdict", [
    ("1: 37 + 48 = 85 ok\n2: 85 * 6 = 520 wrong, 85", 2),  # cut before its verdict: the wrong check counts
    ("1: 37 + 48 = 85 ok\n2: 85 * 6 = 510 ok", 3),          # no verdict, all ok: it never vouched for step 3
    ("", 1),                                                 # nothing at all
    ("ok ok wrong 12 :: Verdict step", 1),                   # garbage, no readable check or verdict
])
def test_parse_critique_fallback_never_vouches_and_is_marked(text, verdict):
    c = parse_critique(text)
    assert c.verdict == verdict and not c.parsed


def test_parse_critique_clamps_a_step_zero_verdict():
    assert parse_critique("Verdict: step 0 wrong").verdict == 1


def test_judgment_critique_reads_a_hub_judges_text():
    c = judgment_critique("Step 1 is fine.\nIn step 3 the product is wrong.\nVerdict: incorrect", 4)
    assert (c.verdict, c.checks, c.parsed) == (3, [True, True, False], True)
    assert judgment_critique("All good.\nVerdict: correct", 2).verdict is None
    assert judgment_critique("Verdict: incorrect", 2).verdict == 1  # names no step: the whole solution in doubt
    assert not judgment_critique("no verdict here", 2).parsed


# ---- votes ------------------------------------------------------------------------------------------

def _c(verdict):
    return Critique(verdict)


def test_vote_rules_and_genprm_steps():
    cs = [_c(None), _c(None), _c(2), _c(3)]
    assert vote(cs, "share") == 0.5
    assert vote(cs, "majority") == 0.0  # a tie counts as wrong
    assert vote([_c(None), _c(None), _c(2)], "majority") == 1.0
    assert vote(cs, "unanimous") == 0.0 and vote([_c(None)] * 3, "unanimous") == 1.0
    # step i's score: the share whose first wrong step is after i
    assert [vote(cs, "share", after=i) for i in (1, 2, 3)] == [1.0, 0.75, 0.5]
    assert vote([], "share") == 0.5
    with pytest.raises(ValueError, match="vote rule"):
        vote(cs, "mean")


def test_text_options_for_the_critic():
    o = parse_text_options({"critiques": "8", "vote": "majority", "meta": "on"})
    assert o.critic == CriticSettings(k=8, rule="majority", meta=True)
    assert parse_text_options({"vote": "unanimous"}).critic == CriticSettings(rule="unanimous")  # k stays 4
    assert parse_text_options({}).critic is None
    for bad in ({"critiques": "0"}, {"critiques": "x"}, {"vote": "mean"}, {"meta": "maybe"}):
        with pytest.raises(InputError):
            parse_text_options(bad)


# ---- pessimistic selection on scripted verdicts ----------------------------------------------------

class ScriptedSpace(FakeSpace):
    """Best-of-N candidates with scripted answers, each critiqued M times with scripted verdicts."""

    def __init__(self, answers: list[str], correct: list[int], m: int = 4) -> None:
        super().__init__()
        self.answers, self.correct, self.m = answers, correct, m
        self._made = 0

    def complete(self, nodes, temperature=None):
        out = []
        for n in nodes:
            i = self._made
            self._made += 1
            out.append(Node(id=f"c{i}", parent=n.id, depth=1, preview=self.answers[i], finished=True,
                            answer=self.answers[i], payload=(i,)))
        return out

    def score(self, nodes):
        out = []
        for n in nodes:
            ok = self.correct[n.payload[0]]
            cs = [Critique(None if j < ok else 1, text=f"critique {j}") for j in range(self.m)]
            out.append(Score(ok / self.m, [ok / self.m], cs))
        return out


# A: one candidate, 4/4 correct; B: three, 3/4 each (sum 2.25); C: six, 2/4 each (sum 3.0).
ANSWERS = ["A"] + ["B"] * 3 + ["C"] * 6
CORRECT = [4] + [3] * 3 + [2] * 6


def _pick(module, **params):
    space = ScriptedSpace(ANSWERS, CORRECT)
    events = list(module.search(space, module.Params(n=len(ANSWERS), **params)))
    return events, events[-1].answer


def test_pessimistic_penalises_the_uncertain_answer():
    # best score takes the lone 4/4, the summed vote the crowd at 2/4; the pessimistic bound takes B
    assert _pick(best_of_n)[1] == "A"
    assert _pick(weighted_bon)[1] == "C"
    assert _pick(best_of_n, select="pessimistic", alpha=1.0)[1] == "B"
    assert _pick(weighted_bon, select="pessimistic", alpha=1.0)[1] == "B"
    # alpha 0 is the highest verification rate: the lone 4/4 again
    assert _pick(best_of_n, select="pessimistic", alpha=0.0)[1] == "A"


def test_pessimistic_score_is_the_papers_bound():
    space = ScriptedSpace(ANSWERS, CORRECT)
    nodes = space.complete([Node(id="r", parent=None, depth=0, preview="", payload=())] * len(ANSWERS))
    scores = {n.id: CORRECT[i] / 4 for i, n in enumerate(nodes)}
    table = pessimistic_scores(space, nodes, scores, {n.id: 4 for n in nodes}, alpha=1.0)
    total = math.log(len(ANSWERS) * 4)
    assert table["A"] == pytest.approx(1.0 - total / (1 * 4 + 1))
    assert table["B"] == pytest.approx(0.75 - total / (3 * 4 + 1))
    assert table["C"] == pytest.approx(0.5 - total / (6 * 4 + 1))


def test_scoring_with_critiques_emits_critiqued_events():
    events, _ = _pick(best_of_n)
    crit = [e for e in events if type(e).__name__ == "Critiqued"]
    assert len(crit) == len(ANSWERS)
    first = crit[0]
    assert first.verdicts == [None] * 4 and first.score == 1.0 and first.texts[0] == "critique 0"


# ---- the embedded critic ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def critic():
    from backends import catalog
    from backends.text.loaders import load_verifier

    ok, why = catalog.resolve("tiny-critic", "verifier").availability()
    if not ok:
        pytest.skip(why)
    return load_verifier("tiny-critic")


def test_embedded_critic_writes_k_critiques_and_charges_them(critic, one_torch_thread):
    p = arith.problem_at("test", 2)
    wrong = p.steps[:1] + ["55 * 5 = 285"]  # a slip in the result, as the policies make them
    crits, cost = critic.critique(p, p.text + "\n", [p.steps, wrong], 6, seed=3)
    assert [len(cs) for cs in crits] == [6, 6]
    assert cost.verifier_tokens > 6 * 2 * len(arith.critic_prompt(p.text, wrong).split())  # prompts + critiques
    assert cost.verifier_calls > 0 and cost.flops > 0 and cost.generated_tokens == 0 and cost.prompt_tokens == 0
    again, _ = critic.critique(p, p.text + "\n", [p.steps, wrong], 6, seed=3)
    assert [[c.text for c in cs] for cs in crits] == [[c.text for c in cs] for cs in again]  # seeded
    assert sum(c.parsed for cs in crits for c in cs) >= 10  # the critic writes the trained form
    for cs, steps in zip(crits, [p.steps, wrong]):
        for c in cs:
            assert c.verdict is None or 1 <= c.verdict <= len(steps) + 1


def test_embedded_critic_per_step_scores_are_genprms(critic, one_torch_thread):
    p = arith.problem_at("test", 3)
    steps = [p.steps, p.steps[:1] + ["855 - 257 = 589"] + p.steps[2:]]
    judged = critic.configured(CriticSettings(k=4))
    cache: dict = {}
    kept, per_step, cost = judged.score_with_critiques(p, p.text + "\n", steps, cache=cache)
    for cs, ps, st in zip(kept, per_step, steps):
        assert len(cs) == 4 and len(ps) == len(st)
        assert ps == [vote(cs, "share", after=i) for i in range(1, len(st) + 1)]
        assert ps == sorted(ps, reverse=True)  # a step cannot recover once critiques flag an earlier one
    whole, _ = judged.score_whole(p, p.text + "\n", steps)
    assert whole[1] == per_step[1][-1] == vote(kept[1], "share")
    _, again, cost2 = judged.score_with_critiques(p, p.text + "\n", steps, cache=cache)
    assert again == per_step and cost2.verifier_tokens == 0  # critiqued once per run
    meta = critic.configured(CriticSettings(k=4, meta=True))
    kept_m, _, cost_m = meta.score_with_critiques(p, p.text + "\n", steps)
    assert [len(cs) for cs in kept_m] == [2, 2] and cost_m.verifier_tokens > cost.verifier_tokens


def test_best_of_n_with_the_critic_shows_critiques_and_picks_pessimistically(critic, one_torch_thread):
    from engine.run import RunConfig, run_events

    cfg = RunConfig(model="tiny-arith-s", verifier="tiny-critic", strategy="best_of_n", budget=6,
                    params={"select": "pessimistic", "alpha": 1.0}, problem_id="test:8", options={"critiques": "3"})
    events = list(run_events(cfg))
    crit = {e["id"]: e for e in events if e["type"] == "Critiqued"}
    scored = {e["id"]: e["score"] for e in events if e["type"] == "NodeScored"}
    assert len(crit) == 6 and all(len(e["verdicts"]) == 3 for e in crit.values())
    assert all(e["score"] == scored[i] == sum(v is None for v in e["verdicts"]) / 3 for i, e in crit.items())
    finished = {e["id"]: e["answer"] for e in events if e["type"] == "NodeFinished"}
    rate: dict[str, list[float]] = {}
    for i, a in finished.items():
        if a is not None:
            rate.setdefault(a, []).append(scored[i])
    bound = {a: sum(v) / len(v) - math.log(3 * len(finished)) / (3 * len(v) + 1) for a, v in rate.items()}
    chosen = [e for e in events if e["type"] == "RunFinished"][0]["answer"]
    assert chosen == max(bound, key=bound.get)
    assert sum(e["cost"]["verifier_tokens"] for e in events if e.get("cost")) > 0


def test_critic_options_need_a_critic():
    from engine.run import RunConfig, run_events

    with pytest.raises(InputError, match="generative critic"):
        list(run_events(RunConfig(verifier="tiny-prm", strategy="best_of_n", budget=2, problem_id="test:1",
                                  options={"critiques": "2"})))


def test_committed_critic_beats_chance_and_improves_with_k(critic, one_torch_thread):
    """On tiny-arith-s's own T=0.8 solutions of 30 test problems (whole and cut after a step), the verdict of
    one critique beats chance (balanced accuracy over right and wrong solutions above 0.5 by a margin) and
    the majority of 8 critiques is better still."""
    from transformers import AutoTokenizer

    from backends import catalog
    from backends.embedded import train as base

    path = catalog.resolve("tiny-arith-s", "policy").source
    problems = base.test_problems(30)
    texts = base.sample_solutions(base.load_policy(path), AutoTokenizer.from_pretrained(path),
                                  [base.prompt_of(p) for p in problems], 0.8, seed=5, desc="critic check")
    items = []
    for p, t in zip(problems, texts):
        steps = arith.split_steps(t)
        items += [(p, steps)] + ([(p, steps[:1])] if len(steps) > 1 else [])
    truth = [arith.critique_of(p, s)[1] is None for p, s in items]
    assert 0 < sum(truth) < len(truth)
    said = []
    for p, steps in items:
        cs, _ = critic.critique(p, base.prompt_of(p), [steps], 8, seed=9)
        said.append(cs[0])

    def balanced(k: int) -> float:
        ok = [(vote(cs[:k], "majority") >= 0.5) == t for cs, t in zip(said, truth)]
        right = [o for o, t in zip(ok, truth) if t]
        wrong = [o for o, t in zip(ok, truth) if not t]
        return (sum(right) / len(right) + sum(wrong) / len(wrong)) / 2

    one, eight = balanced(1), balanced(8)
    assert one > 0.65, one
    assert eight >= one, (one, eight)


def test_llm_judge_critiques_through_the_same_interface():
    from backends.text.judge import LLMJudge
    from tests.test_judge import CannedPolicy

    policy = CannedPolicy(["Step 2 is wrong.\nVerdict: incorrect", "Verdict: correct"])
    crits, cost = LLMJudge(policy).critique(None, "What is 2*3+1?", [["2 * 3 = 6", "6 + 1 = 8", "The answer is 8"]], 2)
    assert [c.verdict for c in crits[0]] == [2, None]
    assert cost.verifier_tokens == 2 * 15 and cost.verifier_calls == 2 and cost.generated_tokens == 0
