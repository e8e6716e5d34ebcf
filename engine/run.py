"""One search, end to end: validate the request, build the space, run the strategy, store every event.

``execute`` is what the UI, the CLI and the sweep all call. It yields event dicts as they happen, each
with the compute spent since the previous event (``cost``) and the running totals (``totals``), and
writes them to the store step by step, so a stopped or crashed run keeps what it did.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator

from backends.domains import DOMAINS
from backends.errors import InputError
from engine import zerogpu
from engine.limits import Limits
from strategies import params as params_mod
from strategies.core import AGGREGATIONS, CancelToken, Cancelled, Compute, RunFinished
from strategies.registry import STRATEGIES, StrategyInfo

log = logging.getLogger(__name__)


class ConfigError(InputError):
    """A request the app refuses, with a one-line message for the user."""


@dataclass
class RunConfig:
    domain: str = "reasoning"
    model: str = "tiny-arith-s"
    verifier: str | None = "tiny-prm"
    strategy: str = "beam_search"
    budget: int = 16
    params: dict = field(default_factory=dict)
    problem_text: str | None = None
    problem_id: str | None = None
    difficulty: int | None = None
    seed: int = 0
    aggregation: str = "last"
    temperature: float = 0.8
    judge: str | None = None
    trust_remote_code: bool = False
    sweep_id: str | None = None
    options: dict = field(default_factory=dict)  # domain options (image: steps, eta, guidance, scheduler, previews)
    answer: str | None = None  # the expected answer of a typed free-form question (reasoning, not embedded policies)


@dataclass
class Prepared:
    config: RunConfig
    info: StrategyInfo
    params: object
    domain_run: object

    @property
    def prompt(self) -> str:
        return self.domain_run.prompt

    def record(self) -> dict:
        """The row the store keeps for this run."""
        c = self.config
        problem = self.domain_run.problem_record()
        return {"domain": c.domain, "model": c.model, "verifier": c.verifier if self.info.uses_verifier else None,
                "strategy": c.strategy, "budget": c.budget, "seed": c.seed, "problem_uid": problem.get("uid"),
                "problem_text": problem.get("text"), "difficulty": problem.get("difficulty"),
                "sweep_id": c.sweep_id, "params": asdict(self.params), "aggregation": c.aggregation,
                "temperature": c.temperature, "judge": c.judge, "prompt": self.prompt,
                "answer_truth": problem.get("answer"), **({"options": dict(c.options)} if c.options else {})}


def prepare(config: RunConfig, limits: Limits | None = None) -> Prepared:
    """Validate everything and load the models; raises ConfigError before anything is stored."""
    limits = limits or Limits.from_env()
    if config.domain not in DOMAINS:
        raise ConfigError(f"unknown domain {config.domain!r}; available: {', '.join(DOMAINS)}")
    info = STRATEGIES.get(config.strategy)
    if info is None or config.domain not in info.domains:
        names = ", ".join(n for n, s in STRATEGIES.items() if config.domain in s.domains)
        raise ConfigError(f"unknown strategy {config.strategy!r} for {config.domain}; choose one of {names}")
    cap = limits.max_budget * info.budget_scale  # a budget in tokens goes further than one in samples
    if isinstance(config.budget, bool) or not isinstance(config.budget, int) or not 1 <= config.budget <= cap:
        raise ConfigError(f"budget must be a whole number from 1 to {cap}, got {config.budget!r}")
    if config.aggregation not in AGGREGATIONS:
        raise ConfigError(f"aggregation must be one of {', '.join(AGGREGATIONS)}")
    if not 0.0 <= float(config.temperature) <= 2.0:
        raise ConfigError(f"temperature must be between 0 and 2, got {config.temperature}")
    if config.answer and config.domain != "reasoning":
        raise ConfigError(f"an expected answer is for a typed question in the reasoning domain, not {config.domain}")
    values = dict(config.params)
    budget_spec = info.budget_spec
    if budget_spec.hi is None or budget_spec.hi > 1:  # greedy has no budget to set
        if info.budget_param in values and str(values[info.budget_param]) != str(config.budget):
            raise ConfigError(f"give the budget once: budget {config.budget} and {info.budget_param}="
                              f"{values[info.budget_param]} disagree")
        values[info.budget_param] = config.budget
    try:
        built = params_mod.build(info.params_cls, values)
        domain_run = DOMAINS[config.domain](config, info.uses_verifier)
    except ValueError as exc:  # InputError, ModelLoadError and parameter errors carry their message
        raise ConfigError(str(exc)) from None
    if info.needs_thinking and not getattr(domain_run, "thinking", ()):
        raise ConfigError(f"{config.strategy} needs a thinking model (a policy with thinking delimiters, such as "
                          f"tiny-think); {config.model} answers at once")
    verifier = getattr(domain_run, "verifier", None)
    if info.critic_needed(built) and not hasattr(verifier, "critique"):
        raise ConfigError(f"{config.strategy} needs a verifier that critiques (tiny-critic, oracle); "
                          f"{getattr(verifier, 'name', None) or config.verifier or 'no verifier'} gives only a score")
    return Prepared(config, info, built, domain_run)


def _totals(meter: Compute, started: float) -> dict:
    d = meter.to_dict()
    d["model_s"] = d["wall_s"]
    d["wall_s"] = time.perf_counter() - started
    return d


def run_events(config: RunConfig, limits: Limits | None = None, cancel: CancelToken | None = None,
               prepared: Prepared | None = None) -> Iterator[dict]:
    """The model side of one run, as plain data: every strategy event as a dict with the compute it spent
    (``cost``) and the running ``totals``, then one ``{"type": "Graded"}`` with the judge's verdict
    (``correct``), the domain's result ``extras`` and the final ``totals``. Exceptions (Cancelled included)
    propagate.

    Plain dicts and no store, because on a ZeroGPU Space this runs in a GPU worker process
    (``engine.zerogpu``) and only what it yields comes back; :func:`execute` writes the database.
    """
    prep = prepared or prepare(config, limits)
    cancel = cancel or CancelToken()
    started = time.perf_counter()
    space = prep.domain_run.space(config, cancel)
    last = Compute()
    result = None
    for event in prep.info.search(space, prep.params, cancel):
        d = event.to_dict()
        d["cost"] = space.meter.minus(last).to_dict()
        last = space.meter.copy()
        d["totals"] = _totals(space.meter, started)
        if isinstance(event, RunFinished):
            result = event
        yield d
    # a domain whose answer is not a string (an image) grades the chosen node itself
    grade_result = getattr(prep.domain_run, "grade_result", None)
    if result is None:
        correct = None
    else:
        correct = grade_result(space, result) if grade_result else prep.domain_run.grade(result.answer)
    extras = prep.domain_run.result_extras(space, result) if result else {}
    yield {"type": "Graded", "correct": correct, "extras": extras, "totals": _totals(space.meter, started)}


def _gpu_work(config: RunConfig, limits: Limits | None = None) -> Iterator[dict]:
    """The whole model side of one run, as plain dicts (what the ZeroGPU worker sends back)."""
    yield from run_events(config, limits)


gpu_events = zerogpu.on_gpu(_gpu_work)  # decorated at import, as ZeroGPU requires


def on_zerogpu() -> bool:
    """True when ``spaces`` wrapped the run's model work, i.e. on a ZeroGPU Space."""
    return gpu_events is not _gpu_work


def execute(config: RunConfig, store, cancel: CancelToken | None = None, limits: Limits | None = None) -> Iterator[dict]:
    """Run one search and yield its events; see the module docstring. Raises ConfigError on bad input.

    The model work is :func:`run_events`, here in process, or on a ZeroGPU Space inside the GPU worker when
    the run needs a real model (``engine.zerogpu``); either way only this function writes to the store.
    """
    prep = prepare(config, limits)
    cancel = cancel or CancelToken()
    run_id = store.create_run(prep.record())
    started = time.perf_counter()
    first = {"type": "RunStarted", "run_id": run_id, "strategy": config.strategy, "params": asdict(prep.params),
             "problem": prep.domain_run.problem_record(), "prompt": prep.prompt, "config": prep.record(),
             "cost": Compute().to_dict(), "totals": _totals(Compute(), started)}
    store.append_events(run_id, [first])
    yield first
    on_gpu = on_zerogpu() and zerogpu.needs_gpu(config)
    if on_gpu:
        log.info("run %s: model work on the ZeroGPU worker", run_id)
    stream = gpu_events(config, limits) if on_gpu else run_events(config, limits, cancel, prep)
    status, error, result, graded = "running", None, None, None
    pending: list[dict] = []
    totals = first["totals"]
    try:
        for d in stream:
            if on_gpu:
                cancel.check()  # the worker cannot see the token: stop at the next event it sends
            totals = d["totals"]
            if d["type"] == "Graded":
                graded = d
                continue
            pending.append(d)
            if d["type"] in ("StepDone", "RunFinished"):
                store.append_events(run_id, pending)
                pending = []
            if d["type"] == "RunFinished":
                result = d
            yield d
        status = "finished"
    except Cancelled:
        status = "cancelled"
    except GeneratorExit:
        # The consumer went away (a closed browser tab, a Stop button): keep what was done.
        stream.close()
        _close(store, run_id, pending, "cancelled", None, None, None, totals)
        raise
    except Exception as exc:  # noqa: BLE001 - a failed run is stored with its reason, never lost
        log.exception("run %s failed", run_id)
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        stream.close()
    yield _close(store, run_id, pending, status, error, result, graded, totals)


def _close(store, run_id: str, pending: list[dict], status: str, error: str | None, result: dict | None,
           graded: dict | None, totals: dict) -> dict:
    if pending:
        store.append_events(run_id, pending)
    answer = result["answer"] if result else None
    correct = graded["correct"] if graded and result else None
    extras = graded["extras"] if graded and result else {}
    if graded:
        totals = graded["totals"]
    stored = {**{k: v for k, v in result.items() if k not in ("cost", "totals")}, **extras} if result else None
    store.finish_run(run_id, status, result=stored, totals=totals, answer=answer,
                     correct=correct, score=result["score"] if result else None, error=error)
    return {"type": "RunEnded", "run_id": run_id, "status": status, "answer": answer, "correct": correct,
            "score": result["score"] if result else None, "compute": totals, "error": error,
            "candidates": result["candidates"] if result else [], "extras": extras,
            "stats": (result.get("stats") or {}) if result else {}}


def summary(events: list[dict]) -> dict:
    """The CLI's JSON for a run: its id, the problem, the exact prompt, the answer and the compute."""
    first, last = events[0], events[-1]
    return {"run_id": first["run_id"], "status": last["status"], "strategy": first["strategy"],
            "params": first["params"], "problem": first["problem"], "prompt": first["prompt"],
            "answer": last["answer"], "correct": last["correct"], "score": last["score"],
            "compute": last["compute"], "error": last["error"],
            "candidates": last["candidates"], **({"extras": last["extras"]} if last.get("extras") else {}),
            **({"stats": last["stats"]} if last.get("stats") else {})}


def to_json(obj: dict) -> str:
    return json.dumps(obj, indent=2, sort_keys=False)
