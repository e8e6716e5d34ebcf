"""Guided lessons: the experiment engine (arms run on the same problems into a real SQLite store, summaries over
the problems every arm finished, claims checked) and the shipped lesson runs the stories were written for."""
from __future__ import annotations

import pytest

from engine.lessons import Arm, ArmSummary, Claim, Row, check, run_lesson, stored_rows, summarize, tag
from ui.lessons_content import ARMS, LESSONS, Lesson


def row(arm: str, problem: str, correct: bool, difficulty: int = 1, score: float | None = None) -> Row:
    return Row(arm, problem, difficulty, correct, score, 10.0, 5.0, f"r-{arm}-{problem}")


A, B = Arm("a", "arm A", {}), Arm("b", "arm B", {})


def test_summaries_compare_only_problems_every_arm_finished():
    rows = [row("a", "p1", True), row("a", "p2", True), row("b", "p1", False)]
    s = summarize([A, B], rows)
    assert [r.problem for r in s["a"].rows] == ["p1"] and s["a"].accuracy() == 1.0 and s["b"].accuracy() == 0.0


def test_check_says_holds_tie_or_not_with_the_numbers():
    s = summarize([A, B], [row("a", "p1", True, 4), row("b", "p1", False, 4), row("a", "p2", False, 1),
                           row("b", "p2", True, 1)])
    holds, text = check(Claim("a", "b", difficulties=(4,)), s)
    assert holds is True and "arm A right 100%, arm B 0%" in text and "difficulty 4" in text
    assert check(Claim("a", "b"), s)[0] is False and "tie" in check(Claim("a", "b"), s)[1]
    assert check(Claim("b", "a", difficulties=(4,)), s)[0] is False
    assert check(Claim("a", "b", difficulties=(5,)), s)[0] is None


def test_score_claims_use_the_verifier_score():
    s = {"a": ArmSummary(A, [row("a", "p", False, score=0.9)]), "b": ArmSummary(B, [row("b", "p", True, score=0.2)])}
    assert check(Claim("a", "b", metric="score"), s)[0] is True
    assert check(Claim("a", "b"), s)[0] is False


def test_shown_run_is_the_claim_at_work():
    lesson = Lesson("k", "t", (1,), "s", "q?", ("x", "y"), 0, ("s_pf16", "l_greedy"), ("p1", "p2", "p3"),
                    (Claim("s_pf16", "l_greedy"),), "after", (True,))
    rows = [row("s_pf16", "p1", True), row("l_greedy", "p1", True), row("s_pf16", "p2", True),
            row("l_greedy", "p2", False)]
    assert lesson.shown(rows) == ["r-s_pf16-p2"]
    assert lesson.shown(rows[:2]) == ["r-s_pf16-p1"]  # no problem shows it: the first run of the arm
    assert lesson.shown([]) == []


def test_run_lesson_runs_every_arm_on_every_problem_into_the_store(tmp_path):
    from storage import RunStore
    arms = [Arm("t_greedy", "greedy", {"strategy": "greedy", "budget": 1}),
            Arm("t_bon", "best-of-2", {"strategy": "best_of_n", "budget": 2})]
    store = RunStore(tmp_path / "runs.db")
    try:
        rows = list(run_lesson(arms, ["test:0", "test:1"], store))
        assert [(r.arm, r.problem) for r in rows] == [("t_greedy", "test:0"), ("t_bon", "test:0"),
                                                      ("t_greedy", "test:1"), ("t_bon", "test:1")]
        assert all(store.get_run(r.run_id)["sweep_id"] == tag(r.arm) for r in rows)
        assert sorted(stored_rows(store, arms, ("test:1",)), key=lambda r: r.arm) == \
            sorted([r for r in rows if r.problem == "test:1"], key=lambda r: r.arm)
        assert all(r.tokens > 0 and r.flops > 0 for r in rows)
    finally:
        store.close()


def test_a_lesson_over_the_caps_is_refused_before_any_run(tmp_path):
    from engine.limits import Limits
    from engine.run import ConfigError
    from storage import RunStore
    store = RunStore(tmp_path / "runs.db")
    try:
        with pytest.raises(ConfigError, match="budget"):
            list(run_lesson([ARMS["s_pf16"]], ["test:0"], store, limits=Limits(max_budget=8)))
        assert store.list_runs() == []
    finally:
        store.close()


def test_lessons_are_well_formed():
    for lesson in LESSONS:
        assert set(lesson.arm_keys) <= set(ARMS)
        assert 0 <= lesson.expected < len(lesson.choices)
        for claim in lesson.claims:
            assert {claim.better, claim.worse} <= set(lesson.arm_keys)
        assert 0 < lesson.live_problems <= len(lesson.problems)
        assert len(lesson.stored_verdicts) == len(lesson.claims)


@pytest.fixture(scope="module")
def shipped():
    from ui import examples
    if not examples.EXAMPLES_DB.exists():
        pytest.skip("no ui/examples.db (python -m ui.examples writes it)")
    return examples.load()


def test_the_shipped_file_has_every_lesson_run_the_stories_were_written_for(shipped):
    """Every arm of every lesson on every problem, and the claims come out as each story says they do."""
    for lesson in LESSONS:
        rows = shipped.lessons[lesson.key]
        assert {(r.arm, r.problem) for r in rows} == {(a, p) for a in lesson.arm_keys for p in lesson.problems}
        s = summarize(lesson.arms, rows)
        assert tuple(check(c, s)[0] for c in lesson.claims) == lesson.stored_verdicts, lesson.key
        shown = lesson.shown(rows)
        assert shown and shipped.events[shown[0]][-1]["type"] == "RunEnded"


def test_shipped_image_examples_point_at_unpacked_previews(shipped):
    """Image examples come with their previews: every PNG an event names is a file in the images root."""
    from pathlib import Path

    from strategies.registry import STRATEGIES
    from ui.common import images_root
    from ui.figures.images import image_path
    for name, info in STRATEGIES.items():
        if info.domains[0] != "image":
            continue
        previews = [e["preview"] for e in shipped.examples[name] if str(e.get("preview", "")).endswith(".png")]
        assert previews, name
        assert all(image_path(p, images_root()) for p in previews), (name, previews[:2])
        assert all(Path(p).is_relative_to(images_root()) for p in previews)


def test_drop_events_keeps_the_run_row_and_its_outcome(tmp_path):
    """How the shipped file stays small: a counted-only lesson run loses its events and nodes, not its row."""
    from storage import RunStore
    store = RunStore(tmp_path / "runs.db")
    try:
        kept, dropped = list(run_lesson([ARMS["s_beam4"]], ["test:0", "test:1"], store))
        store.drop_events(dropped.run_id)
        assert store.events(dropped.run_id) == [] and store.nodes(dropped.run_id) == []
        rows = stored_rows(store, [ARMS["s_beam4"]], ("test:0", "test:1"))
        assert sorted(rows, key=lambda r: r.problem) == [kept, dropped]
        assert store.events(kept.run_id) and store.nodes(kept.run_id)
    finally:
        store.close()


def test_a_hacking_lesson_shows_a_run_the_judge_calls_wrong():
    lesson = Lesson("k", "t", (3,), "s", "q?", ("x", "y"), 0, ("thick16", "thick1"), ("p1", "p2"),
                    (Claim("thick16", "thick1", metric="score"),), "after", (True,), show_miss=True)
    rows = [row("thick16", "p1", True), row("thick1", "p1", False), row("thick16", "p2", False),
            row("thick1", "p2", False)]
    assert lesson.shown(rows) == ["r-thick16-p2"]
