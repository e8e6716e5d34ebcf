"""Issue 18's view logic without a browser: folded siblings, the whole run's layout in replays and Compare, step
text on small trees, log tick labels, the Compare problem line and a refused run's status line."""
from __future__ import annotations

import math

import pytest

from ui.figures.style import MARKS, log_ticks, short_number
from ui.figures.tables import metrics_rows, problem_id, problems_html, status_html
from ui.figures.tree import LABEL_MAX_ROWS, fold_siblings, tree_figure, whole_run_layout
from ui.fold import ViewState, fold


def started(run_id: str = "r1", uid: str = "test:17", text: str = "Start with 2. Add 3.") -> dict:
    return {"type": "RunStarted", "run_id": run_id, "strategy": "best_of_n", "params": {},
            "problem": {"uid": uid, "text": text, "answer": "5"}, "config": {"domain": "reasoning", "budget": 4}}


def node(nid: str, parent: str | None, step: int, preview: str, finished: bool = False, answer: str | None = None):
    return {"type": "NodeAdded", "id": nid, "parent": parent, "step": step, "preview": preview, "finished": finished,
            "answer": answer}


def scored(nid: str, score: float) -> dict:
    return {"type": "NodeScored", "id": nid, "score": score}


def bon_events(answers: list[str], scores: list[float]) -> list[dict]:
    """A root and one finished child per answer: what best-of-N draws."""
    evs = [started(), node("n0", None, 0, "Start with 2. Add 3.")]
    for i, (a, sc) in enumerate(zip(answers, scores), start=1):
        evs += [node(f"n{i}", "n0", 2, f"The answer is {a}", True, a), scored(f"n{i}", sc)]
    evs.append({"type": "StepDone", "step": 1})
    return evs


def trace(fig, name: str):
    return [t for t in fig.data if t.name == name]


def test_identical_finished_siblings_fold_into_one_counted_node():
    evs = bon_events(["5"] * 12 + ["7"] * 3 + ["5"], [0.9] * 12 + [0.2] * 3 + [0.4])
    st = fold(evs)
    groups = fold_siblings(st)
    # twelve identical "5" (same text and score), three identical "7"; the "5" scored 0.4 differs in score
    assert sorted(len(v) for v in groups.values()) == [3, 12]
    fig = tree_figure(st)
    counts = sorted(t for tr in trace(fig, "folded") for t in tr.text)
    assert [c.strip("\u2003") for c in counts] == ["<b>×12</b>", "<b>×3</b>"]
    drawn = sum(len(tr.x) for tr in fig.data if tr.mode == "markers" and tr.name in ("scored", "not scored"))
    assert drawn == 1 + 3  # the root and three distinct candidates
    hover = " ".join(h for tr in trace(fig, "scored") for h in tr.hovertext)
    assert "12 identical candidates" in hover


def test_the_chosen_node_stands_for_its_group_and_different_parents_do_not_fold():
    evs = bon_events(["5"] * 4, [0.9] * 4) + [{"type": "Selected", "id": "n3"}]
    evs += [node("m1", "n1", 3, "The answer is 5", True, "5"), node("m2", "n2", 3, "The answer is 5", True, "5")]
    st = fold(evs)
    groups = fold_siblings(st)
    assert list(groups) == ["n3"] and groups["n3"][0] == "n3"  # the chosen path ends on a drawn node
    assert not any("m1" in g for g in groups.values())  # cousins, not siblings


def test_image_candidates_never_fold():
    st = fold(bon_events(["3"] * 4, [0.5] * 4))
    st.domain = "image"
    assert fold_siblings(st) == {}


def test_a_node_keeps_its_place_through_the_replay():
    """Beam-search-like growth: children added at later steps would shift the leaf order of a per-frame layout."""
    evs = [started(), node("n0", None, 0, "p")]
    evs += [node("a", "n0", 1, "2 + 3 = 5"), node("b", "n0", 1, "2 + 3 = 6"), {"type": "StepDone", "step": 1}]
    evs += [node("a1", "a", 2, "5 * 2 = 10"), node("a2", "a", 2, "5 * 2 = 11"), node("b1", "b", 2, "6 * 2 = 12"),
            {"type": "StepDone", "step": 2}]
    whole = fold(evs)
    layout = whole_run_layout(whole)
    positions = []
    for k in (1, 2):
        st = fold(evs, upto_step=k)
        fig = tree_figure(st, layout=layout)
        pts = trace(fig, "not scored")[0]
        ids = [n.id for n in st.nodes.values() if n.score is None and not n.pruned]
        positions.append({i: (float(x), float(y)) for i, x, y in zip(ids, pts.x, pts.y)})
        assert list(fig.layout.yaxis.range) == list(tree_figure(whole).layout.yaxis.range)
        assert list(fig.layout.xaxis.range) == list(tree_figure(whole).layout.xaxis.range)
    assert all(positions[1][i] == positions[0][i] for i in positions[0])
    # without the whole run's layout step 1 would put "b" elsewhere (it has fewer leaves under it then)
    alone = trace(tree_figure(fold(evs, upto_step=1)), "not scored")[0]
    assert (float(alone.x[2]), float(alone.y[2])) != positions[1]["b"]


def test_compare_panels_share_one_step_axis():
    short = fold(bon_events(["5"], [0.9]))
    layout = whole_run_layout(short, max_step=6)
    assert tree_figure(short, layout=layout).layout.xaxis.range[1] > 6
    assert tree_figure(short).layout.xaxis.range[1] < 4


def test_step_text_is_drawn_on_small_trees_only():
    small = fold(bon_events(["5", "6", "7"], [0.9, 0.5, 0.1]))
    labels = trace(tree_figure(small), "step text")
    assert labels and "The answer is 5<br> " in labels[0].text
    answers = [str(i) for i in range(LABEL_MAX_ROWS + 4)]
    big = fold(bon_events(answers, [i / 100 for i in range(len(answers))]))
    assert not trace(tree_figure(big), "step text")  # hover only


def test_step_text_is_escaped():
    st = fold(bon_events(["<b>x</b>"], [0.5]))
    text = trace(tree_figure(st), "step text")[0].text[0]
    assert "<b>" not in text and "&lt;b&gt;" in text


@pytest.mark.parametrize("values, expected", [
    ([1200, 4800], ["1k", "1.5k", "2k", "3k", "5k"]),
    ([3, 400], ["2", "5", "10", "20", "50", "100", "200", "500"]),
    ([2_000, 9_000_000], ["1k", "3k", "10k", "30k", "100k", "300k", "1M", "3M", "10M"]),
])
def test_log_ticks_read_as_numbers(values, expected):
    ticks = log_ticks(values)
    assert ticks["ticktext"] == expected
    assert all(math.isclose(float(v), float(t.replace("k", "e3").replace("M", "e6")))
               for v, t in zip(ticks["tickvals"], ticks["ticktext"]))
    assert log_ticks([]) == {} and log_ticks([0, -1]) == {}


def test_a_narrow_log_range_is_ticked_at_its_ends():
    assert log_ticks([80, 80]) == {"tickvals": [80.0], "ticktext": ["80"]}
    assert log_ticks([1234, 1800])["ticktext"] == ["1.23k", "1.8k"]


def test_short_numbers():
    assert [short_number(x) for x in (1, 20, 500, 1000, 2500, 1e6, 0.2)] == ["1", "20", "500", "1k", "2.5k", "1M",
                                                                           "0.2"]


def test_the_score_curve_uses_the_readable_ticks():
    from ui.figures.curves import score_vs_compute_figure

    st = fold(bon_events(["5"], [0.9]))
    st.score_trace = [(900.0, 0.0, 0.0, 0.5, 0.0), (4000.0, 0.0, 0.0, 0.9, 0.0)]
    fig = score_vs_compute_figure([st], ["a"])
    assert "1k" in fig.layout.xaxis.ticktext and "2" not in fig.layout.xaxis.ticktext


def test_compare_says_when_the_runs_solved_different_problems():
    a = fold([started("r1", "test:17", "Start with 2. Add 3.")])
    b = fold([started("r2", "test:18", "Start with 4. Add 1.")])
    c = fold([started("r3", "test:17", "Start with 2. Add 3.")])
    diff = problems_html([a, b], ["r1", "r2"])
    assert "Different problems" in diff and "test:18" in diff and "Start with 4. Add 1." in diff
    same = problems_html([a, c], ["r1", "r3"])
    assert "Same problem" in same and "Different" not in same and "test:17" in same
    headers, rows = metrics_rows([a, b], ["r1", "r2"])
    by = {r[0]: r[1:] for r in rows}
    assert by["problem"] == ["test:17", "test:18"] and by["budget"] == [4, 4]
    evil = fold([started("r4", "seed:1:2", "<script>x</script>")])
    assert problem_id(evil) is None
    assert "<script>" not in problems_html([a, evil], ["r1", "<i>r4</i>"])


def test_status_line_names_the_problem_id_and_a_refusal():
    assert 'data-testid="problem-id">test:17<' in status_html(fold([started()]))
    refused = status_html(ViewState(status="refused", error="budget must be a whole number from 1 to 64, got 99"))
    assert "refused: budget must be a whole number from 1 to 64, got 99" in refused


def test_table_marks_are_the_heavy_ones():
    assert MARKS == {True: "✔", False: "✘", None: ""}


def test_the_particle_lanes_and_the_tree_share_the_step_axis():
    from engine.run import RunConfig, execute
    from storage import RunStore
    from ui.figures.particles import particle_figure

    store = RunStore(__import__("pathlib").Path(__import__("tempfile").mkdtemp()) / "runs.db")
    events = list(execute(RunConfig(strategy="particle_filtering", budget=4, problem_id="test:3", seed=0), store))
    store.close()
    st = fold(events)
    assert st.particle_steps
    tree_x = list(tree_figure(st).layout.xaxis.range)
    lanes = particle_figure(st)
    assert list(lanes.layout.xaxis.range) == tree_x == list(lanes.layout.xaxis2.range)
    # in a replay both keep the whole run's axis
    early = fold(events, upto_step=1)
    layout = whole_run_layout(st)
    assert list(tree_figure(early, layout=layout).layout.xaxis.range) == tree_x
    assert list(particle_figure(early, max_step=layout.max_step).layout.xaxis.range) == tree_x
