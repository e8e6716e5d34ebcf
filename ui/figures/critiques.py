"""The critique view: beside each candidate a generative critic scored, its critiques (every step check, the
verdict) and their vote, from the run's Critiqued events. Every string is escaped: critiques are model output."""
from __future__ import annotations

from ui.figures.style import CORRECT, UNKNOWN, WRONG, esc, fmt
from ui.fold import ViewState, is_correct

CRITIQUE_CSS = """
<style>
.tts-crit{font-family:system-ui,sans-serif;font-size:12px;display:grid;gap:8px;max-height:460px;overflow:auto}
.tts-crit .cand{border:1px solid #e3e4ea;border-radius:8px;padding:6px 8px}
.tts-crit .cand.chosen{border-color:#f5a400;border-width:2px}
.tts-crit .head{font-weight:600;margin-bottom:4px}
.tts-crit .row{display:flex;gap:6px;flex-wrap:wrap}
.tts-crit pre{margin:0;padding:4px 6px;background:#f7f7fa;border-radius:6px;font-size:11px;line-height:1.35;
white-space:pre-wrap;flex:1 1 200px}
.tts-crit .ok{color:#1a9e3f}.tts-crit .bad{color:#d62728;font-weight:600}
</style>
"""


def _critique_block(text: str, verdict) -> str:
    """One critique: its lines, the checks that pass green, the one that fails and the verdict red."""
    lines = []
    for line in text.splitlines() or [""]:
        cls = "bad" if " wrong" in line else ("ok" if line.rstrip().endswith(" ok") or "correct" in line else "")
        lines.append(f'<span class="{cls}">{esc(line)}</span>' if cls else esc(line))
    title = "says correct" if verdict is None else f"flags step {esc(verdict)}"
    return f'<pre title="{title}">' + "\n".join(lines) + "</pre>"


def critiques_html(state: ViewState) -> str:
    """Each critiqued candidate, finished ones first and the chosen one on top: its answer and correctness, the
    vote (how many critiques say correct, and the score the run used) and each critique."""
    if not state.critiques:
        return ""
    order = sorted(state.critiques, key=lambda i: (i != state.selected,
                                                   not (state.nodes.get(i) and state.nodes[i].finished),
                                                   state.nodes[i].order if i in state.nodes else 0))
    parts = [CRITIQUE_CSS, '<div class="tts-crit" data-testid="critiques">']
    for nid in order:
        c = state.critiques[nid]
        node = state.nodes.get(nid)
        answer = node.answer if node is not None else None
        correct = node.correct if node is not None and node.correct is not None else is_correct(answer, state.truth)
        mark = {True: ("✓", CORRECT), False: ("✗", WRONG), None: ("", UNKNOWN)}[correct]
        says = sum(v is None for v in c["verdicts"])
        steps = ", ".join(f"step {v}" for v in sorted({v for v in c["verdicts"] if v is not None}))
        head = (f'{"★ " if nid == state.selected else ""}{esc(nid)} · answer {esc(answer if answer is not None else "-")}'
                f' <span style="color:{mark[1]}">{mark[0]}</span> · vote {says}/{len(c["verdicts"])} say correct'
                f'{" (flagged: " + esc(steps) + ")" if steps else ""} · score {esc(fmt(c["score"]))}')
        blocks = "".join(_critique_block(t, v) for t, v in zip(c["texts"], c["verdicts"]))
        parts.append(f'<div class="cand{" chosen" if nid == state.selected else ""}" data-node="{esc(nid)}">'
                     f'<div class="head">{head}</div><div class="row">{blocks}</div></div>')
    parts.append("</div>")
    return "".join(parts)
