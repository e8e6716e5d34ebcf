"""Explore's download offer: a chosen policy or verifier that is a hub model not in the local cache shows its size
and the free disk, and a Download button (``gr.Progress`` bytes, a Stop button); when it finishes the model and
verifier lists are rebuilt, so the entry reads as available without a restart. The work is
``backends.download``'s; on a public Space the offer says downloads are off unless the owner turned them on
(``Limits.allow_downloads``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import gradio as gr

from backends.download import first_missing
from ui.common import AppContext, session_key, start_worker
from ui.figures.style import esc
from ui.registry import model_choices, verifier_choices

log = logging.getLogger(__name__)

POLL_S = 0.25  # how often the handler passes the byte count to gr.Progress


@dataclass
class DownloadOffer:
    row: gr.Row
    info: gr.Markdown
    button: gr.Button
    stop: gr.Button


def offer_text(ctx: AppContext, model_id: str) -> tuple[str, bool]:
    """The offer's Markdown (escaped) and whether the Download button is shown."""
    from backends.download import DownloadError, plan

    if not ctx.limits.allow_downloads:
        return (f"**{esc(model_id)}** is not in the local Hugging Face cache. Downloads are off on this app "
                "(on a public Space the owner turns them on with TTS_ALLOW_DOWNLOADS=1, or bakes models in with "
                "preload_from_hub)."), False
    try:
        p = plan(model_id)
    except DownloadError as exc:
        return f"**{esc(model_id)}** is not in the local Hugging Face cache and cannot be downloaded: {esc(str(exc))}", False
    verdict = "" if p.fits() else " **It does not fit on this disk.**"
    return f"**Download {esc(model_id)}?** {esc(p.describe())}.{verdict}", p.fits()


def build(ctx: AppContext, domain: gr.Dropdown, model: gr.Dropdown, verifier: gr.Dropdown) -> DownloadOffer:
    with gr.Row(visible=False, elem_id="explore-download") as row:
        info = gr.Markdown(elem_id="explore-download-info")
        button = gr.Button("Download", variant="secondary", elem_id="download-btn", scale=0, min_width=120)
        stop = gr.Button("Stop download", variant="stop", elem_id="download-stop-btn", scale=0, min_width=120)

    def on_choice(model_v, verifier_v):
        target = first_missing(model_v, verifier_v)
        if target is None:
            return gr.update(visible=False), gr.update(value=""), gr.update(visible=False), gr.update(visible=False)
        text, can = offer_text(ctx, target)
        return gr.update(visible=True), gr.update(value=text), gr.update(visible=can), gr.update(visible=can)

    for widget in (model, verifier):
        widget.change(on_choice, [model, verifier], [row, info, button, stop], api_visibility="private",
                      show_progress="hidden")

    def fetch(request: gr.Request, domain_v, model_v, verifier_v, progress=gr.Progress()):
        from backends.download import DownloadError, download, plan

        if not ctx.limits.allow_downloads:
            raise gr.Error("Downloads are off on this app.", print_exception=False)
        target = first_missing(model_v, verifier_v)
        if target is None:
            raise gr.Error("The chosen models are already here: nothing to download.", print_exception=False)
        key = session_key(request, "download")
        token = ctx.claim(key, "A download is already going in this session.")
        try:
            try:
                checked = plan(target)
            except DownloadError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
            progress(0, desc=checked.describe())
            seen = {"done": 0, "path": None, "error": None}

            def report(done: int, total: int | None) -> None:
                seen["done"] = done

            def work() -> None:
                try:
                    seen["path"] = download(target, report, token, checked=checked)
                except DownloadError as exc:  # DownloadCancelled included: its message says what is kept
                    seen["error"] = str(exc)

            # the client reports from its own worker threads, where gr.Progress has no event to update: this
            # handler's thread passes the count on
            worker = start_worker(work, "download")
            while worker.is_alive():
                if checked.size_bytes:
                    progress((seen["done"], checked.size_bytes), desc=f"Downloading {target}", unit="bytes")
                worker.join(POLL_S)
        finally:
            ctx.release_cancel(key, token)
        if seen["error"]:
            raise gr.Error(seen["error"], print_exception=False)
        log.info("downloaded %s to %s", target, seen["path"])
        d = domain_v if isinstance(domain_v, str) else None
        gr.Info(f"{target} is downloaded and available now.")
        return (gr.update(value=f"**{esc(target)}** is downloaded and available now."), gr.update(visible=False),
                gr.update(visible=False), gr.update(choices=model_choices(d)), gr.update(choices=verifier_choices(d)))

    button.click(fetch, [domain, model, verifier], [info, button, stop, model, verifier], api_name="download",
                 concurrency_limit=1, concurrency_id="download", show_progress="full", show_progress_on=[info])

    def halt(request: gr.Request) -> None:
        if not ctx.cancel(session_key(request, "download")):
            gr.Info("No download is going in this session.")

    stop.click(halt, None, None, api_name="stop_download", concurrency_limit=None, concurrency_id="stop",
               show_progress="hidden")
    return DownloadOffer(row, info, button, stop)
