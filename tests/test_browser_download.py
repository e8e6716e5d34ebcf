"""Explore's download offer in a real browser: a catalog entry that is not cached is labelled so, the offer shows
its size and the free disk, Download fetches it from a hub on 127.0.0.1 (``tests/fake_hub.py``, the real
``huggingface_hub`` client), and the entry's label turns available without restarting the app."""
from __future__ import annotations

import re

import pytest

from backends import catalog
from tests.conftest import free_port
from tests.fake_hub import FakeHub, Repo
from tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, new_page

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is missing (apt-get install chromium); "
                                "browser tests need a real browser")
REPO = "tts-test/browser-arith"


@pytest.fixture()
def app_with_hub(tmp_path):
    from huggingface_hub import constants
    from engine.limits import Limits
    from storage import RunStore
    from ui.app import build_app, launch

    hub = FakeHub({REPO: Repo.from_folder(catalog.EMBEDDED_DIR / "tiny-arith-s")}).start()
    mp = pytest.MonkeyPatch()
    mp.setattr(constants, "HF_HUB_OFFLINE", False)
    mp.setattr(constants, "ENDPOINT", hub.url)
    mp.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    mp.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    mp.delenv("HF_TOKEN", raising=False)
    mp.setenv("HF_HOME", str(tmp_path / "home"))
    mp.setitem(catalog.CATALOG, REPO, catalog.ModelEntry(REPO, "policy", "reasoning", REPO, "Test hub policy."))
    store = RunStore(tmp_path / "runs.db")
    app = build_app(store, Limits(max_budget=16))
    port = free_port()
    launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", hub
    app.close()
    store.close()
    mp.undo()
    hub.stop()


def test_download_from_explore_makes_the_entry_available_without_a_restart(app_with_hub, tmp_path):
    from playwright.sync_api import sync_playwright

    url, hub = app_with_hub
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = new_page(browser, url)
        page.click("#explore-model input")
        options = page.locator("[data-testid=dropdown-option]")
        options.filter(has_text=f"{REPO} (not available here)").first.click()
        page.keyboard.press("Escape")
        info = page.locator("#explore-download-info")
        info.get_by_text(re.compile(r"1\.8 MB in 5 files; .* free in")).wait_for(timeout=60_000)
        assert not [r for r in hub.log if "/resolve/" in r[1]]  # the offer fetched nothing
        page.click("#download-btn")
        info.get_by_text("is downloaded and available now").wait_for(timeout=120_000)
        assert catalog.hub_availability(REPO)[0]
        assert hub.gets("model.safetensors") == [None]
        page.screenshot(path=str(ARTIFACTS / "explore-downloaded.png"), full_page=True)
        page.click("#explore-model input")
        labels = [t.replace("✓", "").strip() for t in options.all_inner_texts()]  # the chosen one is ticked
        assert REPO in labels and f"{REPO} (not available here)" not in labels
        page.keyboard.press("Escape")
        browser.close()
