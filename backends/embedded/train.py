"""Train the embedded models from scratch: two policies (tiny-arith-s, tiny-arith-l) and a PRM (tiny-prm).

Run ``python -m backends.embedded.train [--out backends/embedded/models] [--only s,l,prm] [--quick]``.

What it trains
--------------
* One shared tokenizer, built (not learned) on the task's alphabet: a ``tokenizers`` WordLevel model whose
  pre-tokenizer isolates every digit, every newline and every word or symbol together with at most one
  space on each side ("Multiply ", " = ", ". "), so digits are single tokens, "\\n" is its own token, the
  task's text round-trips exactly through ``decode(encode(x))`` and sequences stay short (merging the
  spaces into the word tokens takes about a quarter of the tokens off). Special tokens ``<pad>``, ``<eos>``
  and ``<unk>``; no BOS (every prompt begins with the same "Start " token anyway).
* ``tiny-arith-s`` and ``tiny-arith-l``: ``LlamaForCausalLM`` policies trained on
  ``problem.text + "\\n" + problem.solution + <eos>`` with the loss on the solution and the EOS only. The
  prompt at inference is exactly ``problem.text + "\\n"``. Data are unlimited: fresh train-split problems
  (seeds 0..9,999,999, difficulty drawn uniformly from 1..5) are generated on the fly, sorted by length
  inside pools of batches to cut padding. AdamW, linear warmup then cosine decay to a tenth, gradient
  clipping at 1. L has 4.3 times the parameters of S and gets more steps (3,000 against 2,200;
  each of its steps costs about four of S's on a CPU).
* ``tiny-prm``: a generative PRM (``LlamaForCausalLM``, the ``likelihood`` family of
  ``backends.text.prm_families``) whose input is ``problem.text + "\\n" + "\\n".join(steps) + "\\n"``; its score after
  step i is the probability it gives steps 1..i with their delimiters, a product of token probabilities.
  It starts from the trained L policy, is trained on as the policies are for ``SPECS["prm"].steps`` more
  steps of fresh chains (its task training: a generative verifier checks a step no better than it could
  compute it, so the PRM must know the arithmetic better than the L policy for search with S to reach L),
  then is fine-tuned (``PRM_TUNE``) with likelihood on the tokens of correct prefixes and unlikelihood,
  -log(1 - p), on the first wrong token of each sampled solution (``prm_loss``).
  Why not a token-classification head read at the delimiters (the first design, kept in TRAINING_LOG.txt):
  it reached a pooled step AUROC of 0.93 but a within-problem AUROC of 0.53; it had learned which problems
  are hard, not which steps are wrong, and picked worse than chance among a problem's samples. Checking
  "14 * 3 = 32" needs the product computed where the 3 is read, and in L that computation fills all six
  layers at the position before the digit, leaving no layer to compare and carry the verdict to the
  delimiter; dense per-token labels, balanced per-problem data and two extra frozen-backbone layers did
  not get the head past 0.56 within-problem in 300-400 steps. Read as a likelihood, the same backbone
  checks each digit where it is predicted: untrained, L's own probabilities already rank a problem's
  samples at 0.93 within-problem AUROC, and the fine-tuning adds the trailing delimiter, calibrates the
  errors the policies make and lifts the step AUROC to above 0.99.

Labels for the PRM
------------------
The PRM is trained on the policies' OWN samples: solutions sampled from S and L at temperatures 0.7 to
1.0 on train-split problems, split with ``arith.split_steps`` and labelled with ``arith.step_labels``,
plus the ground-truth solutions. ``step_labels`` is the exact check with first-error semantics: a step
is correct while it and every step before it equal the canonical chain. On this task the exact check
replaces Math-Shepherd's Monte-Carlo rollouts: Math-Shepherd estimates whether a step can still reach the
right answer by completing it N times with the policy, a noisy and costly proxy needed when steps cannot
be verified; here every step can be verified exactly for free, and after a wrong step no continuation
of the canonical chain exists anyway (the chain's running value is already wrong), so the exact label
is what rollouts would approximate, without their noise.

Evaluation (printed at the end, test split, difficulties cycle 1..5): greedy accuracy of S and L overall
and per difficulty, oracle pass@16 of S at temperature 0.8 (any of 16 correct), and, on S's own
temperature-0.8 samples of test problems (the same samples as pass@16), scored through the app's own
``LikelihoodPRM``: the PRM's step-level AUROC, its within-problem AUROC of the final score and the accuracy of
S's best-of-16 picked by it.

Everything is seeded (``torch.manual_seed``, ``random.Random``) and runs on ``torch.set_num_threads(2)``.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace

import torch
from tqdm.auto import tqdm

from backends.embedded import arith

log = logging.getLogger(__name__)

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
NEWLINE = "\n"
_WORDS = ("Start", "with", "Add", "Subtract", "Multiply", "by", "The", "answer", "is")
_SYMBOLS = (".", "+", "-", "*", "=")
# A word or symbol with at most one space each side, a single digit, a newline, any other single whitespace.
_SPLIT_PATTERN = r" ?[A-Za-z]+ ?| ?[^\sA-Za-z0-9] ?|[0-9]|\n|\s"
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
MAX_LEN = 192


# ----------------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------------
def tokenizer_vocab(words: tuple[str, ...] = _WORDS, symbols: tuple[str, ...] = _SYMBOLS) -> list[str]:
    vocab = [PAD, EOS, UNK, NEWLINE, " "] + [str(d) for d in range(10)]
    for piece in words + symbols:
        vocab += [piece, " " + piece, piece + " ", " " + piece + " "]
    return vocab


def split_pattern(delimiters: tuple[str, ...] = ()) -> str:
    """The pre-tokenizer's regex: every match is one token (``re.findall`` with it gives a text's pieces)."""
    return "|".join([re.escape(d) for d in delimiters] + [_SPLIT_PATTERN])


def build_tokenizer(vocab_list: list[str] | None = None, delimiters: tuple[str, ...] = (), max_len: int = MAX_LEN):
    """The shared tokenizer as a ``PreTrainedTokenizerFast``.

    ``vocab_list`` (default ``tokenizer_vocab()``) and ``delimiters`` (whole tokens matched before the word
    pattern, such as ``<think>``; they must be in the vocabulary) let another model (``think_train``) extend it.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(vocab_list or tokenizer_vocab())}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(split_pattern(delimiters)), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens([PAD, EOS, UNK])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                  model_max_length=max_len, clean_up_tokenization_spaces=False)
    return tok


def used_vocab(full: list[str], delimiters: tuple[str, ...], texts: list[str]) -> list[str]:
    """``full``'s special, newline, space and digit pieces plus those of its other pieces that ``texts`` use: a
    derived model's vocabulary (tiny-think, tiny-critic) stays as small as what it reads and writes."""
    tok = build_tokenizer(full, delimiters)
    used: set[str] = set()
    for text in texts:
        used.update(tok.backend_tokenizer.encode(text, add_special_tokens=False).tokens)
    return full[:15] + [t for t in full[15:] if t in used]


class Encoder:
    """Fast plain encoding (no special tokens) through the backend tokenizer."""

    def __init__(self, tok) -> None:
        from tokenizers import Tokenizer

        self.tok = tok
        # A private copy: calling ``tok(..., padding=True)`` (as sampling does) turns padding on in the shared
        # backend, which would silently pad every later encode_batch.
        self.backend = Tokenizer.from_str(tok.backend_tokenizer.to_str())
        self.backend.no_padding()
        self.backend.no_truncation()
        self.pad_id, self.eos_id = tok.pad_token_id, tok.eos_token_id
        self.nl_id = tok.convert_tokens_to_ids(NEWLINE)

    def __call__(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.backend.encode_batch(texts, add_special_tokens=False)]


# ----------------------------------------------------------------------------------------------------------
# Policy data
# ----------------------------------------------------------------------------------------------------------
def prompt_of(problem: arith.Problem) -> str:
    return problem.text + NEWLINE


class ChainStream:
    """Endless batches of fresh train-split chains, length-bucketed inside pools of ``pool`` batches."""

    def __init__(self, enc: Encoder, seed: int, batch_size: int, pool: int = 32,
                 weights: tuple[float, ...] | None = None, max_len: int = MAX_LEN) -> None:
        self.enc, self.rng, self.batch_size, self.pool = enc, random.Random(seed), batch_size, pool
        self.weights, self.max_len = weights, max_len

    def _problem(self) -> arith.Problem:
        seed = self.rng.randrange(arith.SPLITS["train"], arith.SPLITS["dev"])
        if self.weights is None:
            return arith.generate(seed)
        return arith.generate(seed, self.rng.choices(range(1, 6), weights=self.weights)[0])

    def rows(self, problems: list[arith.Problem]) -> list[tuple]:
        """Training rows for ``collate_lm``; another trace format (``think_train``) overrides this."""
        prompts = self.enc([prompt_of(p) for p in problems])
        sols = self.enc([p.solution for p in problems])
        return [(pr, so + [self.enc.eos_id]) for pr, so in zip(prompts, sols)]

    def __iter__(self):
        while True:
            rows = self.rows([self._problem() for _ in range(self.batch_size * self.pool)])
            rows.sort(key=lambda r: len(r[0]) + len(r[1]))
            batches = [rows[i:i + self.batch_size] for i in range(0, len(rows), self.batch_size)]
            self.rng.shuffle(batches)
            for batch in batches:
                yield collate_lm(batch, self.enc.pad_id, self.max_len)


def collate_lm(rows: list[tuple], pad_id: int, max_len: int = MAX_LEN) -> dict[str, torch.Tensor]:
    """Rows of (prompt ids, target ids) or (prompt ids, target ids, target labels with -100 where no loss)."""
    width = min(max_len, max(len(r[0]) + len(r[1]) for r in rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        p, s = row[0], row[1]
        seq = (p + s)[:width]
        ids[i, :len(seq)] = torch.tensor(seq)
        mask[i, :len(seq)] = 1
        lab = ([-100] * len(p) + list(row[2] if len(row) > 2 else s))[:width]
        labels[i, :len(lab)] = torch.tensor(lab)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# ----------------------------------------------------------------------------------------------------------
# Models and training
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Schedule:
    steps: int
    batch: int
    lr: float
    warmup: int
    seed: int


@dataclass
class Spec(Schedule):
    hidden: int
    layers: int
    heads: int
    inter: int
    init: float = 0.02  # initializer_range (std of the normal init)
    weights: tuple[float, ...] | None = None  # training mix over difficulties 1..5; None = uniform


# The wide init (std 0.08, not Llama's 0.02) is what lets these tiny models learn the carries at all: with
# 0.02 the loss falls just as low on the copied tokens but greedy accuracy stays near 5% (TRAINING_LOG.txt).
_L = Spec(hidden=160, layers=6, heads=5, inter=448, steps=3000, batch=64, lr=2e-3, warmup=100, seed=2, init=0.06)
SPECS = {
    "s": Spec(hidden=96, layers=4, heads=4, inter=256, steps=2200, batch=64, lr=3e-3, warmup=100, seed=1, init=0.08),
    "l": _L,
    # The PRM's task training: L's architecture and weights, trained on as many more fresh chains as L saw in
    # its last two thirds, so the verifier knows the arithmetic better than the L policy (TRAINING_LOG.txt).
    "prm": replace(_L, steps=2000, lr=1e-3, warmup=50, seed=3),
}
# Then the PRM fine-tuning (likelihood + unlikelihood on labelled samples; the loss is below 0.02 after ~200 steps).
PRM_TUNE = Schedule(steps=200, batch=64, lr=5e-4, warmup=25, seed=3)
QUICK_STEPS = {"s": 12, "l": 8, "prm": 8}
PROBE_EVERY = 500  # learning-curve probe of the policies (greedy on dev problems)


def llama_config(spec: Spec, tok, max_len: int = MAX_LEN, **extra):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tok), hidden_size=spec.hidden, num_hidden_layers=spec.layers,
                       num_attention_heads=spec.heads, num_key_value_heads=spec.heads,
                       intermediate_size=spec.inter, max_position_embeddings=max_len, rope_theta=10000.0,
                       tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                       bos_token_id=None, initializer_range=spec.init, **extra)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def make_optimizer(model, spec: Spec, steps: int):
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=spec.lr, betas=(0.9, 0.98), eps=1e-8)
    warmup = min(spec.warmup, max(1, steps // 10))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_loop(model, batches, steps: int, spec: Spec, desc: str, probe=None, probe_every: int = 0,
               loss_fn=None) -> list[float]:
    """Generic AdamW loop over an iterator of model-input dicts; returns the loss curve.

    ``loss_fn(model, batch)`` defaults to the model's own loss (``model(**batch).loss``).

    ``probe(model)`` (if given) runs every ``probe_every`` steps and logs a learning-curve line; it must not
    touch torch's global RNG, so the trajectory is the same with or without it.
    """
    model.train()
    opt, sched = make_optimizer(model, spec, steps)
    losses, window = [], []
    bar = tqdm(range(steps), desc=desc, mininterval=5.0, file=sys.stderr)
    it = iter(batches)
    for step in bar:
        batch = next(it)
        loss = model(**batch).loss if loss_fn is None else loss_fn(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        window.append(loss.item())
        if len(window) == 50 or step == steps - 1:
            avg = sum(window) / len(window)
            losses.append(avg)
            bar.set_postfix(loss=f"{avg:.4f}", lr=f"{sched.get_last_lr()[0]:.2e}")
            if len(losses) % 5 == 0 or step == steps - 1:
                log.info("%s step %d/%d loss %.4f", desc, step + 1, steps, avg)
            window = []
        if probe is not None and probe_every and (step + 1) % probe_every == 0 and step + 1 < steps:
            log.info("%s step %d: %s", desc, step + 1, probe(model))
            model.train()
    model.eval()
    return losses


def train_policy(name: str, spec: Spec, tok, steps: int, init=None):
    """A policy trained on fresh chains: from scratch, or on from ``init``'s weights (the PRM's task training)."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(llama_config(spec, tok) if init is None else init.config)
    if init is not None:
        model.load_state_dict(init.state_dict())
    log.info("%s: %d parameters, %s%s", name, n_params(model), asdict(spec), "" if init is None else ", from L")
    stream = ChainStream(Encoder(tok), seed=spec.seed, batch_size=spec.batch, weights=spec.weights)
    dev = [arith.problem_at("dev", i) for i in range(100)]

    def probe(m) -> str:
        with torch.random.fork_rng():  # sampling reseeds the global RNG; training must not see that
            acc, per = greedy_accuracy(m, tok, dev, desc=f"probe {name}")
        return f"greedy on 100 dev problems {100 * acc:.0f}% ({_fmt(per)})"

    train_loop(model, stream, steps, spec, f"train {name}", probe, PROBE_EVERY)
    return model


def save_model(model, tok, path: str, tokenizer_factory=build_tokenizer, max_new_tokens: int = 96) -> None:
    from transformers import GenerationConfig

    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    model.config.use_cache = True
    if hasattr(model, "generation_config") and model.can_generate():
        model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                                   bos_token_id=None, do_sample=False,
                                                   max_new_tokens=max_new_tokens)
    model.save_pretrained(path)
    tokenizer_factory().save_pretrained(path)  # a pristine copy: no padding state left by batched sampling


# ----------------------------------------------------------------------------------------------------------
# Sampling and evaluation
# ----------------------------------------------------------------------------------------------------------
@torch.no_grad()
def sample_solutions(model, tok, prompts: list[str], temperature: float, seed: int, batch_size: int = 256,
                     max_new_tokens: int = 96, desc: str = "sample") -> list[str]:
    """Full solutions (until EOS) for each prompt; temperature 0 is greedy. Batched with left padding."""
    model.eval()
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    out: list[str] = [""] * len(prompts)
    old_side = tok.padding_side
    tok.padding_side = "left"
    try:
        for b in tqdm(range(0, len(order), batch_size), desc=desc, mininterval=5.0, file=sys.stderr):
            idx = order[b:b + batch_size]
            enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            torch.manual_seed(seed * 100_003 + b)
            kwargs = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0) if temperature > 0 \
                else dict(do_sample=False)
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, eos_token_id=tok.eos_token_id,
                                 pad_token_id=tok.pad_token_id, **kwargs)
            texts = tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for i, t in zip(idx, texts):
                out[i] = t
    finally:
        tok.padding_side = old_side
    return out


def test_problems(n: int) -> list[arith.Problem]:
    return [arith.problem_at("test", i) for i in range(n)]


def per_difficulty(problems: list[arith.Problem], ok: list[bool]) -> dict[int, float]:
    res = {}
    for d in range(1, 6):
        vals = [o for p, o in zip(problems, ok) if p.difficulty == d]
        if vals:
            res[d] = sum(vals) / len(vals)
    return res


def greedy_accuracy(model, tok, problems: list[arith.Problem], desc: str) -> tuple[float, dict[int, float]]:
    sols = sample_solutions(model, tok, [prompt_of(p) for p in problems], 0.0, seed=0, desc=desc)
    ok = [arith.is_correct(p, arith.extract_answer(s)) for p, s in zip(problems, sols)]
    return sum(ok) / len(ok), per_difficulty(problems, ok)


def auroc(scores: list[float], labels: list[int]) -> float:
    """Rank-based AUROC (Mann-Whitney U) with average ranks for ties."""
    pairs = sorted(zip(scores, labels))
    ranks = [0.0] * len(pairs)
    i = 0
    while i < len(pairs):
        j = i
        while j + 1 < len(pairs) and pairs[j + 1][0] == pairs[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    n_pos = sum(lab for _, lab in pairs)
    n_neg = len(pairs) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = sum(r for r, (_, lab) in zip(ranks, pairs) if lab == 1)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


# ----------------------------------------------------------------------------------------------------------
# PRM
# ----------------------------------------------------------------------------------------------------------
def prm_text(problem: arith.Problem, steps: list[str]) -> str:
    """What the PRM reads, as the app's ``likelihood`` family builds it."""
    from backends.text.prm_base import likelihood_pieces

    return "".join(likelihood_pieces(problem.text, steps, NEWLINE))


def prm_rows(enc: Encoder, items: list[tuple[arith.Problem, list[str]]],
             labels: list[list[int]]) -> list[tuple[list[int], dict[int, int]]]:
    """(input ids, {position: label}) per item: the token-level targets of the generative PRM.

    A solution token is labelled 1 while the text up to and including it is a prefix of the canonical
    solution (so a step's closing delimiter carries that step's first-error label), 0 for the first token
    where it stops being one; tokens after the first error get no label: once the chain is wrong nothing
    that follows can make it right, so there is nothing to teach there. Positions past MAX_LEN are dropped.
    """
    texts = [prm_text(p, s) for p, s in items]
    encs = enc.backend.encode_batch(texts, add_special_tokens=False)
    rows = []
    for (p, steps), labs, e, text in zip(items, labels, encs, texts):
        canonical = prm_text(p, p.steps)
        start, n_nl, row = len(p.text) + 1, 0, {}
        for i, (tid, (_, end)) in enumerate(zip(e.ids[:MAX_LEN], e.offsets)):
            if end <= start:
                continue
            if tid == enc.nl_id:
                ok = labs[n_nl] if n_nl < len(labs) else 0
                n_nl += 1
            else:
                ok = int(text[:end] == canonical[:end])
            row[i] = ok
            if not ok:
                break
        rows.append((e.ids[:MAX_LEN], row))
    return rows


def collate_prm(rows: list[tuple[list[int], dict[int, int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in rows)
    ids_t = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (ids, row) in enumerate(rows):
        ids_t[i, :len(ids)] = torch.tensor(ids)
        mask[i, :len(ids)] = 1
        for pos, lab in row.items():
            labels[i, pos] = lab
    return {"input_ids": ids_t, "attention_mask": mask, "labels": labels}


def prm_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Likelihood on the tokens of correct prefixes plus unlikelihood, -log(1 - p), on the first wrong token.

    The PRM's score for a prefix is the product of its token probabilities, so the likelihood term keeps
    right steps near 1 and the unlikelihood term pushes the probability of the tokens the policies get wrong
    toward 0 (Welleck et al.'s unlikelihood objective, here on exactly-labelled errors).
    """
    logp = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    logp = logp.log_softmax(-1).gather(-1, batch["input_ids"][:, 1:].unsqueeze(-1)).squeeze(-1)
    labels = batch["labels"][:, 1:]
    right, wrong = labels == 1, labels == 0
    unlikely = -torch.log1p(-logp[wrong].exp().clamp(max=1 - 1e-6))
    return (-logp[right].sum() + unlikely.sum()) / (right.sum() + wrong.sum()).clamp(min=1)


class PRMStream:
    """Shuffled epochs of labelled PRM rows, length-bucketed inside pools."""

    def __init__(self, rows, pad_id: int, batch_size: int, seed: int, pool: int = 16) -> None:
        self.rows, self.pad_id, self.bs, self.pool = rows, pad_id, batch_size, pool
        self.rng = random.Random(seed)

    def __iter__(self):
        idx = list(range(len(self.rows)))
        while True:
            self.rng.shuffle(idx)
            chunk = self.bs * self.pool
            for c in range(0, len(idx), chunk):
                part = sorted(idx[c:c + chunk], key=lambda i: len(self.rows[i][0]))
                batches = [part[i:i + self.bs] for i in range(0, len(part), self.bs)]
                self.rng.shuffle(batches)
                for b in batches:
                    yield collate_prm([self.rows[i] for i in b], self.pad_id)


def build_prm_data(policies: dict, tok, sizes: dict[str, tuple[int, int]], seed: int):
    """Labelled (problem, steps, labels) from the policies' own samples on train problems + ground truth.

    ``sizes[name] = (problems, samples per problem)``: S, the policy the PRM mostly guides, gets the most.
    """
    rng = random.Random(seed)
    temps = (0.7, 0.8, 1.0)
    items, labels = [], []
    stats = {}
    for name, model in policies.items():
        n_problems, samples_per = sizes[name]
        problems = [arith.generate(rng.randrange(arith.SPLITS["train"], arith.SPLITS["dev"]))
                    for _ in range(n_problems)]
        prompts, owners = [], []
        for p in problems:
            for k in range(samples_per):
                prompts.append(prompt_of(p))
                owners.append((p, temps[k % len(temps)]))
        by_temp: dict[float, list[int]] = {}
        for i, (_, t) in enumerate(owners):
            by_temp.setdefault(t, []).append(i)
        texts = [""] * len(prompts)
        for t, idx in sorted(by_temp.items()):
            outs = sample_solutions(model, tok, [prompts[i] for i in idx], t, seed=seed + int(t * 100),
                                    desc=f"sample {name} T={t}")
            for i, o in zip(idx, outs):
                texts[i] = o
        n_steps = n_pos = 0
        for (p, _), text in zip(owners, texts):
            steps = arith.split_steps(text)
            if not steps:
                continue
            labs = arith.step_labels(p, steps)
            items.append((p, steps))
            labels.append(labs)
            n_steps += len(labs)
            n_pos += sum(labs)
        stats[name] = (len(texts), n_steps, n_pos)
        for p in problems:
            items.append((p, p.steps))
            labels.append([1] * len(p.steps))
    for name, (n, s, pos) in stats.items():
        log.info("PRM data from %s: %d samples, %d steps, %.1f%% correct steps", name, n, s, 100 * pos / max(1, s))
    return items, labels


def train_prm(spec: Schedule, tok, prm, items, labels, steps: int):
    """The generative PRM: ``prm`` (L after the PRM's task training) fine-tuned in place with ``prm_loss``."""
    torch.manual_seed(spec.seed)
    log.info("tiny-prm: %d parameters (generative, fine-tuned from its task training)", n_params(prm))
    enc = Encoder(tok)
    stream = PRMStream(prm_rows(enc, items, labels), enc.pad_id, spec.batch, seed=spec.seed)
    train_loop(prm, stream, steps, spec, "train prm", loss_fn=prm_loss)
    return prm


def evaluate_prm(path: str, items: list[tuple[arith.Problem, list[str]]], k: int) -> dict:
    """Step AUROC, within-problem AUROC of the final score and best-of-k accuracy, scored by the app's own code.

    ``items`` hold k samples per problem, consecutive. Within-problem AUROC is the mean over problems whose
    k samples are neither all right nor all wrong: it asks whether the PRM ranks a problem's right answers
    above its wrong ones, which is what best-of-N and search need (pooled AUROC also rewards a PRM that only
    recognises hard problems).
    """
    from backends.text.prm_families import LikelihoodPRM

    prm = LikelihoodPRM(path, name="tiny-prm", device="cpu", batch_size=64)
    flat_s, flat_l, within, picked = [], [], [], []
    for b in tqdm(range(0, len(items), k), desc="eval prm", mininterval=5.0, file=sys.stderr):
        group = items[b:b + k]
        problem = group[0][0]
        scores, _ = prm.score_steps(problem, prompt_of(problem), [s for _, s in group])
        finals, ok = [], []
        for (p, steps_), sc in zip(group, scores):
            flat_s += sc
            flat_l += arith.step_labels(p, steps_)
            finals.append(sc[-1] if sc else -1.0)
            ok.append(int(arith.is_correct(p, arith.extract_answer(NEWLINE.join(steps_)))))
        if 0 < sum(ok) < len(ok):
            within.append(auroc(finals, ok))
        picked.append(ok[max(range(len(finals)), key=finals.__getitem__)])
    problems = [items[b][0] for b in range(0, len(items), k)]
    return {"step_auroc": auroc(flat_s, flat_l), "steps": (len(flat_l), sum(flat_l)),
            "within_auroc": sum(within) / max(1, len(within)), "n_mixed": len(within),
            "best_of_k": (sum(picked) / len(picked), per_difficulty(problems, picked))}


# ----------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------
def load_policy(path: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", default="s,l,prm", help="comma-separated subset of s,l,prm")
    ap.add_argument("--quick", action="store_true", help="a few steps of each into a temp dir (smoke test)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    random.seed(0)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    out = tempfile.mkdtemp(prefix="embedded-quick-") if args.quick else args.out
    if args.quick:
        # Smoke runs must not overwrite committed weights; reuse existing policies when only the PRM is asked.
        for n in ("s", "l"):
            src = os.path.join(args.out, f"tiny-arith-{n}")
            if n not in only and os.path.isdir(src):
                shutil.copytree(src, os.path.join(out, f"tiny-arith-{n}"))
    os.makedirs(out, exist_ok=True)
    n_eval = 20 if args.quick else 500
    n_pass = 10 if args.quick else 200
    k_pass = 4 if args.quick else 16
    prm_sizes = {"s": (8, 2), "l": (4, 2)} if args.quick else {"s": (1500, 6), "l": (600, 4)}
    steps = {n: (QUICK_STEPS[n] if args.quick else SPECS[n].steps) for n in SPECS}
    log.info("output: %s; phases: %s; torch threads %d", out, sorted(only), torch.get_num_threads())

    times: dict[str, float] = {}
    t_all = time.time()
    tok = build_tokenizer()
    paths = {n: os.path.join(out, f"tiny-arith-{n}") for n in ("s", "l")}
    paths["prm"] = os.path.join(out, "tiny-prm")
    policies = {}
    for n in ("s", "l"):
        if n in only:
            t0 = time.time()
            policies[n] = train_policy(f"tiny-arith-{n}", SPECS[n], tok, steps[n])
            save_model(policies[n], tok, paths[n])
            times[f"train {n}"] = time.time() - t0
        elif os.path.isdir(paths[n]):
            policies[n] = load_policy(paths[n])
    if "prm" in only and "l" not in policies:
        print(f"the PRM starts from tiny-arith-l, which is not in {out}: train it too (--only l,prm)", file=sys.stderr)
        return 2
    problems = test_problems(n_eval)
    results: dict = {"params": {}}
    for n, model in policies.items():
        results["params"][n] = n_params(model)
    for n, model in policies.items():
        t0 = time.time()
        results[f"greedy_{n}"] = greedy_accuracy(model, tok, problems, desc=f"greedy {n}")
        times[f"eval greedy {n}"] = time.time() - t0
        log.info("%s greedy accuracy %.3f %s", n, *results[f"greedy_{n}"])

    pass_items = None
    if "s" in policies:
        t0 = time.time()
        pp = test_problems(n_pass)
        prompts = [prompt_of(p) for p in pp for _ in range(k_pass)]
        texts = sample_solutions(policies["s"], tok, prompts, 0.8, seed=7, desc="pass@16 s")
        ok = [arith.is_correct(p, arith.extract_answer(t)) for p, t in zip([p for p in pp for _ in range(k_pass)],
                                                                           texts)]
        any_ok = [any(ok[i * k_pass:(i + 1) * k_pass]) for i in range(len(pp))]
        mean_ok = [sum(ok[i * k_pass:(i + 1) * k_pass]) / k_pass for i in range(len(pp))]
        results["pass_s"] = (sum(any_ok) / len(any_ok), per_difficulty(pp, any_ok))
        results["sample_acc_s"] = (sum(mean_ok) / len(mean_ok), per_difficulty(pp, mean_ok))
        pass_items = [(p, arith.split_steps(t)) for p, t in zip([p for p in pp for _ in range(k_pass)], texts)]
        times["eval pass@16 s"] = time.time() - t0

    if "prm" in only:
        t0 = time.time()
        lm = train_policy("tiny-prm (task training)", SPECS["prm"], tok, steps["prm"], init=policies["l"])
        times["train prm (task)"] = time.time() - t0
        t0 = time.time()
        items, labels = build_prm_data(policies, tok, prm_sizes, seed=11)
        times["sample prm data"] = time.time() - t0
        t0 = time.time()
        prm = train_prm(PRM_TUNE, tok, lm, items, labels, QUICK_STEPS["prm"] if args.quick else PRM_TUNE.steps)
        save_model(prm, tok, paths["prm"])
        results["params"]["prm"] = n_params(prm)
        times["train prm"] = time.time() - t0
    if os.path.isdir(paths["prm"]) and pass_items:
        t0 = time.time()
        results["prm"] = evaluate_prm(paths["prm"], pass_items, k_pass)
        times["eval prm"] = time.time() - t0
    times["total"] = time.time() - t_all
    report(results, times, out)
    return 0


def _fmt(d: dict[int, float]) -> str:
    return "  ".join(f"d{k}={100 * v:5.1f}%" for k, v in sorted(d.items()))


def report(results: dict, times: dict[str, float], out: str) -> None:
    lines = ["", "=" * 78, "RESULTS (test split, difficulties cycle 1..5)", "=" * 78]
    for n, c in results["params"].items():
        name = "tiny-prm" if n == "prm" else f"tiny-arith-{n}"
        lines.append(f"parameters {name:<14} {c:>10,d}")
    if "s" in results["params"] and "l" in results["params"]:
        lines.append(f"L/S parameter ratio      {results['params']['l'] / results['params']['s']:.2f}")
    for n in ("s", "l"):
        if f"greedy_{n}" in results:
            acc, per = results[f"greedy_{n}"]
            lines.append(f"greedy accuracy {n.upper()}: {100 * acc:5.1f}%   {_fmt(per)}")
    if "greedy_s" in results and "greedy_l" in results:
        lines.append(f"L - S greedy: {100 * (results['greedy_l'][0] - results['greedy_s'][0]):+.1f} points")
    if "pass_s" in results:
        acc, per = results["pass_s"]
        lines.append(f"S pass@16 (T=0.8, any correct): {100 * acc:5.1f}%   {_fmt(per)}")
        acc, per = results["sample_acc_s"]
        lines.append(f"S mean sample accuracy (T=0.8): {100 * acc:5.1f}%   {_fmt(per)}")
    if "prm" in results:
        r = results["prm"]
        n, pos = r["steps"]
        lines.append(f"PRM step AUROC on S's T=0.8 test samples: {r['step_auroc']:.4f} ({n} steps, {pos} correct)")
        lines.append(f"PRM within-problem AUROC of the final score: {r['within_auroc']:.4f} "
                     f"(mean over the {r['n_mixed']} problems with right and wrong samples)")
        acc, per = r["best_of_k"]
        lines.append(f"S best-of-16 picked by the PRM: {100 * acc:5.1f}%   {_fmt(per)}")
    lines.append("wall time per phase (2 CPU threads, cores shared with other processes):")
    for k, v in times.items():
        lines.append(f"  {k:<22} {v / 60:6.2f} min")
    lines.append(f"outputs in {out}")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
