"""Runs: every stored run, newest first, filterable; open one to replay it; export it; delete it (confirmed)."""
from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from ui.figures.style import MARKS
from ui.figures.tables import error_html
from ui.common import AppContext, Viewer, build_viewer, check_run_id, show_run, stored_events

log = logging.getLogger(__name__)

ANY = "any"
LIST_LIMIT = 200
RUN_HEADERS = ["run", "created", "status", "strategy", "budget", "model", "verifier", "difficulty", "problem",
               "answer", "correct", "tokens"]
STATUSES = ["finished", "cancelled", "failed", "interrupted", "running"]


@dataclass
class RunsTab:
    table: gr.Dataframe
    run_id: gr.Dropdown
    refresh: Any  # the refresh function, for other tabs' .select
    refresh_outputs: list
    filters: list
    viewer: Viewer


def _tokens(totals: dict | None) -> int:
    t = totals or {}
    if t.get("tokens") is not None:
        return int(t["tokens"])
    return int(sum(float(t.get(k) or 0) for k in ("prompt_tokens", "generated_tokens", "verifier_tokens")))


def run_label(r: dict) -> str:
    """How a run reads in a dropdown: id · strategy N · status · time."""
    created = str(r.get("created_at") or "")[5:19].replace("T", " ")
    return f"{r['id']} · {r.get('strategy')} N={r.get('budget')} · {r.get('status')} · {created}"


def list_rows(store: Any, domain: str | None, model: str | None, strategy: str | None, status: str | None,
              limit: int = LIST_LIMIT) -> tuple[list[list[Any]], list[dict]]:
    runs = store.list_runs(domain=domain, model=model, strategy=strategy, status=status, limit=limit)
    rows = []
    for r in runs:
        correct = r.get("correct")
        text = str(r.get("problem_text") or "")
        rows.append([r["id"], str(r.get("created_at") or "")[:19].replace("T", " "), r.get("status"),
                     r.get("strategy"), r.get("budget"), r.get("model"), r.get("verifier") or "",
                     r.get("difficulty"), text[:80] + ("…" if len(text) > 80 else ""),
                     "" if r.get("answer") is None else str(r.get("answer")),
                     MARKS[None if correct is None else bool(correct)], _tokens(r.get("totals"))])
    return rows, runs


def _filter(value: Any, allowed: list[str]) -> str | None:
    if value in (None, "", ANY):
        return None
    if not isinstance(value, str) or value not in allowed:
        raise gr.Error("unknown filter value", print_exception=False)
    return value


def build(ctx: AppContext) -> RunsTab:
    from strategies.registry import STRATEGIES
    from ui.registry import domain_choices, model_choices

    models = [m for _, m in model_choices(None)]
    with gr.Row():
        f_domain = gr.Dropdown([ANY] + domain_choices(), value=ANY, label="Domain", scale=1)
        f_model = gr.Dropdown([ANY] + models, value=ANY, label="Model", allow_custom_value=True, scale=2)
        f_strategy = gr.Dropdown([ANY] + list(STRATEGIES), value=ANY, label="Strategy", scale=2)
        f_status = gr.Dropdown([ANY] + STATUSES, value=ANY, label="Status", scale=1)
        refresh_btn = gr.Button("↻ Refresh", scale=1, elem_id="runs-refresh")
    table = gr.Dataframe(value=[], headers=RUN_HEADERS, interactive=False, max_height=300, label="Stored runs "
                         "(newest first; click a row to open it)", elem_id="runs-table", wrap=False)
    with gr.Row():
        run_id = gr.Dropdown([], value=None, label="Run", allow_custom_value=True, elem_id="runs-pick", scale=4)
        export_btn = gr.Button("Export JSON", scale=1, elem_id="runs-export")
        delete_btn = gr.Button("Delete…", variant="stop", scale=1, elem_id="runs-delete")
    export_file = gr.File(label="Exported run", visible=False, elem_id="runs-export-file")
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.Markdown()
        confirm_btn = gr.Button("Yes, delete it", variant="stop", elem_id="runs-delete-confirm")
        cancel_btn = gr.Button("Keep it", elem_id="runs-delete-cancel")
    viewer = build_viewer("runs", idle="Open a run to replay it: pick it in the list or click its row.",
                          flops_per_byte=ctx.limits.flops_per_byte,
                          empty="Open a run (click its row above): its search tree is drawn here, and the "
                                "step slider replays it.")
    filters = [f_domain, f_model, f_strategy, f_status]

    def refresh(domain_v, model_v, strategy_v, status_v, current=None):
        rows, runs = list_rows(ctx.store, _filter(domain_v, domain_choices()),
                               None if model_v in (None, "", ANY) else str(model_v)[:300],
                               _filter(strategy_v, list(STRATEGIES)), _filter(status_v, STATUSES))
        choices = [(run_label(r), r["id"]) for r in runs]
        keep = current if current in {r["id"] for r in runs} else None
        return rows, gr.update(choices=choices, value=keep)

    refresh_outputs = [table, run_id]
    for f in filters:
        f.change(refresh, filters + [run_id], refresh_outputs, api_visibility="private", show_progress="hidden")
    refresh_btn.click(refresh, filters + [run_id], refresh_outputs, api_name="list_runs", show_progress="hidden")

    def pick_row(evt: gr.SelectData, rows):
        try:
            idx = evt.index[0] if isinstance(evt.index, (list, tuple)) else int(evt.index)
            return rows.iloc[idx, 0] if hasattr(rows, "iloc") else rows[idx][0]
        except Exception:  # noqa: BLE001 - a click outside the rows
            return gr.skip()

    table.select(pick_row, [table], [run_id], api_visibility="private", show_progress="hidden")

    def open_run(rid):
        """The run in the viewer; a refusal's reason in its status line (the toast repeats it)."""
        if rid in (None, ""):
            yield (gr.skip(),) * len(viewer.load_outputs)
            return
        try:
            rid = check_run_id(rid)
            if ctx.store.get_run(rid) is None:
                raise gr.Error(f"No run {rid} in the store (deleted?). Refresh the list.", print_exception=False)
        except gr.Error as exc:
            yield (error_html(exc.message), *(gr.skip(),) * (len(viewer.load_outputs) - 1))
            raise
        yield show_run(stored_events(ctx.store, rid), viewer.flops_per_byte)

    run_id.change(open_run, [run_id], viewer.load_outputs, api_name="open_run", concurrency_id="replay",
                  show_progress="minimal")

    def export(rid):
        rid = check_run_id(rid)
        if ctx.store.get_run(rid) is None:
            raise gr.Error(f"No run {rid} in the store.", print_exception=False)
        data = ctx.store.export_run(rid)
        # a fresh temp dir outside the working directory: gradio copies the file into its cache to serve it
        out = Path(tempfile.mkdtemp(prefix="tts-export-")) / f"run-{rid}.json"
        out.write_text(json.dumps(data, indent=1, default=str))
        return gr.update(value=str(out), visible=True)

    export_btn.click(export, [run_id], [export_file], api_name="export_run")

    def ask_delete(rid):
        rid = check_run_id(rid)
        run = ctx.store.get_run(rid)
        if run is None:
            raise gr.Error(f"No run {rid} in the store.", print_exception=False)
        return gr.update(visible=True), (f"Delete run `{rid}` ({run.get('strategy')}, {run.get('status')}) with "
                                         "all its events? This cannot be undone.")

    delete_btn.click(ask_delete, [run_id], [confirm_row, confirm_text], api_visibility="private")
    cancel_btn.click(lambda: gr.update(visible=False), None, [confirm_row], api_visibility="private",
                     queue=False)

    def do_delete(rid, *filter_values):
        rid = check_run_id(rid)
        if not ctx.allow_delete:
            raise gr.Error("Deleting runs is turned off on this server.", print_exception=False)
        if ctx.store.get_run(rid) and ctx.store.get_run(rid).get("status") == "running":
            raise gr.Error("This run is still going; stop it first.", print_exception=False)
        ok = ctx.store.delete_run(rid)
        if ok:
            gr.Info(f"Deleted run {rid}.")
        rows, choices = refresh(*filter_values)
        return (gr.update(visible=False), rows, choices, [], gr.update(value=None, visible=False))

    confirm_btn.click(do_delete, [run_id] + filters, [confirm_row, table, run_id, viewer.events, export_file],
                      api_name="delete_run")
    return RunsTab(table, run_id, refresh, refresh_outputs, filters, viewer)
