"""Learn: the survey's map of the field as the page's spine (what to scale, how, where, how well), with the guided
lessons first, one card per strategy under "How to scale" (idea, pseudocode, paper, when it wins, parameters),
every seed paper placed on the map, and the viewer beside the cards (it stays in view as the page scrolls) that
plays a card's stored example run or a lesson's run at once."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import gradio as gr

from ui import lessons
from ui.fold import step_count
from ui.common import AppContext, build_viewer, frame, load_values, parse_choice
from ui.learn_content import card_markdown
from ui.learn_map import BRANCHES, PLACES, SURVEY, Branch, Place

log = logging.getLogger(__name__)

DOMAIN_TITLES = {"reasoning": "Reasoning (a language model and a process reward model)",
                 "image": "Images (a diffusion model and an image verifier)",
                 "t2i": "text to image (t2i: a diffusers pipeline and a verifier that reads the prompt)"}

# Keeps the viewer beside whatever card or lesson is open (the cards column is far taller than the screen),
# and wraps wide pseudocode instead of cutting it off (a hidden scrollbar read as cut off on a projector). Gradio's container clips with
# overflow: hidden, which makes it a scroll container and stops position: sticky; clip looks the same and does not.
# A Gradio column wraps its children into a second column once it has a max-height: nowrap keeps them stacked
# and no-shrink keeps each at its height (the viewer scrolls inside itself on a short screen). A lesson's table scrolls sideways rather than breaking its
# headers letter by letter.
CSS = """
.gradio-container {overflow: clip !important}
#learn-viewer-col {position: sticky; top: 4px; align-self: flex-start; max-height: calc(100vh - 8px);
                   overflow-y: auto; flex-wrap: nowrap !important}
#learn-viewer-col > * {flex-shrink: 0}
#learn-cards table {display: block; overflow-x: auto; max-width: 100%; font-size: 0.85em}
#learn-cards th, #learn-cards td {white-space: nowrap; padding: 4px 6px !important}
#learn-cards td:first-child {white-space: normal; min-width: 9em}
#learn-cards pre, #learn-cards pre code {white-space: pre-wrap !important; overflow-wrap: anywhere}
"""

# A click on a link to a card (``#learn-card-<name>``) opens that card's accordion before the page jumps to it.
HEAD = """<script>
document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[href^="#learn-card-"]');
  if (!a) return;
  const card = document.getElementById(a.getAttribute('href').slice(1));
  if (!card) return;
  e.preventDefault();
  const label = card.querySelector('button.label-wrap');
  if (label && !label.classList.contains('open')) label.click();
  card.scrollIntoView({behavior: 'smooth', block: 'start'});
});
</script>"""


@dataclass(frozen=True)
class Section:
    """A heading of the cards column: the strategies that list ``domain`` first, and a line naming the other
    domains they also search (a domain no strategy lists first gets that line, never a heading of its own)."""

    domain: str
    strategies: list[str]
    also: str = ""

    @property
    def title(self) -> str:
        return DOMAIN_TITLES.get(self.domain, self.domain)


def sections() -> list[Section]:
    from strategies.registry import STRATEGIES

    groups: dict[str, list[str]] = {}
    for name, info in STRATEGIES.items():
        groups.setdefault(info.domains[0], []).append(name)
    out = []
    for domain, names in groups.items():
        lines = []
        for other in dict.fromkeys(d for n in names for d in STRATEGIES[n].domains[1:] if d not in groups):
            left = [STRATEGIES[n].title for n in names if other not in STRATEGIES[n].domains]
            who = f"All but {', '.join(left)}" if left else "All of them"
            lines.append(f"{who} also search {DOMAIN_TITLES.get(other, other)}.")
        out.append(Section(domain, names, " ".join(lines)))
    return out


def _short(place: Place) -> str:
    """A paper's short name on the map: its name before the colon when it has one, else its number."""
    head = place.title.split(":")[0]
    return f"[{place.number}] {head}" if ":" in place.title and len(head) <= 24 else f"[{place.number}]"


def branch_markdown(branch: Branch) -> str:
    """A branch of the map: its question, and under each leaf the papers placed on it."""
    lines = [f"### {branch.question}", "", branch.idea, ""]
    for leaf, line in branch.leaves:
        papers = [p for p in PLACES if leaf in getattr(p, branch.key)]
        lines.append(f"- **{leaf}**: {line}. " + ("Papers: " + ", ".join(_short(p) for p in papers) + "."
                                                   if papers else ""))
    return "\n".join(lines)


def place_markdown(place: Place) -> str:
    """One paper on the map in our words, with what runs it here: links to the cards of the strategies that
    are registered, else what running it would need."""
    from strategies.registry import STRATEGIES

    where = (f"what: {', '.join(place.what)} · how: {', '.join(place.how)} · where: {', '.join(place.where)} · "
             f"how well: {', '.join(place.how_well)}")
    lines = [f"**{place.number}. {place.title}**  ", f"_{where}_  ", place.text]
    runs = [n for n in place.runs if n in STRATEGIES]
    if runs:
        links = ", ".join(f"[{STRATEGIES[n].title}](#learn-card-{n})" for n in runs)
        lines.append(f"**Runs here:** {links} (each card plays its example run).")
    if place.feature:
        lines.append(f"**In the app:** {place.feature}.")
    if place.needs and (not runs or len(runs) < len(place.runs)):
        lines.append(f"**Not run here yet.** Running it would need {place.needs}")
    elif place.needs and runs:
        lines.append(f"**What the app leaves out:** {place.needs}")
    return "\n".join(lines)


def build(ctx: AppContext) -> None:
    from strategies.registry import STRATEGIES

    gr.Markdown("Each method on this page is a way to spend more compute at test time. The page follows the "
                f"survey *{SURVEY}* (seed paper 23): **what** to scale, **how**, **where**, and **how well**. "
                "Start with a guided lesson, or open a card and press its button to replay a stored run of it; "
                "the viewer on the right stays beside what you opened.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=340, elem_id="learn-cards"):
            gr.Markdown("## Guided lessons\nEach lesson reproduces a seed paper's claim on the embedded models. "
                        "Predict first, then see the stored result at once, or run it live here.")
            lesson_widgets = lessons.build(ctx)
            gr.Markdown("## A map of the field")
            buttons: dict[str, gr.Button] = {}
            for branch in BRANCHES:
                gr.Markdown(branch_markdown(branch), elem_id=f"learn-map-{branch.key}")
                if branch.key != "how":
                    continue
                gr.Markdown("The methods the app runs, one card each:")
                first = True
                for section in sections():
                    gr.Markdown(f"#### {section.title}")
                    if section.also:
                        gr.Markdown(f"_{section.also}_")
                    for name in section.strategies:
                        info = STRATEGIES[name]
                        with gr.Accordion(info.title, open=first, elem_id=f"learn-card-{name}"):
                            gr.Markdown(card_markdown(name))
                            has = name in ctx.examples
                            buttons[name] = gr.Button(f"▶ Play the example {info.title} run" if has else
                                                      "No example run shipped for this method yet", size="sm",
                                                      elem_id=f"learn-play-{name}", interactive=has)
                        first = False
            gr.Markdown("### The seed papers on the map\nEvery paper of the seed list, placed on the four "
                        "questions, with what the app runs of it or what running it would need.")
            gr.Markdown("\n\n".join(place_markdown(p) for p in PLACES), elem_id="learn-map-papers")
        with gr.Column(scale=3, min_width=420, elem_id="learn-viewer-col"):
            viewer = build_viewer("learn", idle="Press a card's <b>▶ Play</b> button, or a lesson's result "
                                                 "button, to replay a run here.",
                                  empty="Press a card's ▶ Play button or a lesson's result button: its run's tree "
                                        "is drawn here.")

    def make_play(strategy: str):
        def play():
            events = ctx.examples.get(parse_choice(strategy, "strategy", list(STRATEGIES)))
            if not events:
                raise gr.Error("No example run of this strategy is shipped (python -m ui.examples makes them).",
                               print_exception=False)
            n = step_count(events)
            # start at step 0 and let the viewer's timer play it forward
            return (*load_values(frame(events, 0), gr.update(minimum=0, maximum=max(n, 1), value=0), events),
                    gr.Timer(active=True), gr.update(value="❚❚ Pause"))
        return play

    for name, btn in buttons.items():
        btn.click(make_play(name), None, viewer.load_outputs + [viewer.timer, viewer.play], api_visibility="private",
                  concurrency_id="replay")
    lessons.wire(ctx, lesson_widgets, viewer)
