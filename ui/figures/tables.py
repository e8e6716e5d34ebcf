"""Tables and HTML of one or several runs: candidates, the compute meter, the status line, Compare's metrics."""
from __future__ import annotations

import re
from typing import Any

from strategies.core import H100_FLOPS_PER_BYTE, eflops_of
from ui.figures.style import MARKS, esc, fmt, human, human_bytes
from ui.fold import ViewState, is_correct, normalise_answer, num, run_verdict, tokens_of


# ---- tables and HTML ----------------------------------------------------------------------------

CANDIDATE_HEADERS = ["candidate", "answer", "score", "votes", "correct", "chosen"]


def candidates_rows(state: ViewState) -> list[list[Any]]:
    """Every finished candidate: answer, aggregated score, votes for its answer, correctness, chosen.

    Plain strings and numbers only (the table shows them as text)."""
    if state.candidates is not None:
        rows = [{"id": str(c.get("id")), "answer": c.get("answer"), "score": num(c.get("score")),
                 "votes": c.get("votes")} for c in state.candidates]
    else:  # live: what has finished so far
        finished = [n for n in state.nodes.values() if n.finished]
        votes: dict[Any, int] = {}
        for n in finished:
            votes[normalise_answer(n.answer)] = votes.get(normalise_answer(n.answer), 0) + 1
        rows = [{"id": n.id, "answer": n.answer, "score": n.score, "votes": votes[normalise_answer(n.answer)]}
                for n in finished]
        rows.sort(key=lambda r: -(r["score"] if r["score"] is not None else -1.0))
    out = []
    for r in rows:
        node = state.nodes.get(r["id"])
        correct = node.correct if node is not None and (node.correct is not None or state.is_image) \
            else is_correct(r["answer"], state.truth)
        out.append([r["id"], "" if r["answer"] is None else str(r["answer"]),
                    None if r["score"] is None else round(r["score"], 4), r["votes"],
                    MARKS[correct], "★" if r["id"] == state.selected else ""])
    return out


METER_CSS = """
<style>
.tts-meter{display:grid;grid-template-columns:repeat(auto-fit,minmax(118px,1fr));gap:6px;font-family:system-ui,sans-serif}
.tts-meter .cell{background:#f4f5f9;border-radius:8px;padding:6px 8px}
.tts-meter .k{font-size:11px;color:#666}.tts-meter .v{font-size:17px;font-weight:600;font-variant-numeric:tabular-nums}
.tts-status{font-family:system-ui,sans-serif;font-size:14px;line-height:1.5;padding:4px 2px}
.tts-status .prob{font-family:ui-monospace,monospace;background:#f4f5f9;border-radius:6px;padding:2px 6px;white-space:pre-wrap;word-break:break-word}
.tts-ok{color:#1a9e3f;font-weight:600}.tts-bad{color:#d62728;font-weight:600}
</style>"""


def eflops_text(totals: dict | None, flops_per_byte: float = H100_FLOPS_PER_BYTE) -> str:
    """A run's eFLOPs for display; "not counted" where its memory traffic was not (see ``eflops_of``)."""
    v = eflops_of(totals or {}, flops_per_byte)
    return "not counted" if v is None else human(v)


def compute_meter_html(totals: dict | None, flops_per_byte: float = H100_FLOPS_PER_BYTE) -> str:
    """Tokens, calls, FLOPs, memory traffic, eFLOPs (at ``flops_per_byte``), KV-cache peak and wall time as a row
    of tiles (all text escaped)."""
    t = totals or {}

    def total(k: str) -> float:
        return num(t.get(k)) or 0.0

    cells = [
        ("prompt tokens", human(total("prompt_tokens"))),
        ("generated tokens", human(total("generated_tokens"))),
        ("verifier tokens", human(total("verifier_tokens"))),
        ("model calls", human(total("model_calls"))),
        ("verifier calls", human(total("verifier_calls"))),
        ("FLOPs", human(total("flops"))),
        ("memory traffic", human_bytes(total("mem_bytes")) if "mem_bytes" in t else "not counted"),
        (f"eFLOPs ({flops_per_byte:.0f} FLOP/B)", eflops_text(t, flops_per_byte) if t else "0"),
        ("KV cache peak", human_bytes(total("kv_bytes_peak"))),
        ("wall time", f"{total('wall_s'):.2f} s"),
    ]
    if total("nfe"):
        cells.insert(5, ("NFE", human(total("nfe"))))
    if total("draft_tokens"):
        # drafting (backends.text.drafting): accepted share, and tokens per target pass per sample, the speedup
        # in forward passes (the wall-clock one depends on the hardware: bench/drafting.py)
        accepted, generated = total("draft_accepted"), total("generated_tokens")
        cells.insert(4, ("drafts accepted", f"{accepted / total('draft_tokens'):.0%} of {human(total('draft_tokens'))}"))
        cells.insert(5, ("tokens per pass", f"{generated / max(generated - accepted, 1.0):.2f}x"))
    body = "".join(f'<div class="cell"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div></div>'
                   for k, v in cells)
    return f'{METER_CSS}<div class="tts-meter" data-testid="compute-meter">{body}</div>'


def status_html(state: ViewState) -> str:
    """The problem (escaped), the truth, the run's status and its answer."""
    if state.status == "idle" and not state.run_id:
        return METER_CSS + '<div class="tts-status" data-testid="run-status">Ready: press <b>Run</b>.</div>'
    if state.status == "refused" and not state.run_id:
        return (METER_CSS + '<div class="tts-status" data-testid="run-status"><span class="tts-bad">refused: '
                f"{esc(state.error)}</span></div>")
    if state.status == "starting" and not state.run_id:
        return (METER_CSS + f'<div class="tts-status" data-testid="run-status"><b>{esc(state.strategy or "")}</b>'
                " · starting (loading the models the first time)…</div>")
    p = state.problem or {}
    parts = []
    if p.get("text"):
        parts.append(f'Problem: <span class="prob" data-testid="problem-text">{esc(p.get("text"))}</span>')
        extra = []
        if problem_id(state):  # what pins it: Explore's pinned id, the CLI's --problem-id
            extra.append(f'problem <code data-testid="problem-id">{esc(problem_id(state))}</code>')
        if p.get("difficulty") is not None:
            extra.append(f"difficulty {esc(p.get('difficulty'))}")
        if p.get("answer") is not None:
            extra.append(f"ground truth {esc(p.get('answer'))}")
        if extra:
            parts.append(" · ".join(extra))
    head = f"<b>{esc(state.strategy or '')}</b>" + (f" · run <code>{esc(state.run_id)}</code>" if state.run_id else "")
    status = esc(state.status)
    line = f"{head} · {status} · {state.steps_done} step{'s' if state.steps_done != 1 else ''} · {len(state.nodes)} nodes"
    if state.kv_kept:
        line += (f" · kept KV cache {state.kv_kept[-1][1]} tokens at step {state.kv_kept[-1][0]}"
                 f" (peak {max(t for _, t in state.kv_kept)})")
    if state.answer is not None or state.status != "running":
        verdict = {True: '<span class="tts-ok">✓ correct</span>', False: '<span class="tts-bad">✗ wrong</span>',
                   None: ""}[run_verdict(state)]
        line += f" · answer <b>{esc(state.answer)}</b> {verdict}" if state.answer is not None else " · no answer"
        if state.score is not None:
            line += f" (score {fmt(state.score)})"
    parts.append(line)
    if state.error:
        parts.append(f'<span class="tts-bad">error: {esc(state.error)}</span>')
    return METER_CSS + '<div class="tts-status" data-testid="run-status">' + "<br>".join(parts) + "</div>"



COMPARE_HEADERS = ["metric"]
PROBLEM_ID_RE = re.compile(r"^[A-Za-z0-9_]+:[0-9]+$")


def problem_id(state: ViewState) -> str | None:
    """The run's problem as an id a run can name again (``test:17``), or None (a random or a typed problem)."""
    uid = str((state.problem or {}).get("uid") or "")
    return uid if PROBLEM_ID_RE.match(uid) else None


def problem_name(state: ViewState) -> str:
    """The problem's id, else what kind of problem it was (plain text, not escaped)."""
    return problem_id(state) or "no id (random or typed)"


def problems_html(states: list[ViewState], labels: list[str]) -> str:
    """Whether the runs solved one problem (named once) or several (each run's, with a warning that their
    answers and compute do not compare); everything escaped."""
    def text(s: ViewState) -> str:
        return str((s.problem or {}).get("text") or "")

    if not states:
        return (METER_CSS + '<div class="tts-status" data-testid="compare-problems">Choose two to four runs above '
                "and press <b>Compare</b>; <b>Run on this problem with…</b> in Explore makes such a set.</div>")
    keys = {(s.domain, text(s)) for s in states}
    if len(keys) == 1:
        s = states[0]
        return (METER_CSS + f'<div class="tts-status" data-testid="compare-problems"><span class="tts-ok">Same '
                f"problem</span> for all {len(states)} runs: <code>{esc(problem_name(s))}</code> "
                f'<span class="prob">{esc(text(s))}</span></div>')
    rows = "".join(f"<li>{esc(label)}: <code>{esc(problem_name(s))}</code> <span class=\"prob\">{esc(text(s))}</span>"
                   "</li>" for s, label in zip(states, labels))
    return (METER_CSS + '<div class="tts-status" data-testid="compare-problems"><span class="tts-bad">⚠ Different '
            f"problems: these runs solved {len(keys)} different problems</span>, so their answers, scores and "
            f"compute do not compare. Pin one problem in Explore to compare strategies on it.<ul>{rows}</ul></div>")


def error_html(message: str, testid: str = "run-status") -> str:
    """A tab's status line showing an error (escaped)."""
    return (METER_CSS + f'<div class="tts-status" data-testid="{esc(testid)}"><span class="tts-bad">'
            f"{esc(message)}</span></div>")


def metrics_rows(states: list[ViewState], labels: list[str],
                 flops_per_byte: float = H100_FLOPS_PER_BYTE) -> tuple[list[str], list[list[Any]]]:
    """A metrics table, one column per run (eFLOPs at ``flops_per_byte``)."""
    headers = ["metric"] + [str(label) for label in labels]

    def row(name: str, fn) -> list[Any]:
        return [name] + [fn(s) for s in states]

    t = lambda s, k: num((s.totals or {}).get(k))  # noqa: E731
    rows = [
        row("strategy", lambda s: s.strategy or ""),
        row("problem", problem_name),
        row("problem text", lambda s: str((s.problem or {}).get("text") or "")[:120]),
        row("budget", lambda s: s.config.get("budget")),
        row("status", lambda s: s.status),
        row("answer", lambda s: "" if s.answer is None else str(s.answer)),
        row("correct", lambda s: MARKS[run_verdict(s)]),
        row("score", lambda s: None if s.score is None else round(s.score, 4)),
        row("steps", lambda s: s.steps_done),
        row("nodes", lambda s: len(s.nodes)),
        row("finished candidates", lambda s: sum(1 for n in s.nodes.values() if n.finished)),
        row("tokens", lambda s: int(tokens_of(s.totals or {}))),
        row("NFE", lambda s: int(t(s, "nfe") or 0)),
        row("generated tokens", lambda s: int(t(s, "generated_tokens") or 0)),
        row("model calls", lambda s: int(t(s, "model_calls") or 0)),
        row("verifier calls", lambda s: int(t(s, "verifier_calls") or 0)),
        row("FLOPs", lambda s: human(t(s, "flops") or 0)),
        row("memory traffic", lambda s: human_bytes(t(s, "mem_bytes") or 0)
            if "mem_bytes" in (s.totals or {}) else "not counted"),
        row(f"eFLOPs ({flops_per_byte:.0f} FLOP/B)", lambda s: eflops_text(s.totals, flops_per_byte)),
        row("KV cache peak", lambda s: human_bytes(t(s, "kv_bytes_peak") or 0)),
        row("kept KV tokens, mean / peak", _kept_kv),
        row("wall time (s)", lambda s: round(t(s, "wall_s") or 0.0, 2)),
    ]
    return headers, rows


def _kept_kv(state: ViewState) -> str:
    """The kept tree's KV cache over the steps folded so far (REBASE, ETS), blank for strategies that keep no count."""
    kv = [t for _, t in state.kv_kept]
    return f"{sum(kv) / len(kv):.0f} / {max(kv)}" if kv else ""
