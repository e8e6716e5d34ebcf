"""Learn: one card per strategy (idea, pseudocode, paper, when it wins, parameters) and a button that plays
a stored example run at once in the viewer beside the cards."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import gradio as gr

from ui.fold import step_count
from ui.common import AppContext, build_viewer, frame, load_values, parse_choice
from ui.learn_content import card_markdown

log = logging.getLogger(__name__)

DOMAIN_TITLES = {"reasoning": "Reasoning (a language model and a process reward model)",
                 "image": "Images (a diffusion model and an image verifier)",
                 "t2i": "text to image (t2i: a diffusers pipeline and a verifier that reads the prompt)"}


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


def build(ctx: AppContext) -> None:
    from strategies.registry import STRATEGIES

    gr.Markdown("Each method below is a different way to spend more compute at test time. Press a card's "
                "button to replay a stored run of it on the same problem.")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=340):
            buttons: dict[str, gr.Button] = {}
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
        with gr.Column(scale=3, min_width=420):
            viewer = build_viewer("learn", idle="Press a card's <b>▶ Play</b> button to replay its example run.",
                                  empty="Press a card's ▶ Play button: its example run's tree is drawn here.")

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
