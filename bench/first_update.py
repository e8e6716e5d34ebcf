"""Time to the first visible update after pressing Run, against the fastest Gradio can show anything.

Two pages are served from this process with the same launch settings (``ui.app.launch``: queue,
concurrency limit, SSR off): (a) TTS Explorer on the embedded default, as a visitor finds it, and
(b) a minimal Blocks page whose button streams a growing plotly figure. Headless chromium (the browser
tests' setup) clicks each page's button; the page itself timestamps the click (a capturing listener)
and the first animation frame after the plot shows its first marker (a MutationObserver), so the figure
is the visitor's wait, transport and rendering included. The pages alternate so that both see the same
machine load; the first round warms caches up and is dropped. Also printed: when the app's status line
acknowledged the click, and how long the engine alone takes to emit its first node (no UI at all), the
floor the app cannot beat.

Usage: python bench/first_update.py [--reps 15] [--strategy beam_search] [--budget 16]
(strategy and budget default to what the page opens with).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.conftest import embedded_models_ready, free_port  # noqa: E402
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, pick  # noqa: E402

# Installed in the page before each click. window.__t holds browser timestamps (performance.now(), ms):
# click, ack (the status element changed) and shown (first frame after the plot has a marker).
PROBE_JS = """([button, plot, status]) => {
    const t = window.__t = {click: null, ack: null, shown: null};
    const target = document.querySelector(plot);
    const hasPoint = () => target.querySelectorAll('.scatterlayer path.point').length > 0;
    const obs = new MutationObserver(() => {
        if (t.click === null || t.shown !== null || !hasPoint()) return;
        obs.disconnect();
        requestAnimationFrame(() => { t.shown = performance.now(); });
    });
    obs.observe(target, {subtree: true, childList: true});
    if (status) {  // the handler's own status line, not gradio's progress overlay on the same element
        const st = document.querySelector(status);
        const ack = new MutationObserver(() => {
            const line = st.querySelector('[data-testid=run-status]');
            if (t.click !== null && t.ack === null && line && !line.innerText.startsWith('Ready')) {
                t.ack = performance.now(); ack.disconnect();
            }
        });
        ack.observe(st, {subtree: true, childList: true, characterData: true});
    }
    document.querySelector(button).addEventListener('click', () => { t.click = performance.now(); },
                                                    {capture: true, once: true});
}"""


def minimal_streaming_app():
    """The yardstick: a bare Blocks page whose button streams a growing plotly figure."""
    import gradio as gr
    import plotly.graph_objects as go

    def grow():
        xs: list[int] = []
        for i in range(12):
            xs.append(i)
            yield go.Figure(go.Scatter(x=xs, y=[x * x for x in xs], mode="markers"))
            time.sleep(0.1)

    with gr.Blocks() as demo:
        btn = gr.Button("Go", elem_id="go")
        plot = gr.Plot(elem_id="plot")
        btn.click(grow, None, plot)
    return demo


def measure(page, button: str, plot: str, status: str | None = None) -> dict[str, float | None]:
    """Seconds from the click to the acknowledgement (if ``status``) and to the first marker in ``plot``."""
    page.wait_for_selector(plot, state="attached")  # on a loaded machine the button can come first
    page.evaluate(PROBE_JS, [button, plot, status])
    page.click(button)
    page.wait_for_function("window.__t.shown !== null", timeout=120_000)
    t = page.evaluate("window.__t")
    return {"shown": (t["shown"] - t["click"]) / 1e3,
            "ack": None if t["ack"] is None else (t["ack"] - t["click"]) / 1e3}


def engine_first_node(strategy: str, budget: int, reps: int) -> list[float]:
    """Seconds from calling the engine to its first NodeAdded event, without any UI."""
    from engine.run import RunConfig, execute
    from storage import RunStore

    store = RunStore(Path(tempfile.mkdtemp()) / "engine.db")
    out = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        gen = execute(RunConfig(strategy=strategy, budget=budget, difficulty=3, seed=0), store)
        for ev in gen:
            if ev.get("type") == "NodeAdded":
                out.append(time.perf_counter() - t0)
                break
        gen.close()  # the rest of the search is not needed
    store.close()
    return out[1:]


def ms(xs: list[float]) -> str:
    return ", ".join(f"{1e3 * x:.0f}" for x in xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=15, help="measured rounds per page (one more warms up)")
    ap.add_argument("--strategy", default=None, help="pick this strategy first (default: the page's)")
    ap.add_argument("--budget", default=None, help="pick this budget first (default: the page's)")
    args = ap.parse_args()
    ok, why = embedded_models_ready()
    if not ok:
        sys.exit(f"embedded models not available ({why}); python -m backends.embedded.train writes them")
    if not CHROMIUM:
        sys.exit("chromium is missing (apt-get install chromium)")

    import torch
    from playwright.sync_api import sync_playwright

    from engine.limits import Limits
    from storage import RunStore
    from ui import live_run
    from ui.app import build_app, launch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    store = RunStore(Path(tempfile.mkdtemp()) / "runs.db")
    app = build_app(store, Limits(max_budget=64), warm_up=True)
    app_port, ref_port = free_port(), free_port()
    launch(app, "127.0.0.1", app_port, prevent_thread_lock=True, quiet=True)
    ref = minimal_streaming_app()
    launch(ref, "127.0.0.1", ref_port, prevent_thread_lock=True, quiet=True)

    base, ours, acks = [], [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            ref_page = browser.new_page(viewport={"width": 1200, "height": 800})
            app_page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for page in (ref_page, app_page):
                page.set_default_timeout(120_000)
            for i in range(args.reps + 1):
                ref_page.goto(f"http://127.0.0.1:{ref_port}/")
                ref_page.wait_for_selector("#go")
                r = measure(ref_page, "#go", "#plot")
                app_page.goto(f"http://127.0.0.1:{app_port}/")
                app_page.wait_for_selector("#run-btn")
                if args.strategy:
                    pick(app_page, "explore-strategy", args.strategy)
                if args.budget:
                    pick(app_page, "explore-budget", str(args.budget))
                a = measure(app_page, "#run-btn", "#explore-tree", "#explore-status")
                app_page.wait_for_function(  # let the run end: the next round starts from an idle server
                    "/finished|cancelled|failed/.test(document.querySelector('#explore-status').innerText)")
                print(f"round {i}{' (warm-up)' if not i else ''}: minimal page {1e3 * r['shown']:.0f} ms, "
                      f"app {1e3 * a['shown']:.0f} ms", flush=True)
                if i:
                    base.append(r["shown"])
                    ours.append(a["shown"])
                    acks.append(a["ack"] if a["ack"] is not None else float("nan"))
            browser.close()
    finally:
        app.close()
        ref.close()
    last = store.list_runs()[0]
    strategy, budget = last["strategy"], last["budget"]
    store.close()
    floor = engine_first_node(strategy, budget, args.reps)

    b, o = statistics.median(base), statistics.median(ours)
    print(f"strategy {strategy}, budget {budget}, {args.reps} rounds, throttle "
          f"{live_run.MAX_UPDATES_PER_S:g} updates/s, torch threads {torch.get_num_threads()}")
    print(f"minimal streaming page: first marker {1e3 * b:.0f} ms median, {1e3 * min(base):.0f} best ({ms(base)})")
    print(f"TTS Explorer Run:       first node   {1e3 * o:.0f} ms median, {1e3 * min(ours):.0f} best ({ms(ours)})")
    print(f"  status acknowledged                 {1e3 * statistics.median(acks):.0f} ms median ({ms(acks)})")
    print(f"  engine alone, first NodeAdded       {1e3 * statistics.median(floor):.0f} ms median ({ms(floor)})")
    print(f"ratio app / minimal page: {o / b:.2f} median, {min(ours) / min(base):.2f} best (target at most 1.2)")


if __name__ == "__main__":
    main()
