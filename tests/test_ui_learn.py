"""Learn cards: one per strategy, each naming its paper exactly as ../shared/papers.md titles it; and the
page's domain headings, each with its cards."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from strategies.registry import STRATEGIES
from ui.learn_content import CARDS, card_markdown

PAPERS = Path(__file__).resolve().parents[2] / "shared" / "papers.md"
REASONING = [n for n, i in STRATEGIES.items() if "reasoning" in i.domains]
ALL = list(STRATEGIES)


def titles() -> set[str]:
    if not PAPERS.exists():
        pytest.skip(f"{PAPERS} not here")
    return {m.group(1).strip() for m in re.finditer(r"^## \d+\. (.+)$", PAPERS.read_text(), re.M)}


@pytest.mark.parametrize("name", ALL)
def test_card_has_idea_pseudocode_paper_and_parameters(name):
    assert name in CARDS
    text = card_markdown(name)
    for part in ("```python", "**Paper:**", "**When it wins:**", "**When it does not:**", "**Parameters:**"):
        assert part in text
    assert STRATEGIES[name].paper in text


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_paper_title_is_exactly_a_seed_paper(name):
    """A seed paper's title is quoted exactly; a strategy from a later paper says it is not a seed paper."""
    assert (STRATEGIES[name].paper in titles()) is STRATEGIES[name].seed_paper


def _cards_column():
    import gradio as gr

    from ui import learn
    from ui.common import AppContext

    with gr.Blocks():
        with gr.Column() as page:
            learn.build(AppContext(store=None, limits=None))
    return next(c for c in page.children if isinstance(c, gr.Row)).children[0]


def test_every_heading_of_the_learn_page_has_cards():
    """The cards column built as the app builds it: under "How to scale", each domain heading is followed by at
    least one card, every strategy has one card, and a domain that no strategy lists first (t2i) is named in a
    note under the heading of the methods that also search it, not given an empty heading of its own."""
    import gradio as gr

    cards: dict[str, list[str]] = {}
    notes: dict[str, list[str]] = {}
    heading = None
    for block in _cards_column().children:
        if isinstance(block, gr.Markdown) and block.value.startswith("#### "):
            heading = block.value[5:]
            cards[heading], notes[heading] = [], []
        elif heading is not None and isinstance(block, gr.Markdown) and block.value.startswith("### "):
            break  # the map's next part: the cards' sections end here
        elif heading is not None and isinstance(block, gr.Markdown):
            notes[heading].append(block.value)
        elif heading is not None and isinstance(block, gr.Accordion):
            cards[heading].append(block.elem_id.removeprefix("learn-card-"))
    assert cards and all(cards.values()), cards
    assert sorted(n for names in cards.values() for n in names) == sorted(STRATEGIES)
    assert not any("t2i" in h for h in cards)
    image = next(h for h in cards if h.startswith("Images"))
    note = " ".join(notes[image])
    assert "t2i" in note
    # the note names the image methods that do not search t2i, read from the registry
    for name in cards[image]:
        assert (STRATEGIES[name].title in note) is ("t2i" not in STRATEGIES[name].domains)


def test_the_map_is_the_spine_and_places_every_seed_paper_once():
    """The four questions in the survey's order, the cards under "How to scale", and every seed paper placed once
    under its exact title and number, on leaves the map has."""
    import gradio as gr

    from ui.learn_map import BRANCHES, PLACES

    order = [b.elem_id for b in _cards_column().children if getattr(b, "elem_id", None)
             and (b.elem_id.startswith("learn-map-") or b.elem_id.startswith("learn-card-"))]
    spine = [e for e in order if e.startswith("learn-map-")]
    assert spine == ["learn-map-what", "learn-map-how", "learn-map-where", "learn-map-how_well", "learn-map-papers"]
    first_card = next(i for i, e in enumerate(order) if e.startswith("learn-card-"))
    assert order.index("learn-map-how") < first_card < order.index("learn-map-where")
    numbered = {int(m.group(1)): m.group(2).strip() for m in
                re.finditer(r"^## (\d+)\. (.+)$", PAPERS.read_text(), re.M)} if PAPERS.exists() else None
    if numbered is None:
        pytest.skip(f"{PAPERS} not here")
    assert {p.number: p.title for p in PLACES} == numbered
    leaves = {b.key: {leaf for leaf, _ in b.leaves} for b in BRANCHES}
    for p in PLACES:
        for key in leaves:
            assert getattr(p, key) and set(getattr(p, key)) <= leaves[key], (p.number, key)
        assert p.runs or p.feature or p.needs, p.number  # what runs it here, or what it would take
    assert isinstance(_cards_column(), gr.Column)


def test_a_paper_links_the_cards_it_runs_and_says_what_is_missing_otherwise():
    from ui.learn import place_markdown
    from ui.learn_map import PLACES

    pf = next(p for p in PLACES if p.number == 26)
    assert "(#learn-card-particle_filtering)" in place_markdown(pf)
    assert "Not run here yet" not in place_markdown(pf)
    video = next(p for p in PLACES if p.number == 2)
    assert "Not run here yet" in place_markdown(video) and "#learn-card-" not in place_markdown(video)
    # a strategy named by a paper but not in the registry (built on another branch) is not linked
    trim = next(p for p in PLACES if p.number == 16)
    text = place_markdown(trim)
    assert ("#learn-card-thought_truncation" in text) is ("thought_truncation" in STRATEGIES)
    assert ("Not run here yet" in text) is ("thought_truncation" not in STRATEGIES)


def test_every_strategy_has_an_example_config_that_the_engine_accepts():
    """A strategy added to the registry gets an example (its domain's default or its own entry) that prepare()
    accepts, so python -m ui.examples can ship it."""
    from engine.run import RunConfig, prepare
    from ui.examples import example_config

    for name in STRATEGIES:
        config = example_config(name)
        assert config["strategy"] == name
        prepare(RunConfig(**config))
