"""Sweeps: every strategy at every budget on the same problems and seeds, stored run by run.

Accuracy is the mean over (problem, seed) pairs. The oracle ceiling at budget k is computed from the same
samples as the strategies it bounds: the share of (problem, seed) runs of the sweep's first best-of-N family
strategy at budget k in which some sample is right, so no selection from those samples can beat it (best-of-N
at N = 1 meets it). A sweep without such a strategy gets the unbiased pass@k estimate (Chen et al. 2021) from
oracle runs at the largest budget, made for that purpose and labelled an estimate (``oracle["estimated"]``).
``resume`` reuses every finished run with the same configuration already in the store, so a killed sweep
continues where it stopped with the same results.

Difficulty comes two ways: the task's own labels (``by_difficulty``), and the policy's own pass@1 in five
quantile levels as the compute-optimal scaling paper (Snell et al. 2024) bins it (``by_pass1``): a problem's
pass@1 is the fraction of right samples among the same samples as the oracle ceiling's (the largest sampling
run, averaged over seeds), level 1 the easiest fifth (highest pass@1), level 5 the hardest. Problems with equal
pass@1 share a level: a problem's level is ceil(5 F), F the share of problems whose pass@1 is at least its own,
so the levels are fifths up to ties and the hardest problems are level 5 even when many of them tie at 0.

The thinking-budget axis: a strategy whose budget counts tokens (budget forcing: thinking tokens per sample) runs
at ``thinking_budgets`` (when given; else at ``budgets``, as before the axis), each at every count of parallel
samples in ``samples`` (its samples parameter, budget forcing's ``n``), so a cell is (strategy, budget, samples)
and N samples of budget B can be set against one sample of budget N x B (``engine.thinking``). Such a sweep has no
oracle ceiling unless a strategy counting samples runs beside it: pass@k needs k to be a number of samples drawn.
"""
from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from backends import catalog
from backends.domains import PROBLEM_SETS, ProblemSet
from engine.limits import Limits
from engine.run import ConfigError, RunConfig, execute, prepare
from strategies.core import CancelToken, Cancelled
from strategies.params import specs
from strategies.registry import STRATEGIES

log = logging.getLogger(__name__)
SAMPLING = ("best_of_n", "weighted_bon", "majority_vote", "random_search")
PASS1_LEVELS = 5
MAX_WORKERS = 64


@dataclass
class SweepConfig:
    domain: str = "reasoning"
    model: str = "tiny-arith-s"
    verifier: str | None = "tiny-prm"
    strategies: list[str] = field(default_factory=lambda: ["greedy", "best_of_n", "beam_search"])
    budgets: list[int] = field(default_factory=lambda: [1, 4, 16])
    split: str = "test"
    problems: int = 20
    seeds: list[int] = field(default_factory=lambda: [0])
    aggregation: str = "last"
    temperature: float = 0.8
    params: dict = field(default_factory=dict)  # per strategy: {"beam_search": {"beam_width": 4}}
    resume: bool = False
    judge: str | None = None                       # held-out judge (image domain)
    options: dict = field(default_factory=dict)    # domain options (image: steps, eta, guidance, ...)
    thinking_budgets: list[int] = field(default_factory=list)  # for the strategies whose budget counts tokens
    samples: list[int] = field(default_factory=list)  # their parallel samples; empty: the one in ``params``


def _problem_set(domain: str) -> ProblemSet:
    if domain not in PROBLEM_SETS:
        raise ConfigError(f"unknown domain {domain!r}; choose one of {', '.join(PROBLEM_SETS)}")
    return PROBLEM_SETS[domain]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def effective_budget(strategy: str, budget: int, beam_width: int) -> int | None:
    """The budget a strategy really runs at, or None when it cannot run at it (beam width above N)."""
    if strategy == "greedy":
        return 1
    if strategy in ("beam_search", "dvts") and budget < beam_width:
        return None
    return budget


def _counts_tokens(strategy: str) -> bool:
    return STRATEGIES[strategy].budget_scale > 1


def plan(config: SweepConfig) -> list[tuple[str, int, int | None]]:
    """The sweep's cells in run order: (strategy, the budget it really runs at, its parallel samples, None for a
    strategy without a samples parameter), each once."""
    out: list[tuple[str, int, int | None]] = []
    for s in config.strategies:
        info = STRATEGIES[s]
        params = config.params.get(s, {})
        width = int(params.get("beam_width", 4))
        budgets = config.thinking_budgets if _counts_tokens(s) and config.thinking_budgets else config.budgets
        ks: list[int | None] = [None]
        if info.samples_param:
            default = next(p.default for p in specs(info.params_cls) if p.name == info.samples_param)
            try:
                ks = list(config.samples) or [int(params.get(info.samples_param, default))]
            except ValueError:
                raise ConfigError(f"{s}.{info.samples_param} must be a whole number, "
                                  f"got {params.get(info.samples_param)!r}") from None
        for b in budgets:
            eb = effective_budget(s, b, width)
            for k in ks:
                if eb is not None and (s, eb, k) not in out:
                    out.append((s, eb, k))
    return out


def validate(config: SweepConfig, limits: Limits) -> None:
    if not config.strategies:
        raise ConfigError("choose at least one strategy")
    for s in config.strategies:
        if s not in STRATEGIES:
            raise ConfigError(f"unknown strategy {s!r}; choose from {', '.join(STRATEGIES)}")
    on_budgets = [s for s in config.strategies if not (_counts_tokens(s) and config.thinking_budgets)]
    if on_budgets:
        cap = limits.max_budget * min(STRATEGIES[s].budget_scale for s in on_budgets)
        if not config.budgets or any(not 1 <= b <= cap for b in config.budgets):
            raise ConfigError(f"budgets must be whole numbers from 1 to {cap}")
    if config.thinking_budgets:
        thinking = [s for s in config.strategies if _counts_tokens(s)]
        if not thinking:
            raise ConfigError("thinking budgets need a strategy whose budget counts thinking tokens (budget_forcing)")
        cap = limits.max_budget * min(STRATEGIES[s].budget_scale for s in thinking)
        if any(not 1 <= b <= cap for b in config.thinking_budgets):
            raise ConfigError(f"thinking budgets must be whole numbers from 1 to {cap}")
    if config.samples:
        drawing = [s for s in config.strategies if STRATEGIES[s].samples_param]
        if not drawing:
            raise ConfigError("parallel samples need a strategy that draws them beside a token budget "
                              "(budget_forcing)")
        if any(not 1 <= k <= limits.max_budget for k in config.samples):
            raise ConfigError(f"parallel samples must be whole numbers from 1 to {limits.max_budget}")
        for s in drawing:
            if STRATEGIES[s].samples_param in config.params.get(s, {}):
                raise ConfigError(f"give {s}'s {STRATEGIES[s].samples_param} by the samples axis or by its "
                                  "parameter, not both")
    if not 1 <= config.problems <= limits.max_problems:
        raise ConfigError(f"problems must be from 1 to {limits.max_problems}")
    if not config.seeds or len(config.seeds) > limits.max_seeds:
        raise ConfigError(f"give 1 to {limits.max_seeds} seeds")
    splits = _problem_set(config.domain).splits
    if config.split not in splits:
        raise ConfigError(f"unknown split {config.split!r}; choose one of {', '.join(splits)}")
    runs = len(plan(config)) * config.problems * len(config.seeds)
    if runs > limits.max_sweep_runs:
        raise ConfigError(f"this sweep needs {runs} runs; the cap here is {limits.max_sweep_runs}")


def _run_one(rc: RunConfig, store, cancel: CancelToken, resume: bool, limits: Limits) -> dict:
    """The stored outcome of one run: reused from the store under ``resume``, else executed now; Cancelled
    before anything is stored when the sweep was cancelled."""
    cancel.check()
    if resume:
        prep = prepare(rc, limits)
        rec = prep.record()
        found = store.find_finished_run(rec["domain"], rec["model"], rec["verifier"], rec["strategy"], rec["budget"],
                                        rec["seed"], rec["problem_uid"], rec["params"])
        # The store's key covers the strategy parameters only; the space settings must match too.
        same_space = found is not None and all((found.get("config") or {}).get(k) == rec.get(k)
                                               for k in ("aggregation", "temperature", "judge", "options"))
        if same_space:
            result = found.get("result") or {}
            return {"correct": bool(found["correct"]), "compute": found["totals"] or {},
                    "candidates": result.get("candidates", []), "run_id": found["id"], "reused": True,
                    "score": found.get("score"), "extras": result, "stats": result.get("stats") or {}}
    last = None
    for event in execute(rc, store, cancel, limits):
        last = event
    if last["status"] == "cancelled":
        raise Cancelled()
    if last["status"] != "finished":
        raise RuntimeError(f"run {last['run_id']} failed: {last['error']}")
    return {"correct": bool(last["correct"]), "compute": last["compute"], "candidates": last["candidates"],
            "run_id": last["run_id"], "reused": False, "score": last["score"], "extras": last.get("extras") or {},
            "stats": last.get("stats") or {}}


@dataclass
class _Job:
    """One run of the sweep, in the order a sequential sweep runs them; ``oracle`` marks an oracle-only run."""

    config: RunConfig
    problem: Any
    oracle: bool = False
    samples: int | None = None  # the cell's parallel samples (a strategy with a samples parameter)


Cell = tuple[str, int]


@dataclass
class SweepClock:
    """Seconds a sweep has left, from the measured time per run of each (strategy, budget) cell: a cell's
    remaining runs at its own mean, an unmeasured cell at its strategy's measured seconds per unit of budget
    times its budget (else every measured run's), since one budget's runs say little about another's. Reused
    runs count as done but not as measured (they cost nothing now). The sum is sequential time."""

    left: dict[Cell, int] = field(default_factory=dict)
    spent: dict[Cell, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # --workers records from threads

    def plan(self, cells: list[Cell]) -> None:
        with self.lock:
            for cell in cells:
                self.left[cell] = self.left.get(cell, 0) + 1

    def record(self, cell: Cell, seconds: float | None) -> None:
        """One run of ``cell`` done; ``seconds`` it took, None for a reused run."""
        with self.lock:
            self.left[cell] = max(0, self.left.get(cell, 0) - 1)
            if seconds is not None:
                self.spent.setdefault(cell, []).append(seconds)

    def _per_unit(self, strategy: str | None) -> float | None:
        rates = [t / max(1, c[1]) for c, ts in self.spent.items() if strategy in (None, c[0]) for t in ts]
        return sum(rates) / len(rates) if rates else None

    def left_s(self) -> float | None:
        """The estimate, or None before any run was measured (while runs remain)."""
        with self.lock:
            return self._left_s()

    def _left_s(self) -> float | None:
        total = 0.0
        for cell, n in self.left.items():
            if not n:
                continue
            times = self.spent.get(cell)
            if times:
                total += n * sum(times) / len(times)
                continue
            rate = self._per_unit(cell[0])
            rate = self._per_unit(None) if rate is None else rate
            if rate is None:
                return None
            total += n * rate * max(1, cell[1])
        return total


def check_workers(config: SweepConfig, workers: int) -> None:
    """ConfigError unless ``workers`` runs can go at once: more than one only against an OpenAI-compatible
    endpoint, whose server batches across requests; a model in this process would only share its CPU."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"workers must be a whole number from 1 to {MAX_WORKERS}, got {workers!r}")
    if workers == 1:
        return
    try:
        endpoint = config.domain == "reasoning" and catalog.resolve(config.model, "policy").backend == "openai"
    except ValueError as exc:  # an unknown model: the runs would refuse it anyway, with this message
        raise ConfigError(str(exc)) from None
    if not endpoint:
        raise ConfigError(f"--workers {workers} needs an OpenAI-compatible endpoint as the policy "
                          f"(openai:<model>@<base url>); {config.model} runs in this process, so use --workers 1")


def _timed(job: _Job, store, cancel: CancelToken, resume: bool, limits: Limits, clock: SweepClock | None) -> dict:
    started = time.monotonic()
    out = _run_one(job.config, store, cancel, resume, limits)
    if clock is not None:
        clock.record((job.config.strategy, job.config.budget), None if out["reused"] else time.monotonic() - started)
    return out


def _execute(jobs: list[_Job], store, cancel: CancelToken, resume: bool, limits: Limits, workers: int,
             progress: Callable[[int, int], None] | None,
             clock: SweepClock | None = None) -> tuple[list[dict | None], bool]:
    """(each job's outcome in job order, whatever order they finish in; whether all ran). A cancelled sweep keeps
    the outcomes it has, None for the rest.

    With ``workers`` > 1 the runs go from a thread pool; each run's randomness comes from its own seed and its
    own space, and the store takes one connection per thread, so the results are those of ``workers`` = 1."""
    outs: list[dict | None] = [None] * len(jobs)
    if workers == 1:
        try:
            for i, job in enumerate(jobs):
                outs[i] = _timed(job, store, cancel, resume, limits, clock)
                if progress:
                    progress(i + 1, len(jobs))
        except Cancelled:
            return outs, False
        return outs, True
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sweep")
    futures = {pool.submit(_timed, job, store, cancel, resume, limits, clock): i for i, job in enumerate(jobs)}
    complete = True
    try:
        for done, fut in enumerate(as_completed(futures), 1):
            try:
                outs[futures[fut]] = fut.result()
            except Cancelled:
                complete = False
                continue
            if progress:
                progress(done, len(jobs))
    except BaseException:
        cancel.cancel()  # a failed run (or Ctrl-C): the runs in flight stop at their next step
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # the queued runs never start
    return outs, complete and all(o is not None for o in outs)


def run_sweep(config: SweepConfig, store, cancel: CancelToken | None = None,
              progress: Callable[[int, int], None] | None = None, limits: Limits | None = None,
              workers: int = 1, clock: SweepClock | None = None) -> dict:
    """Run the sweep (``workers`` runs at once against an endpoint policy, see ``check_workers``) and store it;
    ``clock``, when given, is planned with every run and told each run's time (the page's time estimate)."""
    limits = limits or Limits.from_env()
    cancel = cancel or CancelToken()
    validate(config, limits)
    check_workers(config, workers)
    sweep_id = store.create_sweep(asdict(config))
    problem_set = _problem_set(config.domain)
    problems = [problem_set.problem_at(config.split, i) for i in range(config.problems)]
    cells_planned = plan(config)
    # pass@k for k samples: the budgets N of the strategies that count samples (none in a thinking-budget sweep)
    ks = sorted(set(config.budgets)) if not all(_counts_tokens(s) for s in config.strategies) else []
    oracle_source = next((s for s in SAMPLING if s in config.strategies), None)
    max_b = max(ks, default=0)
    need_oracle_runs = bool(ks) and (oracle_source is None or (oracle_source, max_b, None) not in cells_planned)
    # the oracle runs' strategy: majority vote, or random search where the domain has no majority vote
    oracle_runs = next(s for s in ("majority_vote", "random_search") if config.domain in STRATEGIES[s].domains)
    jobs: list[_Job] = []
    for seed in config.seeds:
        for problem in problems:
            for s, b, k in cells_planned:
                params = dict(config.params.get(s, {}))
                if config.samples and k is not None:
                    params[STRATEGIES[s].samples_param] = k
                jobs.append(_Job(RunConfig(domain=config.domain, model=config.model, verifier=config.verifier,
                                           strategy=s, budget=b, params=params,
                                           problem_id=problem.uid, seed=seed, aggregation=config.aggregation,
                                           temperature=config.temperature, sweep_id=sweep_id, judge=config.judge,
                                           options=dict(config.options)), problem, samples=k))
            if need_oracle_runs:
                jobs.append(_Job(RunConfig(domain=config.domain, model=config.model,
                                           verifier=config.verifier if STRATEGIES[oracle_runs].uses_verifier else None,
                                           strategy=oracle_runs, budget=max_b, problem_id=problem.uid, seed=seed,
                                           temperature=config.temperature, sweep_id=sweep_id, judge=config.judge,
                                           options=dict(config.options)), problem, oracle=True))
    if clock is not None:
        clock.plan([(job.config.strategy, job.config.budget) for job in jobs])
    outs, complete = _execute(jobs, store, cancel, config.resume, limits, workers, progress, clock)
    status = "finished" if complete else "cancelled"
    cells: dict[tuple[str, int, int | None], list[tuple[Any, dict, float]]] = {}
    oracle_counts: list[tuple[str, int, int]] = []  # (problem, samples, right ones), one per (problem, seed)
    same: dict[int, list[int]] = {}  # budget -> right samples of each run of the oracle source at that budget
    for job, out in zip(jobs, outs):
        if out is None:
            continue
        s, b = job.config.strategy, job.config.budget
        if not job.oracle:
            # the run's own recorded wall time, so a reused run counts what it took when it ran and a resumed
            # sweep reports the wall time of an uninterrupted one
            cells.setdefault((s, b, job.samples), []).append((job.problem, out, out["compute"].get("wall_s", 0.0)))
        if not need_oracle_runs and s == oracle_source:
            same.setdefault(b, []).append(_counts(problem_set, job.problem, out, b)[1])
        if job.oracle or (not need_oracle_runs and s == oracle_source and b == max_b):
            oracle_counts.append((_key(job.problem), *_counts(problem_set, job.problem, out, max_b)))
    source = oracle_source if not need_oracle_runs else f"{oracle_runs} (oracle runs)"
    if not ks:
        source = "none (no strategy here counts samples)"
    levels = pass1_levels(oracle_counts)
    result = {"config": {**asdict(config), "sweep_id": sweep_id},
              "results": [{**_cell(s, b, cells[(s, b, k)], levels), "samples": k} for s, b, k in cells_planned
                          if cells.get((s, b, k))],
              "oracle": _oracle(ks, same, oracle_counts, source),
              "pass1": {"source": f"{source} at budget {max_b}", "levels": PASS1_LEVELS,
                        "by_problem": _pass1(oracle_counts), "level_of": levels},
              "status": status}
    store.finish_sweep(sweep_id, status, result)
    return result


def _oracle(budgets: list[int], same: dict[int, list[int]], counts: list[tuple[str, int, int]], source: str) -> dict:
    """pass@k per budget: the share of the source's runs at k with a right sample where it ran at k (its own
    samples), else the unbiased estimate from the largest budget's samples, listed in ``estimated``."""
    passes: dict[str, float | None] = {}
    estimated = []
    for k in sorted(set(budgets)):
        if same.get(k):
            passes[str(k)] = _mean([1.0 if c else 0.0 for c in same[k]])
        else:
            passes[str(k)] = _mean([pass_at_k(n, c, k) for _, n, c in counts if k <= n])
            estimated.append(str(k))
    return {"pass@k": passes, "source": source, "estimated": estimated,
            "n_problems": len({p for p, _, _ in counts}), "n_runs": len(counts)}


def _counts(problem_set: ProblemSet, problem, out: dict, n: int) -> tuple[int, int]:
    """(samples drawn, correct samples) from a sampling run: one candidate row per finished sample.

    A domain that grades candidates itself (the image judge) reports ``candidates_correct`` in its extras.
    """
    graded = (out.get("extras") or {}).get("candidates_correct")
    if graded is not None:
        return n, sum(1 for row in out["candidates"] if graded.get(row["id"]))
    correct = sum(1 for row in out["candidates"] if problem_set.is_correct(problem, row["answer"]))
    return n, correct


def _key(problem) -> str:
    return problem.uid or problem.text


def _pass1(counts: list[tuple[str, int, int]]) -> dict[str, float]:
    """Each problem's pass@1: right samples over samples, averaged over its (problem, seed) runs."""
    per: dict[str, list[float]] = {}
    for key, n, c in counts:
        if n:
            per.setdefault(key, []).append(c / n)
    return {k: sum(v) / len(v) for k, v in per.items()}


def pass1_levels(counts: list[tuple[str, int, int]], levels: int = PASS1_LEVELS) -> dict[str, str]:
    """Problem -> difficulty level "1" (highest pass@1) to ``levels`` (lowest) by pass@1 quantile: ceil(levels F),
    F the share of problems whose pass@1 is at least the problem's own (ties share a level)."""
    p1 = _pass1(counts)
    values = sorted(p1.values())
    out: dict[str, str] = {}
    for key, p in p1.items():
        share = (len(values) - bisect.bisect_left(values, p)) / len(values)
        out[key] = str(max(1, math.ceil(levels * share - 1e-9)))
    return out


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _mean_compute(outs: list[dict]) -> tuple[dict[str, float], dict[str, float]]:
    """(mean, total) of the runs' numeric compute counters; no memory bytes when a run lacks them (runs stored
    before the memory counter: their eFLOPs are unknown)."""
    total: dict[str, float] = {}
    for out in outs:
        for k, v in out["compute"].items():
            if isinstance(v, (int, float)):
                total[k] = total.get(k, 0) + v
    mean = {k: v / len(outs) for k, v in total.items()}
    if any("mem_bytes" not in out["compute"] for out in outs):
        mean.pop("mem_bytes", None)
    return mean, total


def _cell(strategy: str, budget: int, rows: list[tuple[Any, dict, float]], pass1_level: dict[str, str]) -> dict:
    """One (strategy, budget) cell: accuracy and mean compute per problem over all its runs and per level (the
    task's difficulty, the pass@1 level), so a level's row reports what that level's problems cost."""
    by_level: dict[str, list[dict]] = {}
    by_pass1: dict[str, list[dict]] = {}
    vscores = []
    stats: dict[str, list[float]] = {}  # a strategy's run-level numbers (kept KV cache: REBASE, ETS)
    for problem, out, _ in rows:
        for k, v in (out.get("stats") or {}).items():
            if isinstance(v, (int, float)):
                stats.setdefault(k, []).append(v)
        if problem.difficulty is not None:
            by_level.setdefault(str(problem.difficulty), []).append(out)
        if _key(problem) in pass1_level:
            by_pass1.setdefault(pass1_level[_key(problem)], []).append(out)
        extras = out.get("extras") or {}
        v = extras.get("chosen_verifier_score", out.get("score"))
        if v is not None:
            vscores.append(v)
    n = len(rows)
    mean_compute, compute = _mean_compute([out for _, out, _ in rows])
    accuracy = lambda outs: sum(o["correct"] for o in outs) / len(outs)  # noqa: E731
    return {"strategy": strategy, "budget": budget, "accuracy": accuracy([o for _, o, _ in rows]),
            "n_problems": len({p.uid or p.text for p, _, _ in rows}), "n_runs": n,
            "by_difficulty": {k: accuracy(v) for k, v in sorted(by_level.items())},
            "by_pass1": {k: accuracy(v) for k, v in sorted(by_pass1.items())},
            "compute": mean_compute, "compute_total": compute,
            "compute_by_difficulty": {k: _mean_compute(v)[0] for k, v in sorted(by_level.items())},
            "compute_by_pass1": {k: _mean_compute(v)[0] for k, v in sorted(by_pass1.items())},
            "wall_s": sum(w for _, _, w in rows),
            "reused_runs": sum(1 for _, o, _ in rows if o["reused"]),
            "verifier_score": _mean(vscores),  # mean search-verifier score of the chosen answers
            "stats": {k: sum(v) / len(v) for k, v in stats.items()}}  # means over the runs that report them
