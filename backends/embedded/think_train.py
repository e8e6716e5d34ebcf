"""Train ``tiny-think``: the embedded thinking policy, whose accuracy depends on how long it may think.

Run ``python -m backends.embedded.think_train [--out backends/embedded/models] [--steps N] [--quick]``.

The trace
---------
The prompt is the policies' (``problem.text + "\\n"``); the model writes ``<think>``, a scratchpad, ``</think>``
and then the usual ``arith`` solution lines ending ``The answer is N``::

    <think>
    37 * 6 = 222
    37 * 20 = 740
    222 + 740 = 962
    Wait, 37 * 6 = 222
    962 - 125 = 837
    </think>
    37 * 26 = 962
    962 - 125 = 837
    The answer is 837

* Long-hand where a one-shot model fails: a multiplication by a two-digit ``b = 10 t + u`` is written as its
  two partial products and their sum (``a * u``, ``a * t0``, the sum); the embedded one-shot policies get
  these multiplications wrong (difficulties 4 and 5), and each partial product is a one-digit multiplication
  they get mostly right. Additions, subtractions and one-digit multiplications take one line (a digit-by-digit
  layout with carries would triple the length for operations the model already does well; every digit is a
  token here and sequence length is what costs on a CPU).
* ``Wait,`` re-checks: after a line, with probability ``P_CHECK`` the model writes ``Wait, `` and the line
  again; with probability ``P_SLIP`` the training trace contains a deliberate slip (one digit of the result
  changed) and the re-check that follows gives the right value, which the rest of the trace uses. The slip's
  tokens carry no loss (the model must not learn to make slips, only to fix them). At the end, 0 to 2 more
  re-checks of random earlier lines. So samples of one problem differ in length.
* Cut traces (``P_CUT``): the thinking is cut at a random token (sometimes at zero: no thinking), ``</think>``
  is forced (no loss on it, so the model does not learn to stop early) and the answer lines are the plain
  one-shot solution: after a forced end the model still answers, copying what its partial thought computed
  and computing the rest in one shot, so it answers worse the earlier it is cut.
* Extended traces (``P_EXTEND``): a forced ``Wait, `` (no loss) after the last line, followed by a re-check of
  an earlier line and ``</think>``: an appended ``Wait,`` makes it re-check, not repeat itself.

The model starts from ``tiny-arith-l`` (same architecture, 1.9M parameters): its vocabulary is the base
tokenizer's pieces that the traces actually use plus ``<think>``, ``</think>``, ``Wait`` and ``,``; the kept
pieces keep L's embedding rows, the new ones get fresh rows, so the model is not larger than L. Training
then uses ``train.train_loop`` on fresh train-split problems (``train.ChainStream`` with these rows).
Evaluation on test problems at temperature 0.8: no thinking (``<think>\\n</think>`` given), thinking budgets
(the thought cut at k tokens and ``</think>`` forced, as budget forcing does) and unlimited thinking.
Seeded; ``torch.set_num_threads(2)``.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import asdict, replace

import torch

from backends.embedded import arith
from backends.embedded import train as base

log = logging.getLogger(__name__)

THINK_OPEN, THINK_CLOSE, WAIT = "<think>", "</think>", "Wait, "
MAX_LEN = 384
MAX_NEW = 320
P_CHECK, P_SLIP, P_CUT, P_EXTEND, P_NO_THINK = 0.08, 0.10, 0.25, 0.10, 0.06
SPEC = replace(base.SPECS["l"], steps=2000, batch=32, lr=1e-3, warmup=100, seed=5)
BUDGETS = (0, 8, 16, 32, 64, 128, None)  # thinking tokens; 0 = no thinking, None = unlimited
PROBE_EVERY = 500


# ----------------------------------------------------------------------------------------------------------
# Traces
# ----------------------------------------------------------------------------------------------------------
def think_lines(problem: arith.Problem) -> list[tuple[str, int]]:
    """The scratchpad lines (left-hand side, value), without re-checks."""
    out, v = [], problem.start
    for (sym, b), nv in zip(problem.ops, problem.values):
        if sym == "*" and b >= 10:
            t, u = divmod(b, 10)
            out += [(f"{v} * {u}", v * u), (f"{v} * {t}0", v * t * 10), (f"{v * u} + {v * t * 10}", nv)]
        else:
            out.append((f"{v} {sym} {b}", nv))
        v = nv
    return out


def _slip(value: int, rng: random.Random) -> int:
    digits = list(str(value))
    i = rng.randrange(len(digits))
    digits[i] = rng.choice([d for d in "0123456789" if d != digits[i] and (i or len(digits) == 1 or d != "0")])
    return int("".join(digits))


def trace_segments(problem: arith.Problem, rng: random.Random) -> list[tuple[str, bool]]:
    """One training trace as (text, carries loss) segments, cut on token boundaries."""
    lines = think_lines(problem)
    think: list[tuple[str, bool]] = []
    for lhs, value in lines:
        r = rng.random()
        if r < P_SLIP:
            think += [(f"{lhs} = ", True), (f"{_slip(value, rng)}\n", False), (f"{WAIT}{lhs} = {value}\n", True)]
        else:
            think.append((f"{lhs} = {value}\n", True))
            if r < P_SLIP + P_CHECK:
                think.append((f"{WAIT}{lhs} = {value}\n", True))
    for _ in range(rng.choices((0, 1, 2), weights=(0.6, 0.3, 0.1))[0]):
        lhs, value = rng.choice(lines)
        think.append((f"{WAIT}{lhs} = {value}\n", True))
    answer = [("\n" + problem.solution, True)]
    r = rng.random()
    if r < P_CUT:
        if r < P_NO_THINK:
            think = []
        else:
            think = _cut(think, rng)
        close = ("" if not think or think[-1][0].endswith("\n") else "\n") + THINK_CLOSE
        return [(THINK_OPEN + "\n", True)] + think + [(close, False)] + answer
    if r < P_CUT + P_EXTEND:
        lhs, value = rng.choice(lines)
        think += [(WAIT, False), (f"{lhs} = {value}\n", True)]
    return [(THINK_OPEN + "\n", True)] + think + [(THINK_CLOSE, True)] + answer


_PIECES = re.compile(base.split_pattern((THINK_OPEN, THINK_CLOSE)))


def _cut(think: list[tuple[str, bool]], rng: random.Random) -> list[tuple[str, bool]]:
    """The thought cut after a random number of its tokens (at least one)."""
    pieces = [(p, keep) for text, keep in think for p in _PIECES.findall(text)]
    n = rng.randint(1, max(1, len(pieces) - 1))
    return pieces[:n]


class ThinkStream(base.ChainStream):
    """``ChainStream`` whose rows are thinking traces, with the loss masked where a segment carries none."""

    def rows(self, problems: list[arith.Problem]) -> list[tuple]:
        prompts = self.enc([base.prompt_of(p) for p in problems])
        out = []
        for p, pr in zip(problems, prompts):
            segs = trace_segments(p, self.rng)
            ids, labels = [], []
            for seg_ids, (_, keep) in zip(self.enc([t for t, _ in segs]), segs):
                ids += seg_ids
                labels += seg_ids if keep else [-100] * len(seg_ids)
            out.append((pr, ids + [self.enc.eos_id], labels + [self.enc.eos_id]))
        return out


# ----------------------------------------------------------------------------------------------------------
# Tokenizer and model
# ----------------------------------------------------------------------------------------------------------
def think_vocab() -> list[str]:
    """The base pieces the traces use (scanned over generated traces) plus the thinking words."""
    full = base.tokenizer_vocab(base._WORDS + ("Wait",), base._SYMBOLS + (",",)) + [THINK_OPEN, THINK_CLOSE]
    rng = random.Random(0)
    texts = []
    for i in range(3000):
        p = arith.generate(i, i % 5 + 1)
        texts.append(base.prompt_of(p) + "".join(t for t, _ in trace_segments(p, rng)) + WAIT)
    return base.used_vocab(full, (THINK_OPEN, THINK_CLOSE), texts)


_VOCAB: list[str] | None = None


def build_think_tokenizer():
    global _VOCAB
    if _VOCAB is None:
        _VOCAB = think_vocab()
    return base.build_tokenizer(_VOCAB, (THINK_OPEN, THINK_CLOSE), MAX_LEN)


def init_from_policy(path: str, tok, spec: base.Spec):
    """``tiny-arith-l``'s weights under the thinking vocabulary: shared pieces keep their embedding rows."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    src = base.load_policy(path)
    src_vocab = AutoTokenizer.from_pretrained(path).get_vocab()
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(base.llama_config(spec, tok, MAX_LEN))
    state = {k: v for k, v in src.state_dict().items() if k not in ("model.embed_tokens.weight", "lm_head.weight")}
    old = src.get_input_embeddings().weight.detach()
    emb = model.get_input_embeddings().weight.detach().clone()
    for piece, i in tok.get_vocab().items():
        if piece in src_vocab:
            emb[i] = old[src_vocab[piece]]
    state["model.embed_tokens.weight"] = emb
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k == "lm_head.weight" for k in missing), (missing, unexpected)
    model.tie_weights()
    return model


# ----------------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------------
def close_thought(thought: str) -> str:
    """A thought with ``</think>`` forced, on its own line as in the traces."""
    return thought + ("" if not thought or thought.endswith("\n") else "\n") + THINK_CLOSE


def think_accuracy(model, tok, problems: list[arith.Problem], budget: int | None, temperature: float,
                   seed: int, desc: str = "think") -> dict:
    """Accuracy with the thought capped at ``budget`` tokens (0: no thinking; None: unlimited).

    At the budget the thought is cut and ``</think>`` forced, then the model answers; a thought that ends
    before the budget is kept as it is. Returns accuracy, per difficulty and the mean thinking tokens.
    """
    heads = [base.prompt_of(p) + THINK_OPEN + "\n" for p in problems]
    if budget is None:
        texts = base.sample_solutions(model, tok, heads, temperature, seed, max_new_tokens=MAX_NEW, desc=desc)
        thoughts = [t.split(THINK_CLOSE)[0] for t in texts]
    else:
        if budget:
            first = base.sample_solutions(model, tok, heads, temperature, seed, max_new_tokens=budget, desc=desc)
            thoughts = [t.split(THINK_CLOSE)[0] for t in first]
        else:
            thoughts = [""] * len(problems)
        closed = [h + close_thought(t) for h, t in zip(heads, thoughts)]
        ans = base.sample_solutions(model, tok, closed, temperature, seed + 1, max_new_tokens=MAX_NEW - budget,
                                    desc=desc)
        texts = [close_thought(t) + a for t, a in zip(thoughts, ans)]
    answers = [arith.extract_answer(t.split(THINK_CLOSE, 1)[1]) if THINK_CLOSE in t else None for t in texts]
    ok = [arith.is_correct(p, a) for p, a in zip(problems, answers)]
    enc = base.Encoder(tok)
    n_think = [len(ids) for ids in enc(thoughts)]
    return {"acc": sum(ok) / len(ok), "per": base.per_difficulty(problems, ok),
            "think_tokens": sum(n_think) / len(n_think), "texts": texts}


def budget_table(path: str, n: int, seeds: tuple[int, ...]) -> int:
    """Accuracy at each thinking budget on ``n`` test problems, averaged over ``seeds``, overall and by difficulty."""
    from transformers import AutoTokenizer

    model, tok = base.load_policy(path), AutoTokenizer.from_pretrained(path)
    problems = base.test_problems(n)
    print(f"tiny-think, {n} test problems x seeds {seeds}, T=0.8 (mean over seeds)")
    for b in BUDGETS:
        rs = [think_accuracy(model, tok, problems, b, 0.8, seed=s, desc=_budget_name(b)) for s in seeds]
        per = {d: sum(r["per"][d] for r in rs) / len(rs) for d in rs[0]["per"]}
        each = " / ".join(f"{100 * r['acc']:.1f}" for r in rs)
        print(f"{_budget_name(b):<12} {100 * sum(r['acc'] for r in rs) / len(rs):5.1f}%  (seeds {each})  "
              f"thinking {sum(r['think_tokens'] for r in rs) / len(rs):6.1f} tok   {base._fmt(per)}", flush=True)
    return 0


def _budget_name(b: int | None) -> str:
    return "unlimited" if b is None else ("no thinking" if b == 0 else f"budget {b}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=base.DEFAULT_OUT)
    ap.add_argument("--steps", type=int, help=f"training steps (default {SPEC.steps}; 8 with --quick)")
    ap.add_argument("--n-eval", type=int, help="test problems (default 500; 20 with --quick)")
    ap.add_argument("--probe-every", type=int, default=PROBE_EVERY, help="dev probe period in steps (0: none)")
    ap.add_argument("--quick", action="store_true", help="into a temp dir, few steps unless given (smoke test)")
    ap.add_argument("--table", action="store_true",
                    help="no training: the accuracy-vs-thinking-budget table of the saved model (seeds 7 and 8)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    torch.set_num_threads(2)
    random.seed(0)
    src = os.path.join(args.out, "tiny-arith-l")
    if not os.path.isdir(src):
        print(f"tiny-think starts from tiny-arith-l, which is not in {args.out}", file=sys.stderr)
        return 2
    out = os.path.join(tempfile.mkdtemp(prefix="think-quick-") if args.quick else args.out, "tiny-think")
    if args.table:
        return budget_table(os.path.join(args.out, "tiny-think"), args.n_eval or 200, (7, 8))
    steps = args.steps or (8 if args.quick else SPEC.steps)
    n_eval = args.n_eval or (20 if args.quick else 500)
    spec = replace(SPEC, steps=steps)
    tok = build_think_tokenizer()
    model = init_from_policy(src, tok, spec)
    log.info("tiny-think: %d parameters, vocabulary %d, %s, from tiny-arith-l", base.n_params(model), len(tok),
             asdict(spec))
    dev = [arith.problem_at("dev", i) for i in range(100)]

    def probe(m) -> str:
        with torch.random.fork_rng():
            r = [think_accuracy(m, tok, dev, b, 0.8, seed=3, desc="probe") for b in (0, None)]
        return f"dev T=0.8: no thinking {100 * r[0]['acc']:.0f}%, unlimited {100 * r[1]['acc']:.0f}%"

    t0 = time.time()
    stream = ThinkStream(base.Encoder(tok), seed=spec.seed, batch_size=spec.batch, max_len=MAX_LEN)
    base.train_loop(model, stream, steps, spec, "train think", probe, args.probe_every)
    t_train = time.time() - t0
    base.save_model(model, tok, out, build_think_tokenizer, max_new_tokens=MAX_NEW)
    t0 = time.time()
    problems = base.test_problems(n_eval)
    lines = ["", "=" * 78, f"RESULTS tiny-think, {n_eval} test problems, T=0.8", "=" * 78,
             f"parameters {base.n_params(model):,d}; {steps} steps of {spec.batch}; train {t_train / 60:.1f} min"]
    for b in BUDGETS:
        r = think_accuracy(model, tok, problems, b, 0.8, seed=7, desc=_budget_name(b))
        lines.append(f"{_budget_name(b):<12} {100 * r['acc']:5.1f}%  thinking {r['think_tokens']:6.1f} tok   "
                     f"{base._fmt(r['per'])}")
        log.info(lines[-1])
    lines.append(f"eval {(time.time() - t0) / 60:.1f} min; model in {out}")
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
