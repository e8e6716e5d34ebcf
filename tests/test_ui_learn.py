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


def test_every_heading_of_the_learn_page_has_cards():
    """The cards column built as the app builds it: each domain heading is followed by at least one card, every
    strategy has one card, and a domain that no strategy lists first (t2i) is named in a note under the
    heading of the methods that also search it, not given an empty heading of its own."""
    import gradio as gr

    from ui import learn
    from ui.common import AppContext

    with gr.Blocks():
        with gr.Column() as page:
            learn.build(AppContext(store=None, limits=None))
    column = next(c for c in page.children if isinstance(c, gr.Row)).children[0]
    cards: dict[str, list[str]] = {}
    notes: dict[str, list[str]] = {}
    heading = None
    for block in column.children:
        if isinstance(block, gr.Markdown) and block.value.startswith("#### "):
            heading = block.value[5:]
            cards[heading], notes[heading] = [], []
        elif isinstance(block, gr.Markdown):
            notes[heading].append(block.value)
        elif isinstance(block, gr.Accordion):
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
