"""TTS Explorer: watch test-time scaling search happen.

    python app.py                     serve the web app (127.0.0.1:7860 by default) and the OpenAI
                                      gateway on the same port under /v1
    python app.py run ...             run one search and store it
    python app.py sweep ...           run strategies x budgets over a problem set
    python app.py models [--json]     list every model and verifier id the catalog knows
    python app.py download ID         download a hub model into the local Hugging Face cache

Bad arguments exit with status 2 and one line on stderr.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys

log = logging.getLogger("tts_explorer")


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise CliError(message)


def _params(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--param must look like name=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _int_list(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"{what} must be comma-separated whole numbers, got {text!r}") from None


def _flops_per_byte(raw: str | None) -> float:
    """``--flops-per-byte``, else ``TTS_FLOPS_PER_BYTE``, else the H100's figure (``engine.limits``)."""
    from engine.limits import Limits, check_flops_per_byte
    try:
        return check_flops_per_byte(raw, "--flops-per-byte") if raw is not None else Limits.from_env().flops_per_byte
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _budgets_help() -> str:
    """What ``--budget`` buys for each strategy: its budget parameter's help, from the registry."""
    from strategies.registry import STRATEGIES
    lines = ["what --budget buys, per strategy (the parameter it sets):"]
    for name, info in STRATEGIES.items():
        lines.append(f"  {name} ({info.budget_param}): {info.budget_spec.help}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="app.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1 or GRADIO_SERVER_NAME)")
    p.add_argument("--port", type=int, default=None, help="port (default 7860 or GRADIO_SERVER_PORT)")
    p.add_argument("--db", default=None, help="SQLite file (default TTS_EXPLORER_DB, then the user data dir)")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    sub.add_parser("serve", help="serve the web app (the default)")

    m = sub.add_parser("models", help="list the models and verifiers the catalog knows")
    m.add_argument("--json", action="store_true", help="print JSON")

    d = sub.add_parser("download", help="download a hub model into the local Hugging Face cache (its size and the "
                                        "free disk are shown first; Ctrl-C stops it, and a new download resumes)")
    d.add_argument("model", help="a catalog id (python app.py models) or any hub id owner/name")
    d.add_argument("--json", action="store_true", help="print one JSON object at the end")

    r = sub.add_parser("run", help="run one search, store it, print a summary", epilog=_budgets_help(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--domain", default="reasoning")
    r.add_argument("--model", default="tiny-arith-s")
    r.add_argument("--verifier", default="tiny-prm")
    r.add_argument("--judge", default=None, help="held-out judge (image and t2i domains)")
    r.add_argument("--strategy", default="beam_search")
    r.add_argument("--budget", type=int, default=16, help="what it buys depends on the strategy: see below")
    r.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="strategy parameter")
    r.add_argument("--problem", default=None, help="problem text")
    r.add_argument("--problem-id", default=None, help="split:index, e.g. test:17")
    r.add_argument("--answer", default=None, help="the expected answer of a typed --problem to your own model "
                                                   "(graded by math-verify; without it the answer is not graded)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--aggregation", default="last", help="PRM aggregation: last, min, prod, mean, model")
    r.add_argument("--temperature", type=float, default=0.8)
    r.add_argument("--trust-remote-code", action="store_true", help="allow a hub model's own code to run")
    r.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="domain option (reasoning: kv_reuse=on|off, kv_budget_mb, drafting=off|ngram, a critic's "
                        "critiques=K, vote=share|majority|unanimous, meta=on|off; "
                        "image: steps, eta, guidance, scheduler=ddim|ddpm|flow_ode|flow_sde, "
                        "diffusion (flow_sde), interpolant=linear|vp, previews=all|final|none; t2i: steps, eta, "
                        "guidance, scheduler=ddim|ddpm|euler, size, previews, judge_pass)")
    r.add_argument("--db", dest="sub_db", default=None)
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.add_argument("--flops-per-byte", default=None,
                   help="accelerator FLOPs per byte pricing memory traffic in eFLOPs (default TTS_FLOPS_PER_BYTE, "
                        "else an H100's 295)")

    s = sub.add_parser("sweep", help="strategies x budgets over a problem set")
    s.add_argument("--domain", default="reasoning")
    s.add_argument("--model", default="tiny-arith-s")
    s.add_argument("--verifier", default="tiny-prm")
    s.add_argument("--judge", default=None)
    s.add_argument("--strategies", default="greedy,best_of_n,weighted_bon,majority_vote,beam_search,dvts,"
                                           "particle_filtering,mcts")
    s.add_argument("--budgets", default="1,4,16")
    s.add_argument("--thinking-budgets", default="",
                   help="thinking tokens per sample for the strategies whose budget counts them (budget_forcing), "
                        "e.g. 8,32,128; without it they run at --budgets")
    s.add_argument("--samples", default="",
                   help="parallel samples (budget_forcing's n) at each thinking budget, e.g. 1,4: N samples of B "
                        "are set against one sample of N x B")
    s.add_argument("--split", default="test")
    s.add_argument("--problems", type=int, default=100)
    s.add_argument("--seeds", default="0")
    s.add_argument("--aggregation", default="last")
    s.add_argument("--temperature", type=float, default=0.8)
    s.add_argument("--param", action="append", default=[], metavar="STRATEGY.NAME=VALUE",
                   help="strategy parameter, e.g. beam_search.beam_width=4")
    s.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="domain option for every run (reasoning: kv_reuse, kv_budget_mb, drafting, critiques, vote, "
                        "meta; image: steps, eta, guidance, scheduler, previews)")
    s.add_argument("--resume", action="store_true", help="skip runs already stored in this database")
    s.add_argument("--workers", type=int, default=1,
                   help="runs at once (more than 1 only with an OpenAI-compatible endpoint policy, openai:...)")
    s.add_argument("--db", dest="sub_db", default=None)
    s.add_argument("--out", default=None, help="write the JSON result here")
    s.add_argument("--flops-per-byte", default=None,
                   help="accelerator FLOPs per byte pricing memory traffic in eFLOPs (default TTS_FLOPS_PER_BYTE, "
                        "else an H100's 295)")
    s.add_argument("--saturation-gain", type=float, default=None,
                   help="accuracy one more unit of budget must buy before the saturation point (default 0.001)")
    return p


def cmd_models(args) -> int:
    from backends import catalog
    rows = [e.to_dict() for e in catalog.models()]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            mark = "yes" if r["available"] else "no "
            print(f"{r['id']:<36} {r['kind']:<10} {r['domain']:<10} available={mark} {r['reason']}")
    return 0


def cmd_download(args) -> int:
    from backends import catalog
    from backends.download import DownloadError, download, plan
    from strategies.core import CancelToken
    from tqdm import tqdm

    try:
        p = plan(args.model)
    except DownloadError as exc:
        raise CliError(str(exc)) from None
    print(p.describe(), file=sys.stderr)
    token = CancelToken()
    previous = {sig: signal.signal(sig, lambda *_: token.cancel()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with tqdm(total=p.size_bytes, unit="B", unit_scale=True, desc=p.repo_id, file=sys.stderr) as bar:
            def progress(done: int, total: int | None) -> None:
                bar.update(done - bar.n)
            path = download(args.model, progress, token, checked=p)
    except DownloadError as exc:
        raise CliError(str(exc)) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    ok, reason = catalog.hub_availability(p.repo_id, "model_index.json" if os.path.exists(
        os.path.join(path, "model_index.json")) else "config.json")
    if args.json:
        print(json.dumps({"model": args.model, "repo": p.repo_id, "path": path, "size_bytes": p.size_bytes,
                          "available": ok, "reason": reason}, indent=2))
    else:
        print(f"{args.model}: {reason} ({path})")
    return 0


def _store(args):
    from storage import RunStore, StoreError, default_db_path
    try:
        return RunStore(default_db_path(getattr(args, "sub_db", None) or args.db))
    except StoreError as exc:
        raise CliError(str(exc)) from None


def cmd_run(args) -> int:
    from engine.run import ConfigError, RunConfig, execute, summary
    from strategies.core import CancelToken, eflops_of
    from tqdm import tqdm

    if args.problem is not None and not args.problem.strip():
        raise CliError("--problem is empty: give the problem text, or leave it out (then --problem-id, else test:0)")
    flops_per_byte = _flops_per_byte(args.flops_per_byte)
    config = RunConfig(domain=args.domain, model=args.model, verifier=args.verifier or None,
                       strategy=args.strategy, budget=args.budget, params=_params(args.param),
                       problem_text=args.problem, problem_id=args.problem_id, seed=args.seed, answer=args.answer,
                       aggregation=args.aggregation, temperature=args.temperature, judge=args.judge,
                       trust_remote_code=args.trust_remote_code, options=_params(args.option))
    store = _store(args)
    events = []
    # Ctrl-C and SIGTERM cancel the run cooperatively (the model loops check the token), so it is stored as
    # cancelled, with the steps it finished, instead of being left running
    token = CancelToken()
    previous = {sig: signal.signal(sig, lambda *_: token.cancel()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with tqdm(desc=f"{args.strategy}", unit="step", file=sys.stderr, disable=args.json or None) as bar:
            for ev in execute(config, store, token):
                events.append(ev)
                if ev["type"] == "StepDone":
                    bar.update(1)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    out = summary(events)
    if out["status"] == "cancelled":
        raise CliError(f"run {out['run_id']} cancelled; it is stored as cancelled with the steps it finished")
    out["compute"]["eflops"] = eflops_of(out["compute"], flops_per_byte)
    out["flops_per_byte"] = flops_per_byte
    eflops = "eFLOPs not counted" if out["compute"]["eflops"] is None else \
        f"{out['compute']['eflops']:.3g} eFLOPs at {flops_per_byte:.4g} FLOPs/byte"
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        p = out["problem"]
        print(f"run {out['run_id']} ({out['status']}): {p['text']}")
        if "chosen_judge_score" not in (out.get("extras") or {}):  # a text-to-image answer is its prompt
            verdict = "not graded: no expected answer" if out["correct"] is None else \
                f"truth {p['answer']}, {'correct' if out['correct'] else 'wrong'}"
            print(f"answer {out['answer']} ({verdict}), score {out['score']}")
        c = out["compute"]
        if c.get("nfe"):
            x = out.get("extras") or {}
            if "chosen_judge_score" in x:  # text-to-image: the judge scores against its pass mark
                verdict = "not graded (no --judge)" if out["correct"] is None else \
                    f"score {x['chosen_judge_score']:.4g} {'reaches' if out['correct'] else 'is below'} the pass mark " \
                    f"{x.get('judge_pass')}"
            else:
                verdict = "recognised" if out["correct"] else "NOT recognised"
            print(f"judge {x.get('judge')}: {verdict}; search-verifier "
                  f"score of the chosen image {x.get('chosen_verifier_score')}, mean over candidates "
                  f"{x.get('mean_verifier_score')}")
            print(f"compute: {c['nfe']} NFE, {c['model_calls']} model calls, {c['verifier_calls']} verifier calls, "
                  f"{c['flops']:.3g} FLOPs, {eflops}, {c['wall_s']:.2f} s")
        else:
            print(f"compute: {c['prompt_tokens']} prompt + {c['generated_tokens']} generated + "
                  f"{c['verifier_tokens']} verifier tokens, {c['model_calls']} model calls, "
                  f"{c['verifier_calls']} verifier calls, {c['flops']:.3g} FLOPs, {eflops}, {c['wall_s']:.2f} s")
    if out["status"] == "failed":
        raise CliError(f"run {out['run_id']} failed: {out['error']}")
    return 0


def cmd_sweep(args) -> int:
    from engine.limits import Limits
    from engine.run import ConfigError
    from engine.saturation import DEFAULT_GAIN, sweep_saturation
    from engine.sweep import SweepConfig, check_workers, run_sweep, validate
    from strategies.core import eflops_of
    from tqdm import tqdm

    flops_per_byte = _flops_per_byte(args.flops_per_byte)
    gain = DEFAULT_GAIN if args.saturation_gain is None else args.saturation_gain
    if not gain > 0:
        raise CliError(f"--saturation-gain must be a positive number, got {args.saturation_gain}")

    params: dict[str, dict] = {}
    for key, value in _params(args.param).items():
        strategy, dot, name = key.partition(".")
        if not dot:
            raise CliError(f"sweep --param must look like strategy.name=value, got {key!r}")
        params.setdefault(strategy, {})[name] = value
    config = SweepConfig(domain=args.domain, model=args.model, verifier=args.verifier or None,
                         strategies=[s.strip() for s in args.strategies.split(",") if s.strip()],
                         budgets=_int_list(args.budgets, "--budgets"), split=args.split, problems=args.problems,
                         seeds=_int_list(args.seeds, "--seeds"), aggregation=args.aggregation,
                         temperature=args.temperature, params=params, resume=args.resume, judge=args.judge,
                         options=_params(args.option),
                         thinking_budgets=_int_list(args.thinking_budgets, "--thinking-budgets"),
                         samples=_int_list(args.samples, "--samples"))
    try:  # refused before the progress bar is drawn, so a refusal is one line on stderr
        limits = Limits.from_env()
        validate(config, limits)
        check_workers(config, args.workers)
    except ValueError as exc:  # ConfigError, and a bad TTS_MAX_* variable
        raise CliError(str(exc)) from None
    store = _store(args)
    bar = tqdm(total=1, desc="sweep", unit="run", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        result = run_sweep(config, store, progress=progress, limits=limits, workers=args.workers)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    finally:
        bar.close()
    for cell in result["results"]:
        cell["compute"]["eflops"] = eflops_of(cell["compute"], flops_per_byte)
    result["flops_per_byte"] = flops_per_byte
    result["saturation"] = {s: fit.to_dict() for s, fit in sweep_saturation(result, gain=gain).items()}
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(format_table(result))
    return 0


def format_pairs(result: dict) -> list[str]:
    """Parallel against sequential at equal thinking tokens (``engine.thinking``), one line per pair measured."""
    from engine.thinking import equal_token_pairs

    lines = []
    for p in equal_token_pairs(result):
        par, seq = p.to_dict()["parallel"], p.to_dict()["sequential"]
        lines.append(f"{p.strategy} at {p.allowance} thinking tokens per problem: {p.samples} x {p.budget} (vote) "
                     f"{par['accuracy']:.2f}, {par['thinking_tokens'] or 0:.0f} thinking / "
                     f"{par['generated_tokens'] or 0:.0f} generated tokens; 1 x {p.allowance} {seq['accuracy']:.2f}, "
                     f"{seq['thinking_tokens'] or 0:.0f} / {seq['generated_tokens'] or 0:.0f}")
    return lines


def format_table(result: dict) -> str:
    """The sweep as a plain table: accuracy overall and by difficulty, mean tokens (and eFLOPs, where counted)
    per problem (and thinking tokens, on a thinking-budget axis); then each curve's saturation point, where
    ``result`` has them, and parallel against sequential at equal thinking tokens."""
    from engine.saturation import series

    levels = sorted({k for r in result["results"] for k in r["by_difficulty"]})
    thinking = any(r.get("samples") is not None for r in result["results"])
    nfe = any(r["compute"].get("nfe") for r in result["results"])  # image sweeps: NFE and verifier score
    head = f"{'strategy':<20}{'N':>4}{'acc':>7}" + "".join(f"{'L' + k:>7}" for k in levels) + f"{'tokens':>10}" \
        + f"{'eFLOPs':>10}" + (f"{'think':>8}" if thinking else "")
    if nfe:
        head = f"{'strategy':<20}{'N':>4}{'acc':>7}{'vscore':>8}{'NFE':>8}{'vcalls':>8}"
    lines = [head]
    for r in result["results"]:
        if nfe:
            v = r.get("verifier_score")
            lines.append(f"{r['strategy']:<20}{r['budget']:>4}{r['accuracy']:>7.2f}"
                         + (f"{v:>8.3f}" if v is not None else f"{'-':>8}")
                         + f"{r['compute'].get('nfe', 0):>8.0f}{r['compute'].get('verifier_calls', 0):>8.1f}")
            continue
        lines.append(f"{series(r):<20}{r['budget']:>4}{r['accuracy']:>7.2f}"
                     + "".join(f"{r['by_difficulty'].get(k, float('nan')):>7.2f}" for k in levels)
                     + f"{r['compute'].get('tokens', 0):>10.0f}"
                     + (f"{r['compute']['eflops']:>10.3g}" if r["compute"].get("eflops") is not None else f"{'-':>10}")
                     + (f"{r['compute'].get('thinking_tokens', 0):>8.1f}" if thinking else ""))
    oracle = result["oracle"]["pass@k"]
    lines.append("oracle pass@k: " + (", ".join(f"k={k}: {v:.2f}" for k, v in oracle.items() if v is not None)
                                      or str(result["oracle"].get("source"))))
    on_tokens = {series(r) for r in result["results"] if r.get("samples") is not None}  # B*: thinking tokens
    for strategy, fit in (result.get("saturation") or {}).items():
        if fit["status"] != "ok":
            lines.append(f"saturation {strategy}: {fit['message']}")
            continue
        lines.append(f"saturation {strategy}: {'B*' if strategy in on_tokens else 'N*'} = {fit['budget']}{' (extrapolated)' if fit['extrapolated'] else ''}"
                     f" (TTSPM F(N) = {fit['f_max']:.3f}(1-(1-{fit['p']:.3f})^N), rmse {fit['rmse']:.3f}; beyond N* one"
                     f" more unit buys < {fit['gain']:g} accuracy)")
    return "\n".join(lines + format_pairs(result))


def cmd_serve(args) -> int:
    # first: on a ZeroGPU Space the `spaces` package must come before CUDA is touched, and it looks for
    # @spaces.GPU functions when the app launches (engine.zerogpu decorates the run's model work at import)
    from engine import zerogpu  # noqa: F401
    from engine.limits import Limits
    from gateway.server import serve

    store = _store(args)
    try:
        limits = Limits.from_env()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        serve(store, limits, host=args.host, port=args.port)  # the web app, and the OpenAI gateway under /v1
    except ValueError as exc:  # a bad address or images folder: one line, exit 2
        raise CliError(str(exc)) from None
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = build_parser().parse_args(argv)
        if args.verbose:
            logging.getLogger().setLevel(logging.INFO)
        command = args.command or "serve"
        if command in ("run", "sweep"):
            # a model load's progress bar on stderr would come before a one-line error (the sweep's tqdm stays)
            from huggingface_hub.utils import disable_progress_bars
            disable_progress_bars()
        return {"serve": cmd_serve, "models": cmd_models, "run": cmd_run, "sweep": cmd_sweep,
                "download": cmd_download}[command](args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 2


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
