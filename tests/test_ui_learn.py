"""Learn cards: one per strategy, each naming its paper exactly as ../shared/papers.md titles it."""
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
    assert STRATEGIES[name].paper in titles()
