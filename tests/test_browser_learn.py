"""Learn in a real browser: a guided lesson plays its stored result and runs live; every strategy in the registry
plays its shipped example run in the viewer; the map names every seed paper. Screenshots of Learn at
1400x1000 and 1024x768 (a projector) go to test-artifacts/."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.test_browser import ACTION_TIMEOUT_MS, ARTIFACTS, CHROMIUM, browser  # noqa: F401 - the fixture

PAPERS = Path(__file__).resolve().parents[2] / "shared" / "papers.md"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is missing (apt-get install chromium); "
                                "browser tests need a real browser")


def learn_page(browser, url: str, width: int = 1400, height: int = 1000):  # noqa: F811
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    page.on("dialog", lambda d: d.dismiss())
    page.goto(url)
    page.wait_for_selector("#run-btn", timeout=120_000)
    page.get_by_role("tab", name="Learn").click()
    page.wait_for_selector("#learn-cards")
    return page


def open_accordion(page, elem_id: str) -> None:
    """Open the accordion ``#elem_id`` unless it is open (a click on an open one closes it)."""
    label = page.locator(f"#{elem_id} button.label-wrap").first
    label.scroll_into_view_if_needed()
    if "open" not in (label.get_attribute("class") or ""):
        label.click()


def wait_text(page, selector: str, pattern: str, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = page.locator(selector).inner_text()
        if re.search(pattern, text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"{selector} never matched {pattern!r}; last: {text[:400]!r}")


def test_lesson_predict_then_stored_result_then_live(served, browser):  # noqa: F811
    url, store = served
    from ui.lessons_content import LESSONS
    lesson = LESSONS[0]
    page = learn_page(browser, url)
    play, live = page.locator(f"#lesson-{lesson.key}-play"), page.locator(f"#lesson-{lesson.key}-live")
    assert play.is_disabled() and live.is_disabled()  # predict first
    result = f"#lesson-{lesson.key}-result"
    assert "Answer the question first" in page.locator(result).inner_text()
    page.locator(f"#lesson-{lesson.key}-guess").get_by_label(lesson.choices[1]).check()
    play.click()
    text = wait_text(page, result, r"Stored result")
    for arm in lesson.arms:
        assert arm.label in text
    assert f"You predicted: {lesson.choices[1]}" in text
    assert re.search(r"[✔✘] (The claim|A tie)", text)
    # the viewer replays the lesson's run of its search arm
    page.wait_for_function("document.querySelectorAll('#learn-tree .scatterlayer path.point').length > 1",
                           timeout=30_000)
    assert lesson.claims[0].better.startswith("s_") and "tiny-arith-s" not in text  # the labels name S, not ids
    page.screenshot(path=str(ARTIFACTS / "learn-lesson-stored.png"), full_page=False)
    before = len(store.list_runs(limit=10_000))
    live.click()
    text = wait_text(page, result, r"Live result", timeout_s=240)
    assert f"{lesson.live_problems} problems per arm" in text
    runs = store.list_runs(limit=10_000)
    assert len(runs) - before == len(lesson.arms) * lesson.live_problems
    assert {r["sweep_id"] for r in runs[: len(runs) - before]} == {f"lesson:{a.key}" for a in lesson.arms}
    page.close()


def test_learn_plays_an_example_of_every_registered_strategy(served, browser):  # noqa: F811
    """Iterates the registry: a strategy added without a shipped example fails here."""
    url, _ = served
    from strategies.registry import STRATEGIES
    from ui import examples
    shipped = examples.load()
    missing = [n for n in STRATEGIES if n not in shipped.examples]
    assert not missing, f"no example run shipped for {missing}: register one in ui/examples.py and run " \
                        "python -m ui.examples"
    page = learn_page(browser, url)
    for name, info in STRATEGIES.items():
        open_accordion(page, f"learn-card-{name}")
        button = page.locator(f"#learn-play-{name}")
        button.scroll_into_view_if_needed()
        assert button.is_enabled(), name
        button.click()
        run_id = shipped.examples[name][0]["run_id"]
        wait_text(page, "#learn-status", re.escape(run_id), timeout_s=60)
        if "reasoning" in info.domains:
            page.wait_for_function("document.querySelectorAll('#learn-tree .scatterlayer path.point').length > 1",
                                   timeout=30_000)
        else:  # an image run: its shipped previews load in the gallery
            page.wait_for_function("""() => [...document.querySelectorAll('#learn-gallery img')]
                                     .some(i => i.complete && i.naturalWidth > 0)""", timeout=30_000)
        # the viewer sits beside the opened card, not at the top of the page
        card = page.locator(f"#learn-card-{name}").bounding_box()
        viewer = page.locator("#learn-status").bounding_box()
        assert viewer["x"] > card["x"] + card["width"] - 5, name
        assert viewer["y"] < page.viewport_size["height"] and viewer["y"] + viewer["height"] > 0, name
    page.close()


def test_map_names_every_seed_paper_and_links_cards(served, browser):  # noqa: F811
    if not PAPERS.exists():
        pytest.skip(f"{PAPERS} not here")
    url, _ = served
    titles = [m.group(1).strip() for m in re.finditer(r"^## \d+\. (.+)$", PAPERS.read_text(), re.M)]
    assert len(titles) >= 40
    page = learn_page(browser, url)
    text = page.locator("#learn-map-papers").inner_text()
    for i, title in enumerate(titles, 1):
        assert f"{i}. {title}" in text, title
    for branch in ("what", "how", "where", "how_well"):
        assert page.locator(f"#learn-map-{branch}").is_visible()
    # a paper's card link opens the card and brings it into view
    link = page.locator("#learn-map-papers a[href='#learn-card-particle_filtering']").first
    link.scroll_into_view_if_needed()
    link.click()
    label = page.locator("#learn-card-particle_filtering button.label-wrap").first
    page.wait_for_function("""() => document.querySelector('#learn-card-particle_filtering button.label-wrap')
                             .classList.contains('open')""", timeout=10_000)
    assert label.is_visible()
    page.close()


def test_learn_screenshots_and_code_blocks_wrap(served, browser):  # noqa: F811
    """Learn at 1400x1000 and at 1024x768; a card's pseudocode is never cut off on the right: a line wider than
    its column wraps, so no code block is wider inside than it shows."""
    url, _ = served
    for width, height in ((1400, 1000), (1024, 768)):
        page = learn_page(browser, url, width, height)
        open_accordion(page, "learn-card-fk_steering")  # the widest pseudocode
        page.click("#learn-play-fk_steering")
        page.wait_for_function("""() => [...document.querySelectorAll('#learn-gallery img')]
                                 .some(i => i.complete && i.naturalWidth > 0)""", timeout=30_000)
        page.locator("#learn-card-fk_steering").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"learn-{width}x{height}.png"), full_page=False)
        page.screenshot(path=str(ARTIFACTS / f"learn-{width}x{height}-full.png"), full_page=True)
        blocks = page.evaluate("""() => [...document.querySelectorAll('#learn-cards pre')]
            .filter(p => p.offsetParent !== null).map(p => p.scrollWidth - p.clientWidth)""")
        assert blocks and max(blocks) <= 1, blocks
        # the viewer's image views keep their height inside the viewer column (nothing squeezed to a line)
        assert page.locator("#learn-gallery").bounding_box()["height"] > 150
        page.close()
