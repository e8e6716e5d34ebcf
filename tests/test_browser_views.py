"""Issue 18 in a real browser (the setup of test_browser.py): the same problem for several strategies and Compare
saying when runs solved different problems, a folded tree with its count, a refused run's reason kept in the
status line once the toast is gone, and empty panels that say what to do on their tab."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.test_browser import ARTIFACTS, browser, new_page, pick, points, status, wait_new_run_finished  # noqa: F401

__all__ = ["browser"]  # the module-scoped browser fixture, shared with test_browser.py's setup


def test_same_problem_runs_open_in_compare_and_different_problems_are_flagged(served, browser):
    url, store = served
    page = new_page(browser, url)
    page.locator("#explore-pin input").fill("test:17")
    pick(page, "explore-budget", "8")
    before = {r["id"] for r in store.list_runs()}
    page.click("#explore-same-run")  # beam search and particle filtering, the defaults
    note = page.locator("#compare-problems")
    expect(note).to_contain_text("Same problem", timeout=180_000)
    expect(note).to_contain_text("test:17", timeout=30_000)
    new = [r for r in store.list_runs() if r["id"] not in before]
    assert sorted(r["strategy"] for r in new) == ["beam_search", "particle_filtering"]
    assert {r["problem_uid"] for r in new} == {"test:17"} and {r["budget"] for r in new} == {8}
    table = page.locator("#compare-metrics")
    for r in new:
        table.get_by_text(r["id"], exact=False).first.wait_for(timeout=30_000)
    expect(table).to_contain_text("problem text", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "compare-same-problem.png"), full_page=True)

    # a run on another problem beside one of them: said plainly, with each run's problem
    page.get_by_role("tab", name="Explore").click()
    page.locator("#explore-pin input").fill("test:18")
    pick(page, "explore-strategy", "Best-of-N")
    page.click("#run-btn")
    other = wait_new_run_finished(page, "explore", [r["id"] for r in new])
    expect(page.locator("#explore-status")).to_contain_text("test:18", timeout=30_000)
    page.close()
    page = new_page(browser, url)
    page.get_by_role("tab", name="Compare").click()
    for rid in (new[0]["id"], other):
        page.click("#compare-pick input")
        page.locator("[data-testid=dropdown-option]").filter(has_text=rid).first.click()
    page.keyboard.press("Escape")
    page.click("#compare-btn")
    note = page.locator("#compare-problems")
    expect(note).to_contain_text("Different problems", timeout=30_000)
    expect(note).to_contain_text("test:18", timeout=30_000)
    expect(note).to_contain_text("test:17", timeout=30_000)
    page.close()


def test_folded_tree_at_n16_shows_a_counted_node(served, browser):
    url, store = served
    page = new_page(browser, url)
    pick(page, "explore-strategy", "Best-of-N")
    pick(page, "explore-budget", "16")
    page.locator("#explore-problem textarea").fill("Start with 2. Add 3.")  # easy: many of the 16 samples agree
    page.click("#run-btn")
    rid = wait_new_run_finished(page, "explore", [])
    page.wait_for_function("[...document.querySelectorAll('#explore-tree .textpoint text')]"
                           ".some(t => /×\\d+/.test(t.textContent))", timeout=30_000)
    counts = [int(m) for t in page.locator("#explore-tree .textpoint text").all_text_contents()
              for m in re.findall(r"×(\d+)", t)]
    finished = [e for e in store.events(rid) if e.get("type") == "NodeAdded" and e.get("finished")]
    assert len(finished) == 16 and counts and max(counts) >= 2
    # one marker per distinct candidate and the root: fewer than the 17 nodes
    assert points(page, "explore-tree") < 17 + 16  # markers plus their answer rings, far fewer than unfolded
    page.screenshot(path=str(ARTIFACTS / "explore-folded.png"), full_page=True)
    page.close()


def test_a_bad_budgets_reason_stays_in_the_status_line_after_the_toast(served, browser):
    url, _ = served
    page = new_page(browser, url)
    pick(page, "explore-strategy", "Best-of-N")
    pick(page, "explore-budget", "4")
    page.click("#run-btn")
    wait_new_run_finished(page, "explore", [])
    box = page.locator("#explore-budget input")
    box.fill("1000")
    box.press("Enter")
    page.keyboard.press("Escape")
    page.click("#run-btn")
    toast = page.locator("[data-testid=toast-body]").first
    toast.wait_for(timeout=30_000)
    assert "budget must be a whole number from 1 to" in toast.inner_text()
    page.locator("[data-testid=toast-close]").first.click()
    expect(page.locator("[data-testid=toast-body]")).to_have_count(0, timeout=20_000)
    line = status(page, "explore")
    assert "budget must be a whole number from 1 to" in line and "1000" in line
    assert "finished" not in line  # not the previous run's message under the new badge
    page.screenshot(path=str(ARTIFACTS / "explore-refused.png"), full_page=True)
    page.close()


def test_empty_panels_say_what_to_do_on_their_tab(served, browser):
    url, _ = served
    page = new_page(browser, url)
    wait = 60_000  # a loaded machine draws the first figures slowly
    expect(page.locator("#explore-tree")).to_contain_text("Press Run", timeout=wait)
    says = {"Runs": ("#runs-tree", "Open a run"), "Compare": ("#compare-tree-0", "Choose two to four runs"),
            "Learn": ("#learn-tree", "Play button")}
    for tab, (panel, text) in says.items():
        page.get_by_role("tab", name=tab).click()
        expect(page.locator(panel)).to_contain_text(text, timeout=wait)
        assert "Press Run" not in page.locator(panel).inner_text()  # no Run button on this tab
    page.get_by_role("tab", name="Compare").click()
    expect(page.locator("#compare-score")).to_contain_text("press Compare", timeout=wait)
    expect(page.locator("#compare-problems")).to_contain_text("Choose two to four runs", timeout=wait)
    page.close()
