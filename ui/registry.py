"""What the widgets offer, read from the strategy registry and the model catalog (never hard-coded twice)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ui.figures.style import esc

log = logging.getLogger(__name__)

PROBLEM_TEXT_MAX = 2000
BUDGETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
PROMPT_LABEL_MAX = 90  # a bundled text-to-image prompt in the dropdown, cut to this many characters


@dataclass(frozen=True)
class ParamField:
    """One strategy parameter shown as a widget (the budget parameter is set by the budget control)."""

    strategy: str
    spec: Any  # strategies.params.ParamSpec

    def component(self, elem_id: str) -> gr.Component:
        s = self.spec
        label = s.title
        if s.choices:
            return gr.Dropdown(list(s.choices), value=s.default, label=label, info=s.help, elem_id=elem_id)
        if s.type is bool:  # its label sits beside the box: the app's CSS gives it the width a form's row does not
            return gr.Checkbox(value=bool(s.default), label=label, info=s.help, elem_id=elem_id,
                               elem_classes=["tts-check"])
        if s.type is int:
            # no minimum/maximum on the widget: bounds are checked by the strategy's own validation so
            # the message names the parameter and its range
            return gr.Number(value=s.default, precision=0, label=label, info=_bounds(s) + s.help, elem_id=elem_id)
        if s.type is float:
            return gr.Number(value=s.default, label=label, info=_bounds(s) + s.help, elem_id=elem_id)
        return gr.Textbox(value=str(s.default), label=label, info=s.help, elem_id=elem_id, max_length=200)

    def coerce(self, value: Any) -> Any:
        """Pass raw values on; the strategy's parameter builder validates and names the problem."""
        if isinstance(value, str):
            return value[:200]
        return value


def _bounds(s: Any) -> str:
    if s.lo is not None and s.hi is not None:
        return f"[{s.lo:g}–{s.hi:g}] "
    return ""


def param_fields() -> list[ParamField]:
    from strategies.params import specs
    from strategies.registry import STRATEGIES

    out = []
    for name, info in STRATEGIES.items():
        for s in specs(info.params_cls):
            if s.name != info.budget_param:
                out.append(ParamField(name, s))
    return out


def budget_choices(max_budget: int) -> list[int]:
    out = [b for b in BUDGETS if b <= max_budget]
    if max_budget not in out:
        out.append(max_budget)
    return out


@dataclass(frozen=True)
class BudgetWidget:
    """What a budget dropdown offers for one strategy (typed values stay allowed; the handler checks them)."""

    choices: list[int]
    cap: int
    label: str
    info: str


def budget_widget(strategy: str, max_budget: int) -> BudgetWidget:
    """Budgets N up to the app's cap; for a strategy whose budget counts tokens (budget forcing: thinking tokens per
    sample), token budgets up to its own cap, ``budget_scale`` x the app's (``engine.limits``)."""
    from strategies.registry import STRATEGIES

    info = STRATEGIES.get(strategy)
    scale = info.budget_scale if info is not None else 1
    cap = max_budget * scale
    if scale > 1:
        return BudgetWidget(budget_choices(cap), cap, "Budget (thinking tokens)",
                            f"tokens per sample, at most {cap} here")
    return BudgetWidget(budget_choices(cap), cap, "Budget (N)", f"at most {cap} here")


def domain_choices() -> list[str]:
    try:
        from backends.domains import DOMAINS
        return list(DOMAINS)
    except ImportError:  # an older engine layout
        return ["reasoning"]


def _entries(domain: str | None) -> list[Any]:
    try:
        from backends import catalog
        return list(catalog.models(domain))
    except Exception:  # noqa: BLE001 - the page still opens; the run reports the real problem
        log.exception("model catalog unavailable")
        return []


def _available(e: Any) -> bool:
    try:
        return e.availability()[0]
    except Exception:  # noqa: BLE001 - an entry whose check fails is shown as unavailable
        return False


def _label(e: Any) -> str:
    tag = "" if _available(e) else " (not available here)"
    if e.kind == "oracle":
        tag += " — ORACLE, a ceiling"
    return f"{e.id}{tag}"


FALLBACK_MODEL, FALLBACK_VERIFIER = "tiny-arith-s", "tiny-prm"  # when the catalog lists nothing for a domain


def model_choices(domain: str | None) -> list[tuple[str, str]]:
    return [(_label(e), e.id) for e in _entries(domain) if e.kind == "policy"] or [(FALLBACK_MODEL, FALLBACK_MODEL)]


def _first_available(entries: list[Any], fallback: str) -> str:
    """The first entry that is available here (a hub model that is not cached would fail the first run), else the
    first one, whose label says it is not."""
    ready = next((e for e in entries if _available(e)), None)
    return (ready or entries[0]).id if entries else fallback


def default_model(domain: str | None) -> str:
    """The policy a domain starts with."""
    return _first_available([e for e in _entries(domain) if e.kind == "policy"], FALLBACK_MODEL)


def verifier_choices(domain: str | None) -> list[tuple[str, str]]:
    """Every entry of the domain that is not a policy: PRMs, ORMs, judges, classifiers, rewards, the oracle."""
    return [(_label(e), e.id) for e in _entries(domain) if e.kind != "policy"] or [(FALLBACK_VERIFIER, FALLBACK_VERIFIER)]


def default_verifier(domain: str | None) -> str:
    """The verifier a domain starts with."""
    return _first_available([e for e in _entries(domain) if e.kind != "policy"], FALLBACK_VERIFIER)


def no_policy_here(domain: str | None) -> bool:
    """Whether the catalog lists policies for ``domain`` and none of them is available here."""
    policies = [e for e in _entries(domain) if e.kind == "policy"]
    return bool(policies) and not any(_available(e) for e in policies)


def missing_note(domain: str | None) -> str | None:
    """What a domain lacks to run here (no policy, or no verifier, is available) and how to get it, as Markdown;
    None when it has both."""
    entries = _entries(domain)
    lacking = [(what, group) for what, group in (("policy", [e for e in entries if e.kind == "policy"]),
                                                 ("verifier", [e for e in entries if e.kind != "policy"]))
               if group and not any(_available(e) for e in group)]
    if not lacking:
        return None
    names = " and no ".join(what for what, _ in lacking)
    smallest = [min(group, key=lambda e: getattr(e, "params_b", None) or float("inf")) for _, group in lacking]
    commands = " and ".join(f"`python app.py download {esc(e.id)}`" + (f" ({esc(e.size)} parameters)" if e.size else "")
                            for e in smallest)
    return (f"**Nothing to run in {esc(domain)} here yet:** no {names} is on this machine (these are Hugging Face "
            f"models, none in the local cache). Get the smallest with {commands} (or any id `python app.py models` "
            "lists, or a hub id owner/name) and restart the app; or pick one in the lists above and press "
            "**Download** (off on a public Space unless its owner sets `TTS_ALLOW_DOWNLOADS=1`, and while "
            "`HF_HUB_OFFLINE=1` is set).")


def judge_choices(domain: str | None) -> list[tuple[str, str]]:
    """The held-out judges of a domain (entries of kind judge): what grades an image sweep's chosen images."""
    return [(_label(e), e.id) for e in _entries(domain) if e.kind == "judge"]


def t2i_prompt_choices() -> list[tuple[str, str]]:
    """The bundled text-to-image prompts as (label, problem id), ``test:<i>`` as the CLI's ``--problem-id``."""
    from backends.image import t2i

    out = []
    for i, row in enumerate(t2i.prompt_set()):
        text = row["prompt"] if len(row["prompt"]) <= PROMPT_LABEL_MAX else row["prompt"][:PROMPT_LABEL_MAX - 1] + "…"
        out.append((f"{i}. {text} [{row.get('category') or 'prompt'}]", f"test:{i}"))
    return out


@dataclass(frozen=True)
class SamplerSpec:
    """What the sampler widgets offer in one image domain, read from its backend: the options it knows with
    their defaults (None: the model's own), the scheduler choices, and the help texts that differ."""

    defaults: dict[str, Any]
    schedulers: tuple[str, ...]
    guidance_info: str
    scheduler_info: str


def sampler_spec(domain: str) -> SamplerSpec:
    if domain == "t2i":
        from backends.image import t2i
        from backends.image.t2i_pipelines import DEFAULT_GUIDANCE, SCHEDULERS

        # "auto" is what t2i.parse_options reads as the pipeline's own choice; which schedulers a model takes
        # depends on its family, checked once the pipeline is loaded
        defaults = {**t2i.DEFAULTS, "scheduler": t2i.DEFAULTS["scheduler"] or "auto"}
        families = "; ".join(f"{f}: {', '.join(s)}" for f, s in SCHEDULERS.items())
        return SamplerSpec(defaults, ("auto", *dict.fromkeys(s for ss in SCHEDULERS.values() for s in ss)),
                           "empty = the model's own (" + ", ".join(f"{f} {g:g}" for f, g in DEFAULT_GUIDANCE.items())
                           + "); 1 = off", f"auto = the model's first; by family: {families}")
    from backends.image.diffusion import DEFAULTS, SCHEDULERS

    return SamplerSpec(dict(DEFAULTS), tuple(SCHEDULERS), "1 = off (1 NFE per step, 2 otherwise)",
                       "ddim / ddpm; flow_ode / flow_sde run the UNet as a flow model")


def strategy_choices(domain: str | None) -> list[tuple[str, str]]:
    from strategies.registry import STRATEGIES

    return [(f"{info.title}", name) for name, info in STRATEGIES.items()
            if domain is None or domain in info.domains]


def strategy_markdown(name: str) -> str:
    from strategies.registry import STRATEGIES

    info = STRATEGIES.get(name)
    if info is None:
        return ""
    verifier = "uses the verifier" if info.uses_verifier else "no verifier"
    return (f"**{esc(info.title)}** — {esc(info.summary)} _({verifier}; the budget sets "
            f"`{esc(info.budget_param)}`; paper: {esc(info.paper)})_")
