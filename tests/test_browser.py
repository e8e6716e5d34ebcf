"""The app in a real browser: Playwright (sync API) driving Debian's chromium, headless.

One app is launched for the module on a free local port, with its own temporary database. Screenshots of
every tab go to test-artifacts/ (git-ignored). The time to the first visible update after pressing Run is
measured by bench/first_update.py (tests assert no wall-clock times).
"""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ACTION_TIMEOUT_MS = 90_000  # generous: a loaded 2-core machine renders slowly
EVIL = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">${window.__xss=3}'

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is missing (apt-get install chromium); "
                                "browser tests need a real browser")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def new_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    page.on("dialog", lambda d: d.dismiss())  # an alert() would be an injection: never block on it
    page.goto(url)
    page.wait_for_selector("#run-btn", timeout=120_000)
    return page


def pick(page, elem_id: str, label: str) -> None:
    """Choose ``label`` in the gradio dropdown ``#elem_id``."""
    page.click(f"#{elem_id} input")
    page.locator("[data-testid=dropdown-option]").filter(
        has_text=re.compile(rf"(^|\W){re.escape(label)}\s*$")).first.click()
    page.keyboard.press("Escape")


def points(page, elem_id: str) -> int:
    """How many plotly markers the plot ``#elem_id`` draws right now."""
    return page.locator(f"#{elem_id} .scatterlayer path.point").count()


def status(page, prefix: str) -> str:
    return page.locator(f"#{prefix}-status").inner_text()


def wait_status(page, prefix: str, pattern: str, timeout_s: float = 90) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = status(page, prefix)
        if re.search(pattern, text):
            return text
        time.sleep(0.05)
    raise AssertionError(f"status never matched {pattern!r}; last: {text!r}")


def wait_new_run_finished(page, prefix: str, not_ids: list[str], timeout_s: float = 120) -> str:
    """The id of a finished run shown in ``prefix``'s status that is none of ``not_ids``."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = status(page, prefix)
        m = re.search(r"run (r[0-9a-f]+) · finished", text)
        if m and m.group(1) not in not_ids:
            return m.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no new finished run; last status: {text!r}")


def run_id_of(text: str) -> str:
    m = re.search(r"run (r[0-9a-f]+)", text)
    assert m, text
    return m.group(1)


def test_run_grows_tree_live_then_replay_in_runs(served, browser):
    url, store = served
    page = new_page(browser, url)
    page.screenshot(path=str(ARTIFACTS / "explore-ready.png"), full_page=True)
    # MCTS on a hard problem: thousands of small sequential model calls (a few seconds on a 2-core machine),
    # so the throttled stream has time to show the tree at more than one size; batched strategies on the
    # trained tiny models finish in a fraction of a second
    pick(page, "explore-strategy", "MCTS")
    pick(page, "explore-budget", "32")
    page.locator("#explore-difficulty").get_by_label("5").check()
    # every size the tree is drawn at, recorded in the page itself (polling from here can miss a frame)
    page.evaluate("""() => {
        window.__sizes = [];
        const root = document.querySelector('#explore-tree') || document.body;
        new MutationObserver(() => {
            const n = root.querySelectorAll('.scatterlayer path.point').length;
            const a = window.__sizes;
            if (n && (!a.length || a[a.length - 1] !== n)) a.push(n);
        }).observe(root, {subtree: true, childList: true, attributes: true});
    }""")
    page.click("#run-btn")
    text = wait_status(page, "explore", r"finished", timeout_s=120)
    final = points(page, "explore-tree")
    settle = time.monotonic() + 5  # the final figure may render a moment after the status
    while time.monotonic() < settle and points(page, "explore-tree") == final:
        time.sleep(0.2)
    seen: list[int] = page.evaluate("window.__sizes")
    assert len(seen) >= 2 and seen[-1] > seen[0], f"tree did not grow while running: {seen}"
    rid = run_id_of(text)
    page.screenshot(path=str(ARTIFACTS / "explore-finished.png"), full_page=True)
    assert store.get_run(rid)["status"] == "finished"

    page.get_by_role("tab", name="Runs").click()
    page.locator("#runs-table").get_by_text(rid, exact=True).filter(visible=True).first.click()
    opened = wait_status(page, "runs", rf"run {rid}.*finished")
    assert "finished" in opened
    page.wait_for_function("document.querySelectorAll('#runs-tree .scatterlayer path.point').length > 1")
    # the replay slider drives the views: step 1 shows fewer nodes than the end
    full = points(page, "runs-tree")
    slider = page.locator("#runs-slider input[type=number]")
    slider.fill("1")
    slider.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('#runs-tree .scatterlayer path.point').length < {full}",
                           timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "runs.png"), full_page=True)
    page.close()


def test_compare_two_runs_and_screenshot_every_tab(served, browser):
    url, store = served
    page = new_page(browser, url)
    ids = []
    for strategy in ("Best-of-N", "Beam search"):
        pick(page, "explore-strategy", strategy)
        pick(page, "explore-budget", "8")
        page.click("#run-btn")
        ids.append(wait_new_run_finished(page, "explore", ids))
    assert len(set(ids)) == 2
    page.get_by_role("tab", name="Compare").click()
    for rid in ids:
        page.click("#compare-pick input")
        page.locator("[data-testid=dropdown-option]").filter(has_text=rid).first.click()
    page.keyboard.press("Escape")
    page.click("#compare-btn")
    table = page.locator("#compare-metrics")
    for rid in ids:
        table.get_by_text(rid, exact=False).first.wait_for(timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#compare-tree-1 .scatterlayer path.point').length > 1",
                           timeout=30_000)
    assert points(page, "compare-tree-0") > 1
    page.locator("#compare-score .scatterlayer path.point").first.wait_for(timeout=10_000)
    page.locator("#compare-metrics").get_by_text("eFLOPs (295 FLOP/B)").first.wait_for(timeout=10_000)
    page.locator("#compare-axis").get_by_label("eFLOPs").check()
    page.locator("#compare-score").get_by_text("eFLOPs (FLOPs", exact=False).first.wait_for(timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)

    # a small sweep from the page: greedy and best-of-N at budgets 1 and 4 on 2 problems
    page.get_by_role("tab", name="Scaling").click()
    page.locator("#sweep-problems input").fill("2")
    page.locator("#sweep-strategies").get_by_label("Beam search").uncheck()
    page.locator("#sweep-budgets").get_by_label("16").uncheck()
    page.click("#sweep-run")
    page.locator("#sweep-progress").get_by_text("done").wait_for(timeout=120_000)
    page.locator("#sweep-figure .scatterlayer path.point").first.wait_for()
    assert page.locator("#sweep-table").get_by_text("best_of_n").count() > 0
    # the Kinetics axis and the compute-optimal paper's binning redraw the figure and the table
    page.locator("#sweep-axis").get_by_label("eFLOPs").check()
    page.locator("#sweep-figure").get_by_text("eFLOPs per problem", exact=False).first.wait_for(timeout=20_000)
    page.locator("#sweep-table").get_by_text("eFLOPs / problem").first.wait_for(timeout=20_000)
    page.locator("#sweep-binning").get_by_label("pass@1 quintiles").check()
    page.locator("#sweep-figure").get_by_text("pass@1 level", exact=False).first.wait_for(timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "scaling.png"), full_page=True)
    page.get_by_role("tab", name="Learn").click()
    page.locator("#learn-card-beam_search").get_by_text("Beam search").first.click()  # open its card
    page.click("#learn-play-beam_search")
    page.wait_for_function("document.querySelectorAll('#learn-tree .scatterlayer path.point').length > 1",
                           timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "learn.png"), full_page=True)
    page.get_by_role("tab", name="Explore").click()
    page.screenshot(path=str(ARTIFACTS / "explore.png"), full_page=True)
    page.close()


def test_html_in_problem_text_shows_as_text_and_runs_nothing(served, browser):
    url, store = served
    # a stored run whose problem and step texts carry markup (as a hub model's output could)
    rid = store.create_run({"domain": "reasoning", "model": "tiny-arith-s", "strategy": "best_of_n", "budget": 1,
                            "problem_text": EVIL, "params": {}})
    store.append_events(rid, [
        {"type": "RunStarted", "run_id": rid, "strategy": "best_of_n", "params": {"n": 1},
         "problem": {"uid": None, "text": EVIL, "answer": EVIL, "difficulty": 1}, "prompt": EVIL},
        {"type": "NodeAdded", "id": "n0", "parent": None, "step": 0, "preview": EVIL, "finished": False,
         "answer": None, "node_cost": {}},
        {"type": "NodeAdded", "id": "n1", "parent": "n0", "step": 1, "preview": EVIL, "finished": True,
         "answer": EVIL, "node_cost": {}},
        {"type": "NodeScored", "id": "n1", "score": 0.5, "per_step": [0.5]},
        {"type": "StepDone", "step": 1},
        {"type": "RunFinished", "answer": EVIL, "node_id": "n1", "score": 0.5,
         "candidates": [{"id": "n1", "answer": EVIL, "score": 0.5, "votes": 1}]}])
    store.finish_run(rid, "finished", answer=EVIL, correct=True, score=0.5)

    page = new_page(browser, url)
    # typed into Explore: refused with the engine's message, nothing executes
    page.fill("#explore-problem textarea, #explore-problem input", EVIL)
    page.click("#run-btn")
    toast = page.locator("[data-testid=toast-body]").first
    toast.wait_for(timeout=30_000)
    assert "Start with" in toast.inner_text()
    # opened in Runs: the markup shows as text in the status, the table and the candidates
    page.get_by_role("tab", name="Runs").click()
    page.locator("#runs-table").get_by_text(rid, exact=True).filter(visible=True).first.click()
    wait_status(page, "runs", rf"run {rid}")
    shown = page.locator("#runs-status [data-testid=problem-text]").inner_text()
    assert shown == EVIL
    # hover the finished node: plotly's hover label must show the markup as text
    node = page.locator("#runs-tree .scatterlayer path.point").nth(1)
    label = page.locator("#runs-tree .hoverlayer .hovertext").first
    for attempt in range(5):  # the page may still shift (toasts, the growing runs table): aim again
        node.scroll_into_view_if_needed()
        time.sleep(0.3)
        box = node.bounding_box()
        page.mouse.move(0, 0)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        try:
            label.wait_for(timeout=2_000)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError; the last attempt re-raises below
            if attempt == 4:
                raise
    assert "<script>" in label.text_content()
    page.screenshot(path=str(ARTIFACTS / "injection.png"), full_page=True)
    assert page.evaluate("window.__xss") is None
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert page.evaluate("[...document.scripts].some(s => s.textContent.includes('__xss'))") is False
    page.close()


def test_deepconf_shows_each_traces_confidence_and_the_threshold(served, browser):
    """DeepConf in Explore: the confidence view appears with one line per trace and the threshold line; a
    strategy that reports no confidences leaves it hidden."""
    url, store = served
    page = new_page(browser, url)
    pick(page, "explore-strategy", "DeepConf")
    pick(page, "explore-budget", "16")
    page.click("#run-btn")
    rid = run_id_of(wait_status(page, "explore", r"finished", timeout_s=120))
    assert store.get_run(rid)["strategy"] == "deepconf"
    page.wait_for_function("document.querySelectorAll('#explore-traces .scatterlayer .trace').length >= 16")
    assert "threshold" in page.locator("#explore-traces").inner_text()
    page.screenshot(path=str(ARTIFACTS / "explore-deepconf.png"), full_page=True)
    pick(page, "explore-strategy", "Best-of-N")
    page.click("#run-btn")
    wait_new_run_finished(page, "explore", [rid])
    page.wait_for_function("!document.querySelector('#explore-traces') || "
                           "document.querySelector('#explore-traces').offsetParent === null")
    page.close()


def test_budget_forcing_shows_each_samples_thought_with_its_marks(served, browser):
    """Budget forcing on tiny-think in Explore: the trace view grows one bar per sample and round, with a diamond
    where "Wait," replaced a stop, the budget line and each sample's answer with its verdict."""
    url, store = served
    page = new_page(browser, url)
    pick(page, "explore-model", "tiny-think")
    pick(page, "explore-strategy", "Budget forcing")
    pick(page, "explore-budget", "64")
    for name, value in (("n", "4"), ("min_thinking", "60"), ("max_waits", "2")):
        box = page.locator(f"#param-budget_forcing-{name} input")
        box.fill(value)
        box.press("Tab")
    # every size the trace view is drawn at, recorded in the page (polling from here can miss a frame)
    page.evaluate("""() => {
        window.__bars = [];
        new MutationObserver(() => {
            const n = document.querySelectorAll('#explore-traces .barlayer .point').length;
            const a = window.__bars;
            if (n && (!a.length || a[a.length - 1] !== n)) a.push(n);
        }).observe(document.body, {subtree: true, childList: true, attributes: true});
    }""")
    page.click("#run-btn")
    rid = run_id_of(wait_status(page, "explore", r"finished", timeout_s=120))
    run = store.get_run(rid)
    assert run["strategy"] == "budget_forcing" and run["model"] == "tiny-think"
    page.wait_for_function("document.querySelectorAll('#explore-traces .barlayer .point').length >= 8")
    view = page.locator("#explore-traces")
    assert "budget 64" in view.inner_text()
    assert len(re.findall(r"[✓✗?] ", view.inner_text())) == 4  # each sample's answer and verdict
    assert page.locator("#explore-traces .scatterlayer path.point").count() >= 4  # a Wait, or an end, per sample
    seen = page.evaluate("window.__bars")
    assert seen and seen[-1] >= 8, seen
    page.screenshot(path=str(ARTIFACTS / "explore-budget-forcing.png"), full_page=True)
    page.close()


def test_a_thinking_budget_sweep_from_the_scaling_page_draws_both_figures(served, browser):
    """Explore's budget dropdown offers token budgets for budget forcing; Scaling sweeps budget forcing on
    tiny-think over thinking budgets 8 and 32 with 1 and 4 samples, and draws accuracy against the thinking tokens
    per sample and the pair 4 x 8 against 1 x 32."""
    url, store = served
    page = new_page(browser, url)
    pick(page, "explore-strategy", "Budget forcing")
    page.locator("#explore-budget").get_by_text("Budget (thinking tokens)").wait_for()
    pick(page, "explore-budget", "4096")
    assert page.locator("#explore-budget input").input_value() == "4096"
    pick(page, "explore-strategy", "Best-of-N")  # back to a budget N: 4096 is over its cap, so it falls back
    page.locator("#explore-budget").get_by_text("Budget (N)").wait_for()
    assert page.locator("#explore-budget input").input_value() == "16"

    page.get_by_role("tab", name="Scaling").click()
    pick(page, "sweep-model", "tiny-think")
    page.locator("#sweep-problems input").fill("2")
    for name in ("Greedy", "Best-of-N", "Beam search"):
        page.locator("#sweep-strategies").get_by_label(name, exact=True).uncheck()
    page.locator("#sweep-strategies").get_by_label("Budget forcing", exact=True).check()
    for b in ("8", "32"):
        page.locator("#sweep-thinking-budgets").get_by_label(b, exact=True).check()
    for k in ("1", "4"):
        page.locator("#sweep-samples").get_by_label(k, exact=True).check()
    page.click("#sweep-run")
    page.locator("#sweep-progress").get_by_text("done").wait_for(timeout=180_000)
    sweep = store.list_sweeps()[0]
    assert sweep["config"]["thinking_budgets"] == [8, 32] and sweep["config"]["samples"] == [1, 4]
    assert {(c["budget"], c["samples"]) for c in sweep["result"]["results"]} == {(8, 1), (8, 4), (32, 1), (32, 4)}
    thinking = page.locator("#sweep-thinking")
    thinking.get_by_text("thinking tokens spent per sample").first.wait_for(timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#sweep-thinking .scatterlayer path.point').length >= 4")
    assert thinking.get_by_text("B=32").count() >= 2  # one point per sample count at that budget
    pairs = page.locator("#sweep-pairs")
    pairs.get_by_text("thinking tokens spent per problem").first.wait_for(timeout=30_000)
    assert pairs.get_by_text("4×8").count() == 1 and pairs.get_by_text("1×32").count() == 1
    assert pairs.get_by_text("equal thinking tokens", exact=False).count() >= 1  # the pair's legend entry
    page.screenshot(path=str(ARTIFACTS / "scaling-thinking.png"), full_page=True)
    page.close()


def test_best_of_n_with_the_critic_shows_each_candidates_critiques(served, browser):
    """Best-of-N scored by tiny-critic in Explore: the critique view lists every candidate with its critiques
    (step checks, the verdict) and their vote, the chosen one first; the same run opened in Runs shows them too;
    a PRM-scored run leaves the view hidden."""
    url, store = served
    page = new_page(browser, url)
    pick(page, "explore-strategy", "Best-of-N")
    pick(page, "explore-verifier", "tiny-critic")
    pick(page, "explore-budget", "4")
    page.click("#run-btn")
    rid = run_id_of(wait_status(page, "explore", r"finished", timeout_s=180))
    assert store.get_run(rid)["verifier"] == "tiny-critic"
    view = page.locator("#explore-critiques [data-testid=critiques]")
    expect(view).to_be_visible()
    cands = view.locator(".cand")
    expect(cands).to_have_count(4)
    head = cands.first.locator(".head").inner_text()
    assert head.startswith("★") and re.search(r"vote \d/4 say correct", head), head
    text = view.inner_text()
    assert "Verdict:" in text and re.search(r"1: .* (ok|wrong)", text)
    assert page.locator("#explore-critiques pre").count() == 16  # 4 critiques (the default k) of each
    page.screenshot(path=str(ARTIFACTS / "explore-critiques.png"), full_page=True)
    page.get_by_role("tab", name="Runs").click()
    page.locator("#runs-table").get_by_text(rid, exact=True).filter(visible=True).first.click()
    wait_status(page, "runs", rf"run {rid}.*finished")
    expect(page.locator("#runs-critiques .cand")).to_have_count(4)
    page.get_by_role("tab", name="Explore").click()
    pick(page, "explore-verifier", "tiny-prm")
    page.click("#run-btn")
    wait_new_run_finished(page, "explore", [rid])
    expect(page.locator("#explore-critiques")).to_be_hidden()
    page.close()


def test_two_sessions_at_once_each_see_only_their_run(served, browser):
    url, store = served
    ctx_a, ctx_b = browser.new_context(), browser.new_context()
    pages = []
    for ctx, strategy, budget in ((ctx_a, "Particle filtering", "64"), (ctx_b, "MCTS", "32")):
        page = ctx.new_page()
        page.set_default_timeout(ACTION_TIMEOUT_MS)
        page.goto(url)
        page.wait_for_selector("#run-btn", timeout=120_000)
        pick(page, "explore-strategy", strategy)
        pick(page, "explore-budget", budget)
        page.locator("#explore-difficulty").get_by_label("5").check()
        pages.append(page)
    # B's MCTS run takes seconds (many small sequential calls); A's particle run starts while it goes.
    # Clicked from script, back to back: Playwright's click waits for actionability on each page first.
    for page in reversed(pages):
        page.evaluate("document.querySelector('#run-btn').click()")
    texts = [wait_status(page, "explore", r"run r[0-9a-f]+ · finished", timeout_s=150) for page in pages]
    ids = [run_id_of(t) for t in texts]
    assert ids[0] != ids[1]
    assert store.get_run(ids[0])["strategy"] == "particle_filtering"
    assert store.get_run(ids[1])["strategy"] == "mcts"
    assert "particle_filtering" in texts[0] and ids[1] not in texts[0]
    assert "mcts" in texts[1] and ids[0] not in texts[1]
    # only the particle run shows the particle lanes
    assert pages[0].locator("#explore-particles .scatterlayer path.point").count() > 0
    assert not pages[1].locator("#explore-particles").is_visible()
    both_ran = [store.get_run(i) for i in ids]
    starts = sorted(r["created_at"] for r in both_ran)
    ends = sorted(r["finished_at"] for r in both_ran)
    assert starts[1] < ends[0], "the two runs did not overlap"
    pages[0].screenshot(path=str(ARTIFACTS / "session-a.png"), full_page=True)
    pages[1].screenshot(path=str(ARTIFACTS / "session-b.png"), full_page=True)
    ctx_a.close()
    ctx_b.close()


# ---- the image domain (needs only the committed digit models) ------------------------------------

IMAGE_MODELS = ("tiny-digits", "digit-classifier", "digit-judge")


@pytest.fixture(scope="module")
def served_images(tmp_path_factory):
    """The real app with its own database and images folder, served for the image tests. It needs only the
    embedded digit models, so it runs while the reasoning weights are missing (the page then offers the
    reasoning models as unavailable). Yields (url, store, images folder)."""
    from backends import catalog
    for mid in IMAGE_MODELS:
        ok, why = catalog.CATALOG[mid].availability()
        if not ok:
            pytest.skip(f"{mid} not available ({why}); python -m backends.embedded.digits.train writes it")
    from engine.limits import Limits
    from storage import RunStore
    from tests.conftest import free_port
    from ui.app import build_app, launch

    images = tmp_path_factory.mktemp("images")
    mp = pytest.MonkeyPatch()
    mp.setenv("TTS_IMAGES_DIR", str(images))
    store = RunStore(tmp_path_factory.mktemp("image-app") / "runs.db")
    app = build_app(store, Limits(max_budget=64), warm_up=False)
    port = free_port()
    launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", store, images
    app.close()
    store.close()
    mp.undo()


def gallery_captions(page, elem_id: str) -> list[str]:
    return [c.strip() for c in page.locator(f"#{elem_id} .caption-label").all_inner_texts()]


def strip_images(page, elem_id: str) -> int:
    """How many thumbnails (plotly layout images) the strips plot ``#elem_id`` draws right now."""
    return page.locator(f"#{elem_id} .layer-above image").count()


def choose_image_domain(page) -> None:
    pick(page, "explore-domain", "image")
    page.wait_for_function("document.querySelector('#explore-model input').value === 'tiny-digits'")
    page.locator("#explore-digit").wait_for(state="visible")
    assert not page.locator("#explore-difficulty").is_visible()


def test_domain_switch_to_t2i_shows_the_prompt_and_its_sampler(served_images, browser):
    """t2i: a bundled prompt in place of the digit, the sampler with the text-to-image schedulers (auto: the
    model's own) and no interpolant; back on image the digit, its scheduler and the interpolant return."""
    url, _, _ = served_images
    page = new_page(browser, url)
    pick(page, "explore-domain", "t2i")
    # expect() retries until the switch's outputs have rendered (immediate reads raced it under load)
    expect(page.locator("#explore-prompt-id")).to_be_visible()
    expect(page.locator("#explore-digit")).to_be_hidden()
    expect(page.locator("#explore-difficulty")).to_be_hidden()
    expect(page.locator("#explore-prompt-id input")).to_have_value(re.compile(r"^0\. "))
    page.get_by_text("Advanced").click()
    expect(page.locator("#explore-scheduler input")).to_have_value("auto")
    expect(page.locator("#explore-steps")).to_be_visible()
    expect(page.locator("#explore-interpolant")).to_be_hidden()
    expect(page.locator("#explore-verifier input")).to_have_value(re.compile(r"^clip-score"))
    choose_image_domain(page)
    expect(page.locator("#explore-scheduler input")).to_have_value("ddim")
    expect(page.locator("#explore-interpolant")).to_be_visible()
    expect(page.locator("#explore-prompt-id")).to_be_hidden()
    # rollover budget forcing needs a flow sampler: choosing it moves the DDIM default to flow_sde
    pick(page, "explore-strategy", "Rollover budget forcing")
    expect(page.locator("#explore-scheduler input")).to_have_value("flow_sde")
    page.close()


def test_image_search_fills_the_gallery_and_the_image_views(served_images, browser):
    url, store, images = served_images
    page = new_page(browser, url)
    choose_image_domain(page)
    assert page.locator("#explore-strategy input").input_value() == "Random search"
    pick(page, "explore-budget", "4")
    page.click("#run-btn")
    rid = run_id_of(wait_status(page, "explore", r"run r[0-9a-f]+ · finished", timeout_s=240))
    run = store.get_run(rid)
    assert run["domain"] == "image" and run["strategy"] == "random_search"
    # the gallery: 4 images, best verifier score first, each with its score and the judge's verdict
    page.wait_for_function("document.querySelectorAll('#explore-gallery img').length === 4", timeout=30_000)
    captions = gallery_captions(page, "explore-gallery")
    judged = {j["id"]: j for j in run["result"]["candidates_judged"]}
    assert len(captions) == 4 and captions[0].startswith("★")
    parsed = [re.fullmatch(r"★?\s*(n\d+) · ([0-9.]+) · judge (\d) ([✓✗])", c) for c in captions]
    assert all(parsed), captions
    shown = [float(m.group(2)) for m in parsed]
    assert shown == sorted(shown, reverse=True)
    for m in parsed:
        j = judged[m.group(1)]
        assert (int(m.group(3)), m.group(4)) == (j["judge_predicted"], "✓" if j["judge_correct"] else "✗")
    # every gallery image loads (waited for: under a full-suite load the last ones may still be in flight)
    page.wait_for_function("[...document.querySelectorAll('#explore-gallery img')].every(i => i.complete "
                           "&& i.naturalWidth > 0)", timeout=15_000)
    assert page.locator("#explore-nfe .scatterlayer path.point").count() > 0  # best score vs NFE
    assert not page.locator("#explore-candidates").is_visible()  # the text table is for reasoning runs
    assert not page.locator("#explore-strips").is_visible()  # random search's lineages are one image long

    # FK steering: particle lanes with ESS, x_t | x0-hat strips, served from the images folder only
    pick(page, "explore-strategy", "FK steering")
    page.click("#run-btn")
    wait_new_run_finished(page, "explore", [rid], timeout_s=240)
    page.wait_for_function("document.querySelectorAll('#explore-particles .scatterlayer path.point').length > 0")
    page.wait_for_function("document.querySelectorAll('#explore-strips .layer-above image').length > 8")
    page.wait_for_function("document.querySelectorAll('#explore-gallery img').length === 4")
    href = page.locator("#explore-strips .layer-above image").first.get_attribute("href")
    assert href.startswith("gradio_api/file=") and str(images) in href
    fetch = "p => fetch('gradio_api/file=' + p).then(r => r.status)"
    assert page.evaluate(f"() => fetch('{href}').then(r => r.status)") == 200
    assert page.evaluate(fetch, str(store.path)) == 403  # the database is never served
    assert page.evaluate(fetch, str(Path.cwd() / "README.md")) == 403  # nor the working directory
    page.screenshot(path=str(ARTIFACTS / "explore-image.png"), full_page=True)
    page.close()


def test_image_runs_replay_in_runs_and_compare(served_images, browser):
    url, store, images = served_images
    from engine.run import RunConfig, execute

    ids = []
    for strategy, params in (("fk_steering", {"every": 1, "adaptive": False}), ("random_search", {})):
        cfg = RunConfig(domain="image", model="tiny-digits", verifier="digit-classifier", strategy=strategy,
                        budget=4, problem_id="test:7", params=params, options={"steps": 10})
        ids.append([ev for ev in execute(cfg, store)][-1]["run_id"])
    page = new_page(browser, url)
    page.get_by_role("tab", name="Runs").click()
    page.locator("#runs-table").get_by_text(ids[0], exact=True).filter(visible=True).first.click()
    wait_status(page, "runs", rf"run {ids[0]}.*finished")
    page.wait_for_function("document.querySelectorAll('#runs-gallery img').length === 4")
    page.wait_for_function("document.querySelectorAll('#runs-strips .layer-above image').length > 8")
    full = strip_images(page, "runs-strips")
    assert page.locator("#runs-particles .scatterlayer path.point").count() > 0
    slider = page.locator("#runs-slider input[type=number]")
    slider.fill("3")
    slider.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('#runs-strips .layer-above image').length < {full}",
                           timeout=30_000)
    assert page.locator("#runs-gallery img").count() == 0  # nothing has finished at step 3
    page.screenshot(path=str(ARTIFACTS / "runs-image.png"), full_page=True)

    page.get_by_role("tab", name="Compare").click()
    for rid in ids:
        page.click("#compare-pick input")
        page.locator("[data-testid=dropdown-option]").filter(has_text=rid).first.click()
    page.keyboard.press("Escape")
    page.click("#compare-btn")
    page.wait_for_function("document.querySelectorAll('#compare-gallery-1 img').length === 4", timeout=30_000)
    assert page.locator("#compare-gallery-0 img").count() == 4
    page.locator("#compare-score .scatterlayer path.point").first.wait_for(timeout=30_000)
    assert "NFE" in page.locator("#compare-score .xtitle").text_content()
    assert page.locator("#compare-metrics").get_by_text("NFE", exact=True).count() > 0
    page.screenshot(path=str(ARTIFACTS / "compare-image.png"), full_page=True)
    page.close()


def test_refine_shows_the_chain_of_attempts_with_the_feedback_between_them(served, browser):
    """Refine on tiny-arith-s with the oracle's critique in Explore, on a hard problem: the refinement view draws
    each attempt, the critique it got and what came next; the Runs tab replays the same view."""
    url, store = served
    page = new_page(browser, url)
    pick(page, "explore-strategy", "Refine with feedback")
    pick(page, "explore-verifier", "oracle — ORACLE, a ceiling")
    pick(page, "explore-budget", "4")
    page.locator("#explore-difficulty").get_by_label("4").check()
    page.click("#run-btn")
    rid = run_id_of(wait_status(page, "explore", r"finished", timeout_s=120))
    run = store.get_run(rid)
    assert run["strategy"] == "refine" and run["verifier"] == "oracle"
    attempts = [e for e in store.events(rid) if e["type"] == "Attempt"]
    view = page.locator("#explore-traces")
    expect(view).to_contain_text("attempt 1")
    text = view.inner_text()
    assert text.count("attempt ") == len(attempts) >= 1
    assert text.count("critique") >= len(attempts) and "Verdict:" in text
    if len(attempts) > 1:
        assert "regenerate from step" in text and "kept" in text
    page.screenshot(path=str(ARTIFACTS / "explore-refine.png"), full_page=True)
    page.get_by_role("tab", name="Runs").click()
    page.locator("#runs-table").get_by_text(rid, exact=True).filter(visible=True).first.click()
    wait_status(page, "runs", rf"run {rid}.*finished")
    expect(page.locator("#runs-traces")).to_contain_text("attempt 1")
    assert page.locator("#runs-traces").inner_text().count("attempt ") == len(attempts)
    page.close()
