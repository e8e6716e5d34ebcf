"""Learn's guided lessons: a story, a question the student answers first, then the result, stored (plays at
once) or run live on the embedded models; the viewer beside the cards replays one of the lesson's runs.

The lessons themselves (story, arms, problems, claims) are in ``ui.lessons_content``; the numbers and the
verdicts come from ``engine.lessons``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Iterator

import gradio as gr

from engine.lessons import Row, check, run_lesson, summarize
from ui.common import AppContext, UserError, Viewer, frame, load_values, session_key, stored_events
from ui.fold import step_count
from ui.lessons_content import LESSONS, Lesson

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.5  # a live lesson's progress line is re-sent at most this often
DIFFICULTIES = (1, 2, 3, 4, 5)


@dataclass
class LessonWidgets:
    lesson: Lesson
    guess: gr.Radio
    play: gr.Button
    live: gr.Button
    result: gr.Markdown


def build(ctx: AppContext) -> list[LessonWidgets]:
    """Lay the lessons out (one accordion each) in the current Blocks context; :func:`wire` connects them to
    the viewer once it exists."""
    out = []
    for i, lesson in enumerate(LESSONS, 1):
        with gr.Accordion(f"Lesson {i}. {lesson.title}", open=i == 1, elem_id=f"lesson-{lesson.key}"):
            gr.Markdown(lesson.story)
            guess = gr.Radio(list(lesson.choices), value=None, label=f"Predict first: {lesson.question}",
                             elem_id=f"lesson-{lesson.key}-guess")
            with gr.Row():
                play = gr.Button("▶ Show the stored result", size="sm", interactive=False,
                                 elem_id=f"lesson-{lesson.key}-play")
                live = gr.Button(f"Run it live ({len(lesson.arms)} arms x {lesson.live_problems} problems)",
                                 size="sm", interactive=False, elem_id=f"lesson-{lesson.key}-live")
            result = gr.Markdown("_Answer the question first: the result shows once you have predicted._",
                                 elem_id=f"lesson-{lesson.key}-result")
        out.append(LessonWidgets(lesson, guess, play, live, result))
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def result_markdown(lesson: Lesson, rows: list[Row], guess: str, source: str) -> str:
    """The result as the student reads it: their prediction, a table per arm, and the claims checked."""
    summaries = summarize(lesson.arms, rows)
    n = len(next(iter(summaries.values())).rows) if summaries else 0
    if not n:
        return f"_No {source} runs of this lesson to show._"
    levels = [d for d in DIFFICULTIES if any(r.difficulty == d for s in summaries.values() for r in s.rows)]
    scored = any(s.score() is not None for s in summaries.values())
    tokens = any(s.mean_tokens() for s in summaries.values())  # image runs generate no tokens
    # the columns the stories read first come first: a narrow column scrolls the rest into view
    head = ["Arm", lesson.metric_name, *(["verifier score"] if scored else []), "FLOPs / run",
            *(["tokens / run"] if tokens else []),
            *(f"d{d}" for d in levels if len(levels) > 1)]
    lines = [f"You predicted: **{guess}**. The answer the paper gives: **{lesson.choices[lesson.expected]}**.", "",
             f"**{source.capitalize()} result**, {n} problems per arm:", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries.values():
        cells = [s.arm.label, _pct(s.accuracy()),
                 *([f"{s.score():.3f}" if s.score() is not None else "–"] if scored else []),
                 f"{s.mean_flops():.3g}", *([f"{s.mean_tokens():.0f}"] if tokens else []),
                 *(_pct(s.accuracy((d,))) for d in levels if len(levels) > 1)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for claim in lesson.claims:
        holds, sentence = check(claim, summaries)
        mark = {True: "✔", False: "✘", None: "·"}[holds]
        lines.append(f"- {mark} {sentence}")
    lines += ["", lesson.after]
    return "\n".join(lines)


def _shown_events(ctx: AppContext, lesson: Lesson, rows: list[Row], live: bool) -> list[dict]:
    ids = lesson.shown(rows)
    if not ids:
        return []
    if live:
        return stored_events(ctx.store, ids[0])
    return (ctx.shipped.events if ctx.shipped else {}).get(ids[0], [])


def _viewer_values(events: list[dict], viewer: Viewer) -> tuple:
    """The viewer's load outputs with the run at step 0 and its timer playing it forward (as Learn's Play)."""
    if not events:
        return (*(gr.skip(),) * len(viewer.load_outputs), gr.skip(), gr.skip())
    n = step_count(events)
    return (*load_values(frame(events, 0, flops_per_byte=viewer.flops_per_byte),
                         gr.update(minimum=0, maximum=max(n, 1), value=0), events),
            gr.Timer(active=True), gr.update(value="❚❚ Pause"))


def _check_guess(lesson: Lesson, guess: Any) -> str:
    if guess not in lesson.choices:
        raise gr.Error("Answer the question first: pick one of the choices, then see the result.",
                       print_exception=False)
    return guess


def wire(ctx: AppContext, lessons: list[LessonWidgets], viewer: Viewer) -> None:
    outputs = [viewer.timer, viewer.play]
    for w in lessons:
        lesson = w.lesson

        def on_guess(guess: Any):
            ready = guess is not None
            return gr.update(interactive=ready), gr.update(interactive=ready)

        def on_play(guess: Any, lesson: Lesson = lesson):
            guess = _check_guess(lesson, guess)
            rows = (ctx.shipped.lessons if ctx.shipped else {}).get(lesson.key, [])
            if not rows:
                raise gr.Error("No stored runs of this lesson are shipped (python -m ui.examples makes them); "
                               "run it live instead.", print_exception=False)
            return (result_markdown(lesson, rows, guess, "stored"),
                    *_viewer_values(_shown_events(ctx, lesson, rows, live=False), viewer))

        def on_live(guess: Any, request: gr.Request, lesson: Lesson = lesson) -> Iterator[tuple]:
            guess = _check_guess(lesson, guess)
            key = session_key(request, "lesson")
            token = ctx.claim(key, "A live lesson is already running in this page: wait for it to finish.")
            skip = (gr.skip(),) * (len(viewer.load_outputs) + len(outputs))
            rows: list[Row] = []
            total = len(lesson.arms) * lesson.live_problems
            log.info("live lesson %s: %d runs", lesson.key, total)
            try:
                sent = 0.0
                try:
                    for row in run_lesson(lesson.arms, list(lesson.problems[:lesson.live_problems]),
                                          ctx.store, token, ctx.limits):
                        rows.append(row)
                        if time.monotonic() - sent >= PROGRESS_EVERY_S:
                            sent = time.monotonic()
                            yield (f"_Running live: {len(rows)} of {total} runs done..._", *skip)
                except ValueError as exc:  # ConfigError: an arm over this server's caps
                    raise UserError(f"This lesson cannot run live here: {exc}") from None
            except UserError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
            finally:
                ctx.release_cancel(key, token)
            yield (result_markdown(lesson, rows, guess, "live"), *_viewer_values(
                _shown_events(ctx, lesson, rows, live=True), viewer))

        w.guess.change(on_guess, [w.guess], [w.play, w.live], api_visibility="private", show_progress="hidden")
        w.play.click(on_play, [w.guess], [w.result, *viewer.load_outputs, *outputs], api_visibility="private",
                     concurrency_id="replay")
        w.live.click(on_live, [w.guess], [w.result, *viewer.load_outputs, *outputs], api_visibility="private",
                     concurrency_limit=ctx.run_concurrency, concurrency_id="run")
