"""Train ``tiny-critic``: the embedded generative verifier, which checks each step of a solution and votes.

Run ``python -m backends.embedded.critic_train [--out backends/embedded/models] [--steps N] [--quick]``;
``--table`` prints the held-out verdict accuracy against the number of critiques voted, ``--bon P`` best-of-16
on P test problems picked by the critic, tiny-prm, the oracle and the selection rules; neither trains.

The critique
------------
The critic reads ``arith.critic_prompt`` (the problem, a full or partial solution one step a line, ``Check:``)
and writes ``arith.critique_of``'s form, the oracle's own: one check line per step up to the first wrong one
and a verdict::

    1: 57 * 15 = 855 ok
    2: 855 - 257 = 589 wrong, 855 - 257 = 598
    Verdict: step 2 wrong

Data (the policies' OWN mistakes)
---------------------------------
Solutions sampled at temperature 0.8 on train-split problems from ``tiny-arith-s``, ``tiny-arith-l`` and
``tiny-think`` (its answer lines after ``</think>``, the part the app's critic checks), each used whole and cut
after a random number of its steps (partial solutions: what a search critiques mid-way), labelled by
``arith.critique_of``, so every wrong step it learns to flag is one a policy really wrote. Rows are balanced
between verdict ``correct`` and verdict ``wrong`` by dropping the surplus of the larger side at random.

Model and training
------------------
``tiny-prm``'s weights (L's architecture, the verifier that knows the arithmetic best) under the critic's
vocabulary: the base pieces the critic's texts use plus the critique's words (``train.used_vocab``), shared
pieces keep their rows (``think_train.init_from_policy``), so it is no larger than ``tiny-arith-l``. The loss is
on the critique and its EOS only. A fixed labelled set, shuffled epochs, length-bucketed (``train.PRMStream``
with token-id labels). Seeded; ``torch.set_num_threads(2)``.

Evaluation (``--table``): held-out solutions of test-split problems sampled the same way (S, L and tiny-think
at T=0.8, whole and cut), 16 critiques each at the critic's temperature through the app's ``GenerativeCritic``;
verdict accuracy of one critique and of the majority of the first k = 2, 4, 8, 16 (a tie counts as wrong:
the ``majority`` vote rule of ``backends.text.critic``).
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict, replace

import torch

from backends.embedded import arith
from backends.embedded import think_train
from backends.embedded import train as base

log = logging.getLogger(__name__)

MAX_NEW = 160  # the longest critique: six check lines of two five-digit steps and the verdict fit
SPEC = replace(base.SPECS["l"], steps=700, batch=32, lr=1e-3, warmup=50, seed=6)
SAMPLE_TEMPERATURE = 0.8
CRITIC_TEMPERATURE = 0.8
# (problems, samples per problem) of each policy's train-split data; tiny-think's traces are the longest to sample.
DATA_SIZES = {"tiny-arith-s": (1200, 2), "tiny-arith-l": (800, 2), "tiny-think": (500, 1)}
QUICK_SIZES = {"tiny-arith-s": (8, 2), "tiny-arith-l": (4, 2), "tiny-think": (4, 1)}
# ``--more``: the saved critic trained on, on fresh samples (attempt 2 of CRITIC_TRAINING_LOG.txt)
MORE_SIZES = {"tiny-arith-s": (800, 2), "tiny-arith-l": (500, 2), "tiny-think": (120, 1)}
MORE_STEPS = 350
EVAL_SIZES = {"tiny-arith-s": (25, 1), "tiny-arith-l": (25, 1), "tiny-think": (25, 1)}
KS = (1, 2, 4, 8, 16)
_WORDS = base._WORDS + ("Check", "ok", "wrong", "Verdict", "correct", "step", "nothing", "more")
_SYMBOLS = base._SYMBOLS + (":", ",")

Item = tuple[arith.Problem, list[str]]


# ----------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------
def sample_items(paths: dict[str, str], problems_of, sizes: dict[str, tuple[int, int]], seed: int) -> list[Item]:
    """Each policy's T=0.8 solutions to its problems (``problems_of(name, n)``), whole and cut after a random
    number of steps; tiny-think contributes the answer lines after its thought."""
    from transformers import AutoTokenizer

    rng = random.Random(seed)
    items: list[Item] = []
    for name, (n_problems, per) in sizes.items():
        model, tok = base.load_policy(paths[name]), AutoTokenizer.from_pretrained(paths[name])
        problems = [p for p in problems_of(name, n_problems) for _ in range(per)]
        think = name == "tiny-think"
        heads = [base.prompt_of(p) + (think_train.THINK_OPEN + "\n" if think else "") for p in problems]
        texts = base.sample_solutions(model, tok, heads, SAMPLE_TEMPERATURE, seed=seed,
                                      max_new_tokens=think_train.MAX_NEW if think else 96, desc=f"sample {name}")
        n0 = len(items)
        for p, text in zip(problems, texts):
            if think:
                if think_train.THINK_CLOSE not in text:
                    continue
                text = text.split(think_train.THINK_CLOSE, 1)[1]
            steps = arith.split_steps(text)
            if not steps:
                continue
            items.append((p, steps))
            if len(steps) > 1:
                items.append((p, steps[:rng.randint(1, len(steps) - 1)]))
        log.info("%s: %d samples -> %d items", name, len(texts), len(items) - n0)
    return items


def balance(items: list[Item], seed: int) -> list[Item]:
    """As many items with verdict ``correct`` as with a wrong step (the surplus side subsampled)."""
    rng = random.Random(seed)
    right = [it for it in items if arith.critique_of(*it)[1] is None]
    wrong = [it for it in items if arith.critique_of(*it)[1] is not None]
    n = min(len(right), len(wrong))
    out = rng.sample(right, n) + rng.sample(wrong, n)
    rng.shuffle(out)
    log.info("balanced: %d correct + %d wrong of %d items", n, n, len(items))
    return out


def critic_rows(enc: base.Encoder, items: list[Item]) -> list[tuple[list[int], dict[int, int]]]:
    """(ids, {position: target id}) rows for ``train.PRMStream``: the loss on the critique and its EOS only."""
    prompts = enc([arith.critic_prompt(p.text, steps) for p, steps in items])
    targets = enc([arith.critique_of(p, steps)[0] for p, steps in items])
    rows = []
    for pr, tg in zip(prompts, targets):
        ids = (pr + tg + [enc.eos_id])[:think_train.MAX_LEN]
        rows.append((ids, {i: ids[i] for i in range(len(pr), len(ids))}))
    return rows


# ----------------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------------
def _scan_texts() -> list[str]:
    """Critic inputs and critiques over generated chains, whole, cut, with a wrong step and with one too many."""
    rng = random.Random(0)
    texts = []
    for i in range(3000):
        p = arith.generate(i, i % 5 + 1)
        steps = list(p.steps)
        j = rng.randrange(len(steps))
        bad = steps[:j] + [steps[j] + "1"] + steps[j + 1:]
        for s in (steps, steps[:j + 1], bad, steps + [steps[-1]]):
            texts.append(arith.critic_prompt(p.text, s) + arith.critique_of(p, s)[0])
    return texts


_VOCAB: list[str] | None = None


def build_critic_tokenizer():
    global _VOCAB
    if _VOCAB is None:
        _VOCAB = base.used_vocab(base.tokenizer_vocab(_WORDS, _SYMBOLS), (), _scan_texts())
    return base.build_tokenizer(_VOCAB, (), think_train.MAX_LEN)


# ----------------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------------
def verdict_table(critic_path: str, models_dir: str, seed: int = 21) -> list[str]:
    """Verdict accuracy of the first k of 16 critiques voted, on held-out test-split samples."""
    from backends.text.critic import GenerativeCritic, vote

    items = sample_items(_policy_paths(models_dir), lambda name, n: base.test_problems(n), EVAL_SIZES, seed)
    critic = GenerativeCritic(critic_path, name="tiny-critic", device="cpu")
    truth = [arith.critique_of(p, steps)[1] for p, steps in items]
    crits = []
    t0 = time.time()
    i = 0
    while i < len(items):  # one call per problem, as the app calls it (a problem's items are consecutive)
        j = i
        while j < len(items) and items[j][0] == items[i][0]:
            j += 1
        p = items[i][0]
        cs, _ = critic.critique(p, base.prompt_of(p), [steps for _, steps in items[i:j]], max(KS),
                                temperature=CRITIC_TEMPERATURE, seed=seed)
        crits += cs
        i = j
    n_right = sum(t is None for t in truth)
    lines = [f"tiny-critic verdict accuracy, {len(items)} held-out solutions of test problems "
             f"({n_right} correct, {len(items) - n_right} wrong; S, L and tiny-think at T=0.8, whole and cut), "
             f"critiques at T={CRITIC_TEMPERATURE}, majority vote (a tie counts as wrong); "
             f"{(time.time() - t0) / 60:.1f} min",
             f"{'k':>3}  {'verdict acc':>11}  {'on correct':>10}  {'on wrong':>8}  {'first wrong step':>16}  parsed"]
    for k in KS:
        ok, step_ok = [], []
        for t, cs in zip(truth, crits):
            says_right = vote(cs[:k], "majority") >= 0.5
            ok.append(says_right == (t is None))
            if t is not None:
                firsts = [c.verdict for c in cs[:k] if c.verdict is not None]
                step_ok.append(bool(firsts) and max(set(firsts), key=firsts.count) == t)
        on_r = [o for o, t in zip(ok, truth) if t is None]
        on_w = [o for o, t in zip(ok, truth) if t is not None]
        parsed = sum(c.parsed for cs in crits for c in cs[:k]) / (k * len(crits))
        lines.append(f"{k:>3}  {100 * sum(ok) / len(ok):10.1f}%  {100 * sum(on_r) / max(1, len(on_r)):9.1f}%  "
                     f"{100 * sum(on_w) / max(1, len(on_w)):7.1f}%  {100 * sum(step_ok) / max(1, len(step_ok)):15.1f}%"
                     f"  {100 * parsed:5.1f}%")
    return lines


def bon_table(models_dir: str, n_problems: int, seeds: tuple[int, ...], n: int = 16) -> list[str]:
    """Best-of-``n`` on tiny-arith-s's T=0.8 samples of test problems, picked by the critic at k = 1, 4, 16 (the
    first k of 16 critiques per candidate, voted by share), by tiny-prm ("last" aggregation) and by the oracle
    (pass@n); then the selection rules over the same candidates and critiques (equal compute): best score,
    summed score per answer, Heimdall's pessimistic bound, and majority vote (no verifier). Everything through
    the app's own code: ``GenerativeCritic``, ``LikelihoodPRM``, ``strategies.common``, ``strategies.pessimistic``."""
    from transformers import AutoTokenizer

    from backends.text.critic import GenerativeCritic, vote
    from backends.text.prm_families import LikelihoodPRM
    from strategies.common import best_scored, weighted_vote
    from strategies.core import Node
    from strategies.pessimistic import pessimistic_pick

    class Answers:  # what the selection rules need of a search space: the answer of a candidate
        @staticmethod
        def extract(node: Node) -> str | None:
            return node.answer

    s_path = os.path.join(models_dir, "tiny-arith-s")
    policy, tok = base.load_policy(s_path), AutoTokenizer.from_pretrained(s_path)
    critic = GenerativeCritic(os.path.join(models_dir, "tiny-critic"), name="tiny-critic", device="cpu")
    prm = LikelihoodPRM(os.path.join(models_dir, "tiny-prm"), name="tiny-prm", device="cpu", batch_size=64)
    problems = base.test_problems(n_problems)
    rules = ["critic k=1", "critic k=4", "critic k=16", "tiny-prm", "oracle pass@16",
             "k=4 best score", "k=4 summed", "k=4 pessimistic a=0.1", "k=4 pessimistic a=1", "k=16 pessimistic a=1",
             "majority vote"]
    hits: dict[str, list[bool]] = {r: [] for r in rules}
    t0 = time.time()
    for seed in seeds:
        texts = base.sample_solutions(policy, tok, [base.prompt_of(p) for p in problems for _ in range(n)],
                                      SAMPLE_TEMPERATURE, seed=seed, desc=f"bon samples seed {seed}")
        for i, p in enumerate(problems):
            steps = [arith.split_steps(t) or [""] for t in texts[i * n:(i + 1) * n]]
            nodes = [Node(id=f"c{j}", parent=None, depth=1, preview="", finished=True,
                          answer=arith.extract_answer("\n".join(st)), payload=tuple(st)) for j, st in enumerate(steps)]
            ok = {nd.id: arith.is_correct(p, nd.answer) for nd in nodes}
            crits, _ = critic.critique(p, base.prompt_of(p), steps, 16, temperature=CRITIC_TEMPERATURE, seed=seed)
            prm_scores, _ = prm.score_steps(p, base.prompt_of(p), steps)
            by = {f"critic k={k}": {nd.id: vote(cs[:k], "share") for nd, cs in zip(nodes, crits)} for k in (1, 4, 16)}
            by["tiny-prm"] = {nd.id: sc[-1] for nd, sc in zip(nodes, prm_scores)}
            for name in ("critic k=1", "critic k=4", "critic k=16", "tiny-prm"):
                hits[name].append(ok[best_scored(nodes, by[name]).id])
            hits["oracle pass@16"].append(any(ok.values()))
            k4, k16 = by["critic k=4"], by["critic k=16"]
            hits["k=4 best score"].append(ok[best_scored(nodes, k4).id])
            hits["k=4 summed"].append(ok[weighted_vote(Answers, nodes, k4).id])
            for name, sc, k, a in (("k=4 pessimistic a=0.1", k4, 4, 0.1), ("k=4 pessimistic a=1", k4, 4, 1.0),
                                   ("k=16 pessimistic a=1", k16, 16, 1.0)):
                hits[name].append(ok[pessimistic_pick(Answers, nodes, sc, {nd.id: k for nd in nodes}, a).id])
            hits["majority vote"].append(ok[weighted_vote(Answers, nodes, None).id])
    lines = [f"best-of-{n} on tiny-arith-s (T={SAMPLE_TEMPERATURE}), {n_problems} test problems x seeds {seeds}; "
             f"critiques at T={CRITIC_TEMPERATURE}; {(time.time() - t0) / 60:.1f} min"]
    for name in rules:
        per = base.per_difficulty([p for _ in seeds for p in problems], hits[name])
        lines.append(f"{name:<22} {100 * sum(hits[name]) / len(hits[name]):5.1f}%   {base._fmt(per)}")
    return lines


def _policy_paths(models_dir: str) -> dict[str, str]:
    return {name: os.path.join(models_dir, name) for name in DATA_SIZES}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=base.DEFAULT_OUT)
    ap.add_argument("--steps", type=int, help=f"training steps (default {SPEC.steps}; 8 with --quick)")
    ap.add_argument("--quick", action="store_true", help="into a temp dir, few steps and items (smoke test)")
    ap.add_argument("--table", action="store_true", help="no training: the verdict-accuracy-vs-k table of the saved "
                                                         "critic on held-out samples")
    ap.add_argument("--more", action="store_true",
                    help="train the saved tiny-critic on (fresh samples, seed + 1, MORE_SIZES, MORE_STEPS steps)")
    ap.add_argument("--bon", type=int, default=0, metavar="PROBLEMS",
                    help="no training: best-of-16 on tiny-arith-s picked by the critic, tiny-prm and the oracle, and the "
                         "selection rules, on this many test problems")
    ap.add_argument("--bon-seeds", default="0,1", help="comma-separated sampling seeds of --bon")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    torch.set_num_threads(2)
    random.seed(0)
    paths = _policy_paths(args.out)
    missing = [n for n in [*paths, "tiny-prm"] if not os.path.isdir(os.path.join(args.out, n))]
    if missing:
        print(f"tiny-critic needs {', '.join(missing)} in {args.out}", file=sys.stderr)
        return 2
    if args.table:
        print("\n".join(verdict_table(os.path.join(args.out, "tiny-critic"), args.out)), flush=True)
        return 0
    if args.bon:
        seeds = tuple(int(x) for x in args.bon_seeds.split(",") if x.strip())
        print("\n".join(bon_table(args.out, args.bon, seeds)), flush=True)
        return 0
    out = os.path.join(tempfile.mkdtemp(prefix="critic-quick-") if args.quick else args.out, "tiny-critic")
    spec = replace(SPEC, steps=args.steps or (8 if args.quick else MORE_STEPS if args.more else SPEC.steps),
                   seed=SPEC.seed + int(args.more))
    t0 = time.time()
    rng = random.Random(spec.seed)

    def train_problems(name: str, n: int) -> list[arith.Problem]:
        return [arith.generate(rng.randrange(arith.SPLITS["train"], arith.SPLITS["dev"])) for _ in range(n)]

    sizes = QUICK_SIZES if args.quick else MORE_SIZES if args.more else DATA_SIZES
    items = balance(sample_items(paths, train_problems, sizes, spec.seed), spec.seed)
    t_data = time.time() - t0
    tok = build_critic_tokenizer()
    if args.more:
        model = base.load_policy(os.path.join(args.out, "tiny-critic"))
    else:
        model = think_train.init_from_policy(os.path.join(args.out, "tiny-prm"), tok, spec)
    log.info("tiny-critic: %d parameters, vocabulary %d, %s, from %s", base.n_params(model), len(tok),
             asdict(spec), "the saved tiny-critic" if args.more else "tiny-prm")
    enc = base.Encoder(tok)
    t0 = time.time()
    torch.manual_seed(spec.seed)
    stream = base.PRMStream(critic_rows(enc, items), enc.pad_id, spec.batch, seed=spec.seed)
    base.train_loop(model, stream, spec.steps, spec, "train critic")
    t_train = time.time() - t0
    base.save_model(model, tok, out, build_critic_tokenizer, max_new_tokens=MAX_NEW)
    print(f"tiny-critic: {base.n_params(model):,d} parameters; {len(items)} rows; data {t_data / 60:.1f} min; "
          f"{spec.steps} steps of {spec.batch}; train {t_train / 60:.1f} min; saved in {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
