"""Screenshots of every tab, for looking at the app as a class would: at 1400x1000 (a laptop) and at 1024x768
(a projector).

Serves the app on a free local port over a temporary run store (and images folder), drives Debian's chromium
headless through Playwright, and writes ``<tab>-<width>x<height>.png`` into ``--out``: Explore after a short
reasoning run (beam search, budget 8), Compare with beam search and particle filtering on that run's problem
(pinned, then "Run on this problem with…"), Explore in the image domain after a random search (budget 4), Runs
with the first run opened, Compare empty and with a reasoning and an image run (different problems), Scaling and
Learn as they open, and Explore again in presentation mode.

    python scripts/screenshots.py --out test-artifacts/screens/after
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.conftest import embedded_models_ready, free_port  # noqa: E402
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, pick, wait_new_run_finished  # noqa: E402

SIZES = ((1400, 1000), (1024, 768))
TIMEOUT_MS = 180_000




def shoot(page, out: Path, name: str, size: tuple[int, int]) -> None:
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.wait_for_timeout(600)  # plotly relayouts on resize
    page.screenshot(path=str(out / f"{name}-{size[0]}x{size[1]}.png"), full_page=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="folder for the PNG files")
    args = ap.parse_args()
    ok, why = embedded_models_ready()
    if not ok:
        print(f"embedded models not available ({why}); python -m backends.embedded.train writes them",
              file=sys.stderr)
        return 2
    if not CHROMIUM:
        print("chromium is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from engine.limits import Limits
    from storage import RunStore
    from ui.app import build_app, launch

    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="tts-screens-"))
    os.environ["TTS_IMAGES_DIR"] = str(tmp / "images")
    store = RunStore(tmp / "runs.db")
    app = build_app(store, Limits(max_budget=64), warm_up=True)
    port = free_port()
    launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": SIZES[0][0], "height": SIZES[0][1]})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#run-btn")
            for size in SIZES:
                shoot(page, args.out, "explore-ready", size)
            pick(page, "explore-strategy", "Beam search")
            pick(page, "explore-budget", "8")
            page.click("#run-btn")
            ids = [wait_new_run_finished(page, "explore", [], timeout_s=180)]
            page.wait_for_function("document.querySelectorAll('#explore-tree .scatterlayer path.point').length > 1")
            for size in SIZES:
                shoot(page, args.out, "explore-reasoning", size)
            if page.locator("#explore-pin-btn").count():  # the same-problem comparison (absent before issue 18)
                page.click("#explore-pin-btn")
                page.wait_for_function("document.querySelector('#explore-pin input').value"
                                       " || document.querySelector('#explore-problem textarea').value")
                page.click("#explore-same-run")
                page.locator("#compare-problems").get_by_text("Same problem").wait_for()
                for size in SIZES:
                    shoot(page, args.out, "compare-same-problem", size)
                page.get_by_role("tab", name="Explore").click()
                page.locator("#explore-pin input").fill("")  # pinning typed the random problem's text in
                page.locator("#explore-problem textarea").fill("")

            pick(page, "explore-domain", "image")
            page.wait_for_function("document.querySelector('#explore-model input').value === 'tiny-digits'")
            pick(page, "explore-budget", "4")
            known = [r["id"] for r in store.list_runs()]
            page.click("#run-btn")
            # the status line may still show the same-problem set's last run: wait for a run none of these is
            ids.append(wait_new_run_finished(page, "explore", known, timeout_s=240))
            page.wait_for_function("document.querySelectorAll('#explore-gallery img').length > 0")
            for size in SIZES:
                shoot(page, args.out, "explore-image", size)

            page.get_by_role("tab", name="Runs").click()
            page.locator("#runs-table").get_by_text(ids[0], exact=True).filter(visible=True).first.click()
            page.wait_for_function("document.querySelectorAll('#runs-tree .scatterlayer path.point').length > 1")
            for size in SIZES:
                shoot(page, args.out, "runs", size)

            page.reload()  # a fresh session: Compare's picker empty (the same-problem set filled it)
            page.wait_for_selector("#run-btn")
            page.get_by_role("tab", name="Compare").click()
            for size in SIZES:
                shoot(page, args.out, "compare-empty", size)
            for rid in ids:
                page.click("#compare-pick input")
                page.locator("[data-testid=dropdown-option]").filter(has_text=rid).first.click()
            page.keyboard.press("Escape")
            page.click("#compare-btn")
            page.locator("#compare-metrics").get_by_text(ids[-1], exact=False).first.wait_for()
            for size in SIZES:
                shoot(page, args.out, "compare", size)

            for tab in ("Scaling", "Learn"):
                page.get_by_role("tab", name=tab).click()
                page.wait_for_timeout(800)
                for size in SIZES:
                    shoot(page, args.out, tab.lower(), size)
            if page.locator("#present-toggle").count():
                page.get_by_role("tab", name="Runs").click()
                page.locator("#present-toggle input").check()
                for size in SIZES:
                    shoot(page, args.out, "runs-present", size)
            browser.close()
    finally:
        app.close()
        store.close()
    print(f"wrote {len(list(args.out.glob('*.png')))} screenshots to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
