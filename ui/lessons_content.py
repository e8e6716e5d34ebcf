"""The guided lessons: each reproduces a seed paper's claim on the embedded models.

A lesson is a story, a question with the paper's answer, arms (``engine.lessons.Arm``) run on the same
problems, and the claims the numbers are checked against. ``python -m ui.examples`` stores every arm on its
lessons' problems; the Learn tab's live button reruns the first ``live_problems`` of them. The stories were
written after reading the stored numbers (``ui/examples.db``); where a claim does not hold on them, the story
says so, and the verdict under the table is always computed from the runs on show.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.lessons import Arm, Claim, Row

# One problem set for the reasoning lessons: test:100..129, six of each difficulty (test:i has difficulty
# i % 5 + 1), ordered so that any prefix (the live runs) still covers every difficulty.
ARITH = tuple(f"test:{i}" for i in range(100, 130))
DIGITS = tuple(f"test:{i}" for i in range(12))  # digit i % 10 with its own noise seed

S, L = "tiny-arith-s", "tiny-arith-l"
ARMS: dict[str, Arm] = {a.key: a for a in [
    Arm("l_greedy", "L (4.3x the parameters), greedy", {"model": L, "strategy": "greedy", "budget": 1}),
    Arm("l_bon4", "L, best-of-4 with the PRM", {"model": L, "strategy": "best_of_n", "budget": 4}),
    Arm("s_beam16", "S, beam search N=16 M=4", {"model": S, "strategy": "beam_search", "budget": 16,
                                                "params": {"beam_width": 4}}),
    Arm("s_bon16", "S, best-of-16 with the PRM", {"model": S, "strategy": "best_of_n", "budget": 16}),
    Arm("s_pf16", "S, particle filtering N=16", {"model": S, "strategy": "particle_filtering", "budget": 16}),
    Arm("s_beam4", "S, beam search N=4 M=2", {"model": S, "strategy": "beam_search", "budget": 4,
                                              "params": {"beam_width": 2}}),
    Arm("s_pf4", "S, particle filtering N=4", {"model": S, "strategy": "particle_filtering", "budget": 4}),
    Arm("thick1", "one sample (N=1)", {"domain": "image", "model": "tiny-digits", "verifier": "digit-thickness",
                                       "strategy": "random_search", "budget": 1, "options": {"steps": 10}}),
    Arm("thick16", "random search N=16 against digit-thickness",
        {"domain": "image", "model": "tiny-digits", "verifier": "digit-thickness", "strategy": "random_search",
         "budget": 16, "options": {"steps": 10}}),
    Arm("class16", "random search N=16 against digit-classifier",
        {"domain": "image", "model": "tiny-digits", "verifier": "digit-classifier", "strategy": "random_search",
         "budget": 16, "options": {"steps": 10}}),
    Arm("think16", "tiny-think, 16 thinking tokens", {"model": "tiny-think", "strategy": "budget_forcing",
                                                     "budget": 16, "params": {"n": 1}}),
    Arm("think128", "tiny-think, 128 thinking tokens", {"model": "tiny-think", "strategy": "budget_forcing",
                                                       "budget": 128, "params": {"n": 1}}),
]}


@dataclass(frozen=True)
class Lesson:
    key: str
    title: str
    papers: tuple[int, ...]          # seed paper numbers in ../shared/papers.md
    story: str
    question: str
    choices: tuple[str, ...]
    expected: int                    # the paper's answer, an index into ``choices``
    arm_keys: tuple[str, ...]
    problems: tuple[str, ...]
    claims: tuple[Claim, ...]
    after: str                       # what to look at once the result shows
    stored_verdicts: tuple[bool | None, ...]  # each claim's verdict on the shipped runs (the story says so; tested)
    live_problems: int = 10
    metric_name: str = "right"
    show_miss: bool = False  # the viewer plays a run the judge calls wrong (a hacked verifier at work)

    @property
    def arms(self) -> list[Arm]:
        return [ARMS[k] for k in self.arm_keys]

    def shown(self, rows: list[Row]) -> list[str]:
        """The run the viewer plays with the result: the first claim's ``better`` arm on the first problem where
        it is right and the ``worse`` arm is not (the claim at work), else its first run; with ``show_miss``, its
        first run the judge calls wrong."""
        claim = self.claims[0]
        by = {(r.arm, r.problem): r for r in rows}
        problems = [p for p in self.problems if (claim.better, p) in by]
        if self.show_miss:
            missed = [by[(claim.better, p)].run_id for p in problems if not by[(claim.better, p)].correct]
            if missed:
                return missed[:1]
        for p in problems:
            worse = by.get((claim.worse, p))
            if by[(claim.better, p)].correct and worse is not None and not worse.correct:
                return [by[(claim.better, p)].run_id]
        return [by[(claim.better, problems[0])].run_id] if problems else []


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "small_beats_large", "A small model with search against a model 4x its size", (1,),
        story="Paper 1 (*Can 1B LLM Surpass 405B LLM?*) finds that a small policy with a process reward model "
              "guiding its search can beat a far larger policy that answers once. Here the small policy is "
              "`tiny-arith-s` (450k parameters) and the large one `tiny-arith-l` (1.9M, 4.3x as many). S searches "
              "with particle filtering (16 partial solutions resampled by the PRM every step); L answers greedily, "
              "or picks the PRM's favourite of 4 samples. All three solve the same 30 arithmetic chains.",
        question="who gets more of the 30 problems right?",
        choices=("L greedy: size wins", "S with search: search wins", "a tie"),
        expected=1, arm_keys=("s_pf16", "l_greedy", "l_bon4"), problems=ARITH,
        claims=(Claim("s_pf16", "l_greedy"), Claim("s_pf16", "l_bon4")),
        after="On the 30 stored problems the claim holds, but narrowly: S with search is one problem ahead of L "
              "greedy and two ahead of L best-of-4, and the gain comes from difficulty 2, where L slips and the PRM "
              "steers S. Read the FLOPs column too: S's search costs about 8x the FLOPs of L's single answer, so "
              "the small model wins on accuracy, not on compute; and on difficulty 5 L greedy gets one problem S "
              "never does (when S's samples never contain the answer, no verifier can pick it). The viewer replays "
              "S's search on a problem L got wrong.",
        stored_verdicts=(True, True)),
    Lesson(
        "best_by_difficulty", "The best strategy changes with difficulty", (1,),
        story="Paper 1's compute-optimal table picks a strategy per difficulty: best-of-N, which judges only "
              "whole answers, does well on easy problems, and beam search, which lets the PRM prune at every "
              "step, on hard ones. Here both spend 16 samples' worth on `tiny-arith-s`, with the same PRM, on six "
              "problems of each difficulty from 1 (small numbers) to 5 (large multiplications).",
        question="which strategy should you pick on the hard problems (difficulty 4)?",
        choices=("best-of-16", "beam search N=16", "it makes no difference"),
        expected=1, arm_keys=("s_bon16", "s_beam16"), problems=ARITH,
        claims=(Claim("s_beam16", "s_bon16", difficulties=(4,)), Claim("s_bon16", "s_beam16", difficulties=(3,))),
        after="Compare the d1 to d5 columns. On the stored runs beam search wins at difficulty 2 and 4, best-of-16 "
              "at difficulty 3, and both tie at 1 and 5: the winner does change with difficulty, the paper's point, "
              "though not in its neat easy-to-hard order. With six problems per level one problem is 17 points, so "
              "read the table as a direction, not a law; the Scaling tab sweeps many more problems and seeds and "
              "its compute-optimal table names the winner per difficulty.",
        stored_verdicts=(True, True)),
    Lesson(
        "verifier_hacking", "Searching against a verifier can hack it", (3, 40),
        story="Papers 3 and 40 search diffusion noise against a verifier and warn that the search optimises what "
              "the verifier measures, not what you wanted. Here `tiny-digits` draws the asked digit; the search "
              "verifier `digit-thickness` only measures how much ink there is, and never looks at which digit it "
              "is. The held-out `digit-judge`, a classifier the search never sees, says whether the image is the "
              "asked digit. Random search keeps the best of 16 images by its verifier's score.",
        question="with 16 tries against digit-thickness instead of 1, what happens to the judge's verdict?",
        choices=("many more images are the right digit", "about the same or fewer: the search only made them thicker",
                 "the verifier's score does not move either"),
        expected=1, arm_keys=("thick1", "thick16", "class16"), problems=DIGITS,
        claims=(Claim("thick16", "thick1", metric="score"), Claim("class16", "thick16")),
        after="On the 12 stored digits the thickness score climbs (about 0.63 to 0.76) while the judge's verdict "
              "barely moves (5 then 6 of 12 right): the search bought thicker strokes, not better digits. The same "
              "16 tries against digit-classifier, a verifier that reads the class, get all 12 right. (The verifier "
              "score column is each arm's own verifier, so compare it within an arm's verifier only.) The viewer "
              "replays a thickness search the judge calls wrong: its gallery shows each candidate's thickness score "
              "beside the judge's reading.",
        stored_verdicts=(True, True), live_problems=6, metric_name="judge says right", show_miss=True),
    Lesson(
        "particles_vs_beam", "Particle filtering against beam search as the budget grows", (26,),
        story="Paper 26 replaces beam search's hard pruning (keep the PRM's top N/M) with particle filtering: "
              "partial solutions are resampled in proportion to softmax(logit(PRM)/T), so a low-scored chain can "
              "survive. It reports that the gap to beam search grows with the budget, because beam search trusts "
              "an imperfect PRM too much. Both run on `tiny-arith-s` with N = 4 and N = 16.",
        question="at N = 16, which one is right more often?",
        choices=("beam search", "particle filtering", "the same"),
        expected=1, arm_keys=("s_beam4", "s_pf4", "s_beam16", "s_pf16"), problems=ARITH,
        claims=(Claim("s_pf16", "s_beam16"), Claim("s_pf4", "s_beam4")),
        after="On the stored runs the two tie at N = 4 and particle filtering is one problem ahead at N = 16 (on "
              "difficulty 3): a gap that opens as the budget grows, as the paper reports, but a small one. This PRM "
              "is good (within-problem AUROC 0.94), so beam search is rarely misled; the paper's gap comes from "
              "reward models that are easier to hack. The viewer's lanes show particles dying out and being copied, "
              "with the ESS below.",
        stored_verdicts=(True, False)),
    Lesson(
        "think_longer", "Thinking longer (budget forcing on tiny-think)", (8,),
        story="Paper 8 (*m1*) gives a thinking model a token budget: the end of thinking is forced at the budget, "
              "and an early stop is replaced by 'Wait,' so it thinks on. `tiny-think` is a small model trained to "
              "write a thought before its answer. One sample each, 16 or 128 thinking tokens.",
        question="does a larger thinking budget get more problems right?",
        choices=("yes", "no: overthinking hurts", "no difference"),
        expected=0, arm_keys=("think16", "think128"), problems=ARITH,
        claims=(Claim("think128", "think16"),),
        after="On the 30 stored problems 128 thinking tokens get two more right than 16 (at difficulty 3 and 4), "
              "for about twice the generated tokens. Paper 8 also finds a point past which more thinking stops "
              "helping (about 4K tokens on medical QA); the Scaling tab can sweep the budget to look for it here.",
        stored_verdicts=(True,)),
)
