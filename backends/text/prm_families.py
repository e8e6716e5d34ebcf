"""The published process reward model families, each called exactly as it was trained (DESIGN.md section 4).

Every family here implements the ``StepVerifier`` protocol of ``backends.text.verifiers``: ``score_steps`` returns
one score in [0, 1] per given step, ``score_whole`` one score per whole answer. The models are causal, so the
score read at the end of step i depends only on the question and steps 1..i: one forward pass over a
solution scores all its prefixes, and each distinct prefix is scored once per run (the run's own cache,
``backends.text.verifiers.score_prefixes``: a verifier keeps no scores between runs, so a run's verifier
counters do not depend on what ran before it). Compute is counted per call: verifier tokens (real tokens,
padding excluded), forward passes (``verifier_calls``) and FLOPs (about 2 x params x tokens plus attention).

Families (``FAMILIES``; input formats from the model cards and the reference inference code):

- ``qwen-prm``: Qwen/Qwen2.5-Math-PRM-7B (and -72B, Qwen2.5-Math-7B-PRM800K). Chat template with the system
  prompt "Please reason step by step, and put your final answer within \\boxed{}.", the question as the user
  turn, the assistant turn = steps joined by ``<extra_0>`` with one after the last step. The checkpoint's
  architecture ``Qwen2ForProcessRewardModel`` is remote code on the hub; it is a known head, so it is built
  here without remote code: the Qwen2 backbone through ``AutoModel`` (weights ``model.*``) and the two-layer MLP
  ``score`` (Linear(h, h) -> ReLU -> Linear(h, 2), weights ``score.0.*`` and ``score.2.*``) read from the
  checkpoint's safetensors by ``read_tensors``. ``AutoModelForTokenClassification`` does not fit: its head
  is one Linear. Score = softmax over the 2 classes, class 1, at each ``<extra_0>`` position.
- ``math-shepherd``: peiyi9979/math-shepherd-mistral-7b-prm, a causal LM. Input ``f"{question} {step_1} ки\\n
  {step_2} ки..."`` (with BOS, as ``tokenizer.encode`` does in the model card); at each ``ки`` tag take the
  logits of the two candidate tokens ``tokenizer.encode("+ -")`` (ids 648 and 387 for that tokenizer),
  softmax over the pair, P("+").
- ``rlhflow``: RLHFlow/Llama3.1-8B-PRM-Deepseek-Data and -Mistral-Data, causal LMs trained on a dialogue with
  one user turn per step (the first is ``question + " " + step_1``) and an assistant reply "+" per turn,
  rendered by the tokenizer's chat template. The logits at the position just before each assistant "+"
  predict it: softmax over ("+", "-"), P("+").
- ``skywork-prm``: Skywork/Skywork-o1-Open-PRM-Qwen-2.5-1.5B and -7B: a Qwen2 causal LM with a value head
  (``v_head.summary``: Linear(h, 1) on the last hidden state), built here without remote code (backbone
  through ``AutoModel``, head from safetensors). Input ids = encode(BOS + question + "\\n") then, per
  "\\n"-split piece, encode(piece) + the id of "\\n"; score = sigmoid(value) at each piece's "\\n". A step of
  ours that itself contains "\\n" is split the same way, and its score is the value at its last piece.
- ``likelihood``: a generative PRM: any causal LM, read as the probability it gives the steps so far. Input
  ``question + "\n" + step_1 + "\n" + ... + step_i + "\n"`` (with the tokenizer's special tokens); the score
  after step i is exp(sum of log p(token | everything before it)) over the tokens of steps 1..i and their
  delimiters (the question's own tokens excluded), a cumulative product, so it can only fall from step to
  step, like a first-error PRM's. An unchanged policy model works (its self-certainty); the embedded
  ``tiny-prm`` is one trained for it (L trained further on the task, then likelihood on correct steps and
  unlikelihood on the first wrong token, ``backends/embedded/train.py``). The delimiter after the final
  step is scored too, so a model used this way should have seen a delimiter (not end-of-text) after its
  answers.
- ``orm``: an outcome reward model through ``AutoModelForSequenceClassification`` (the question and the
  answer as a chat through the tokenizer's template when it has one); score = sigmoid of the single logit,
  or P(class 1) for two labels. ``score_whole`` scores each whole answer once; ``score_steps`` scores each
  prefix as if it were the whole answer (once per run, one forward each: the end-of-turn tokens after
  the answer make prefixes unshareable).

For the step-level families ``score_whole`` treats the whole answer as one step (steps joined by the
family's step joiner) and returns that step's score. Steps are given as lists; ``split_steps`` turns a text
into steps without an empty trailing step, and ``score_text`` scores a text through it.

Questions: a verifier is called with the domain's problem object and the policy's formatted prompt; the
families want the bare question, so they read ``problem.text`` and fall back to the prompt.
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch
from torch import nn

from backends.text import kv_reuse
from backends.text.kv_reuse import KVStore
from backends.text.transformers_lm import (flops_for, forward_mem_bytes, kv_token_bytes, model_shape, param_bytes,
                                           pick_device)
from backends.text.prm_base import (PrefixCachedPRM, causal_lm, likelihood_pieces, load_backbone, load_tokenizer,
                                    question_of, read_tensors, split_steps, token_starting_at)
from backends.text.verifiers import score_prefixes
from strategies.core import CancelToken, Compute

log = logging.getLogger(__name__)

QWEN_PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
QWEN_STEP_TOKEN = "<extra_0>"
SHEPHERD_TAG = "ки"


class QwenPRMHead(nn.Module):
    """``Qwen2ForProcessRewardModel`` without remote code: backbone + MLP score head (Linear, ReLU, Linear)."""

    def __init__(self, backbone: nn.Module, num_labels: int = 2) -> None:
        super().__init__()
        hidden = backbone.config.hidden_size
        self.model = backbone
        self.config = backbone.config
        self.score = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_labels))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.score(hidden.to(self.score[0].weight.dtype))


def load_qwen_prm_head(path_or_id: str, dtype: torch.dtype, trust_remote_code: bool = False,
                       num_labels: int | None = None) -> QwenPRMHead:
    backbone = load_backbone(path_or_id, dtype, trust_remote_code)
    tensors = read_tensors(path_or_id, ("score.",))
    if not tensors:
        raise ValueError(f"{path_or_id} has no score.* weights: not a Qwen2 process/outcome reward model")
    labels = num_labels or int(tensors["score.2.weight"].shape[0])
    model = QwenPRMHead(backbone, labels)
    model.score.load_state_dict({k[len("score."):]: v for k, v in tensors.items()})
    return model.to(dtype)


class QwenMathPRM(PrefixCachedPRM):
    """Qwen2.5-Math-PRM: class-1 probability at each ``<extra_0>`` after a step (see the module docstring)."""

    family = "qwen-prm"
    delimiter = "\n\n"

    def __init__(self, path_or_id: str, name: str | None = None, device: str | None = None,
                 trust_remote_code: bool = False, system: str = QWEN_PRM_SYSTEM, **kw) -> None:
        dev, dtype = pick_device(device)
        tok = load_tokenizer(path_or_id, trust_remote_code)
        model = load_qwen_prm_head(path_or_id, dtype, trust_remote_code).to(dev).eval()
        super().__init__(name or path_or_id, tok, model, dev, **kw)
        ids = tok.convert_tokens_to_ids(QWEN_STEP_TOKEN)
        if ids is None or ids == tok.unk_token_id:
            raise ValueError(f"{path_or_id}: the tokenizer has no {QWEN_STEP_TOKEN} token")
        self.step_id = ids
        self.system = system

    def _encode(self, question: str, steps: list[str]) -> tuple[list[int], list[int]]:
        clean = [s.replace(QWEN_STEP_TOKEN, "") for s in steps]
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": question},
                    {"role": "assistant", "content": QWEN_STEP_TOKEN.join(clean) + QWEN_STEP_TOKEN}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        positions = [i for i, t in enumerate(ids) if t == self.step_id]
        if len(positions) != len(steps):
            raise ValueError(f"expected {len(steps)} {QWEN_STEP_TOKEN} tokens, found {len(positions)}")
        return ids, positions

    def _scores(self, input_ids, attention_mask):
        return torch.softmax(self.model(input_ids, attention_mask).float(), -1)[..., 1]


# ----------------------------------------------------------------------------------------------------
# Math-Shepherd
# ----------------------------------------------------------------------------------------------------
def _plus_minus_ids(tok, spaced: bool) -> tuple[int, int]:
    """Ids of the "+" and "-" labels. Math-Shepherd's card uses ``encode("+ -")[1:]`` (the BOS dropped)."""
    if spaced:
        pair = tok("+ -", add_special_tokens=False)["input_ids"]
        if len(pair) == 2:
            return pair[0], pair[1]
    plus = tok("+", add_special_tokens=False)["input_ids"][-1]
    minus = tok("-", add_special_tokens=False)["input_ids"][-1]
    return plus, minus


class MathShepherdPRM(PrefixCachedPRM):
    """Math-Shepherd: P("+") over the ("+", "-") logits of a causal LM at each " ки" step tag."""

    family = "math-shepherd"
    delimiter = "\n"
    joiner = " "

    def __init__(self, path_or_id: str, name: str | None = None, device: str | None = None,
                 trust_remote_code: bool = False, step_join: str = "\n", **kw) -> None:
        tok = load_tokenizer(path_or_id, trust_remote_code)
        dev, model = causal_lm(path_or_id, device, trust_remote_code)
        super().__init__(name or path_or_id, tok, model, dev, **kw)
        self.candidates = list(_plus_minus_ids(tok, spaced=True))
        self.step_join = step_join

    def build_text(self, question: str, steps: list[str]) -> tuple[str, list[int]]:
        """The model card's input and the character index of each step's tag."""
        text, tags = f"{question} ", []
        for i, s in enumerate(steps):
            text += s.replace(SHEPHERD_TAG, "") + " "
            tags.append(len(text))
            text += SHEPHERD_TAG
            if i < len(steps) - 1:
                text += self.step_join
        return text, tags

    def _encode(self, question, steps):
        text, tags = self.build_text(question, steps)
        enc = self.tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
        offsets = [tuple(o) for o in enc["offset_mapping"]]
        # the token holding the tag's last character (the tag token itself in the real tokenizer)
        return enc["input_ids"], [token_starting_at(offsets, t + len(SHEPHERD_TAG) - 1) for t in tags]

    def _scores(self, input_ids, attention_mask):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits[..., self.candidates]
        return torch.softmax(logits.float(), -1)[..., 0]


# ----------------------------------------------------------------------------------------------------
# RLHFlow
# ----------------------------------------------------------------------------------------------------
_SLOT = "\u0000\u0001SLOT\u0001\u0000"


class RLHFlowPRM(PrefixCachedPRM):
    """RLHFlow PRMs: one user turn per step, assistant "+"; P("+") vs P("-") just before each assistant "+"."""

    family = "rlhflow"
    delimiter = "\n\n"

    def __init__(self, path_or_id: str, name: str | None = None, device: str | None = None,
                 trust_remote_code: bool = False, **kw) -> None:
        tok = load_tokenizer(path_or_id, trust_remote_code)
        if getattr(tok, "chat_template", None) is None:
            raise ValueError(f"{path_or_id}: RLHFlow PRMs need the tokenizer's chat template, and it has none")
        dev, model = causal_lm(path_or_id, device, trust_remote_code)
        super().__init__(name or path_or_id, tok, model, dev, **kw)
        self.candidates = list(_plus_minus_ids(tok, spaced=False))

    def build_text(self, question: str, steps: list[str]) -> tuple[str, list[int]]:
        """The rendered dialogue and the character index of each assistant "+"."""
        conv = []
        for k, s in enumerate(steps):
            conv.append({"role": "user", "content": f"{question} {s}" if k == 0 else s})
            conv.append({"role": "assistant", "content": _SLOT})
        rendered = self.tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=False)
        pieces = rendered.split(_SLOT)
        if len(pieces) != len(steps) + 1:
            raise ValueError("the chat template did not render each assistant turn once")
        text, plus_at = pieces[0], []
        for piece in pieces[1:]:
            plus_at.append(len(text))
            text += "+" + piece
        return text, plus_at

    def _encode(self, question, steps):
        text, plus_at = self.build_text(question, steps)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = [tuple(o) for o in enc["offset_mapping"]]
        positions = []
        for c in plus_at:
            t = token_starting_at(offsets, c)
            if offsets[t][0] != c:
                raise ValueError("the assistant '+' is merged into a longer token by this tokenizer")
            positions.append(t - 1)  # the logits one position earlier predict the "+"
        return enc["input_ids"], positions

    def _scores(self, input_ids, attention_mask):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits[..., self.candidates]
        return torch.softmax(logits.float(), -1)[..., 0]


# ----------------------------------------------------------------------------------------------------
# Skywork-o1-Open-PRM
# ----------------------------------------------------------------------------------------------------
class ValueHeadModel(nn.Module):
    """Skywork's ``PRM_MODEL`` without remote code: backbone + ``v_head.summary`` Linear(h, 1), no dropout at eval."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.model = backbone
        self.config = backbone.config
        self.summary = nn.Linear(backbone.config.hidden_size, 1)

    def forward(self, input_ids, attention_mask=None) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.summary(hidden.to(self.summary.weight.dtype)).squeeze(-1)


class SkyworkPRM(PrefixCachedPRM):
    """Skywork-o1-Open-PRM: sigmoid of the value head at the "\\n" closing each step."""

    family = "skywork-prm"
    delimiter = "\n"
    joiner = " "
    step_token = "\n"

    def __init__(self, path_or_id: str, name: str | None = None, device: str | None = None,
                 trust_remote_code: bool = False, **kw) -> None:
        dev, dtype = pick_device(device)
        tok = load_tokenizer(path_or_id, trust_remote_code)
        backbone = load_backbone(path_or_id, dtype, trust_remote_code)
        tensors = read_tensors(path_or_id, ("v_head.",))
        if "v_head.summary.weight" not in tensors:
            raise ValueError(f"{path_or_id} has no v_head.summary weights: not a Skywork PRM checkpoint")
        model = ValueHeadModel(backbone)
        model.summary.load_state_dict({"weight": tensors["v_head.summary.weight"],
                                       "bias": tensors["v_head.summary.bias"]})
        super().__init__(name or path_or_id, tok, model.to(dtype).to(dev).eval(), dev, **kw)
        self.step_id = tok(self.step_token, add_special_tokens=False)["input_ids"][-1]

    def _encode(self, question, steps):
        enc = lambda s: self.tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
        ids = enc((self.tokenizer.bos_token or "") + question + "\n")
        positions = []
        for step in steps:
            pieces = split_steps(step, self.step_token) or [""]
            for piece in pieces:
                ids += enc(piece) + [self.step_id]
            positions.append(len(ids) - 1)
        return ids, positions

    def _scores(self, input_ids, attention_mask):
        return torch.sigmoid(self.model(input_ids, attention_mask).float())


# ----------------------------------------------------------------------------------------------------
# Generative PRM (likelihood)
# ----------------------------------------------------------------------------------------------------
class LikelihoodPRM(PrefixCachedPRM):
    """A causal LM as a PRM: the probability it gives the solution so far (see the module docstring)."""

    family = "likelihood"
    delimiter = "\n"
    joiner = "\n"

    def __init__(self, path_or_id: str, name: str | None = None, device: str | None = None,
                 trust_remote_code: bool = False, **kw) -> None:
        dev, model = causal_lm(path_or_id, device, trust_remote_code)
        super().__init__(name or path_or_id, load_tokenizer(path_or_id, trust_remote_code), model, dev, **kw)

    def _encode(self, question, steps):
        """Ids, then the position where the solution starts followed by the last token of each step's delimiter."""
        first, *rest = likelihood_pieces(question, steps, self.delimiter)
        ids = self.tokenizer(first, add_special_tokens=True)["input_ids"]
        positions = [len(ids) - 1]
        for piece in rest:
            ids = ids + self.tokenizer(piece, add_special_tokens=False)["input_ids"]
            positions.append(len(ids) - 1)
        return ids, positions

    def _scores(self, input_ids, attention_mask):
        """Cumulative log-probability of the tokens up to each position (position 0 has none: 0)."""
        logp = torch.log_softmax(self.model(input_ids=input_ids, attention_mask=attention_mask).logits.float(), -1)
        token = logp[:, :-1].gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        return torch.cat([torch.zeros_like(token[:, :1]), token.cumsum(-1)], dim=1)

    def _read(self, row, positions):
        start = float(row[positions[0]])
        return [math.exp(min(0.0, float(row[p]) - start)) for p in positions[1:]]

    # -- KV reuse (backends.text.kv_reuse): a child is scored from its parent's cache --------------------
    def new_kv_store(self, budget_bytes: int | None = None) -> KVStore:
        return KVStore(kv_reuse.DEFAULT_BUDGET_BYTES if budget_bytes is None else budget_bytes)

    def score_steps(self, problem, prompt, step_lists, cancel=None, cache=None, kv_store: KVStore | None = None):
        """As the base class; with a run's ``kv_store``, each solution continues from the longest prefix of its
        ids the run scored before (``_encode`` builds ids piece by piece, so a child's ids extend its parent's),
        and only the rest is encoded and charged."""
        if kv_store is None:
            return super().score_steps(problem, prompt, step_lists, cancel, cache)
        question = question_of(problem, prompt)
        return score_prefixes(cache, question, step_lists,
                              lambda todo: self._forward_reusing(question, todo, cancel, kv_store))

    @torch.inference_mode()
    def _forward_reusing(self, question: str, step_lists: list[list[str]], cancel: CancelToken | None,
                         store: KVStore) -> tuple[list[list[float]], Compute]:
        cost, out, started = Compute(), [], time.perf_counter()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for b in range(0, len(step_lists), self.batch_size):
            if cancel is not None:
                cancel.check()
            built = [self._encode(question, steps) for steps in step_lists[b:b + self.batch_size]]
            # overlap 1: the last reused token is encoded again, for the logits that predict the first new one
            pre = kv_reuse.prefill(self.model, store, [ids for ids, _ in built], pad, self.device, overlap=1)
            logp = torch.log_softmax(pre.new_logits, -1)
            r_max = pre.chunk.shape[1]
            for row, (ids, positions) in enumerate(built):
                reused, n_new = pre.reused[row], len(ids) - pre.reused[row]
                chunk = pre.chunk[row, r_max - n_new:]
                token = logp[row, r_max - n_new:-1].gather(-1, chunk[1:].unsqueeze(-1)).squeeze(-1).cpu()
                # the entry matches at least reused + 1 tokens, so its cumulative log-probabilities up to
                # there are this sequence's
                before = pre.entries[row].extra[:reused + 1] if reused else torch.zeros(1)
                cum = torch.cat([before, before[-1] + token.cumsum(-1)])
                out.append(self._read(cum, positions))
                kv_reuse.keep(store, pre.cache, row, pre.mask[row].nonzero().flatten(), tuple(ids), extra=cum)
            n_tokens = sum(pre.encoded)
            cost.verifier_tokens += n_tokens
            cost.verifier_calls += 1
            cost.flops += flops_for(self.n_params, self.layers, self.hidden, n_tokens, pre.width // 2)
            # the weights once, the new tokens' keys and values written, the reused prefixes' read by attention
            cost.mem_bytes += (forward_mem_bytes(self.weight_bytes, self.token_kv, pre.chunk.numel())
                               + self.token_kv * sum(pre.reused))
        cost.wall_s = time.perf_counter() - started
        cost.kv_bytes_peak = store.peak_bytes
        return out, cost


# ----------------------------------------------------------------------------------------------------
# Outcome reward model
# ----------------------------------------------------------------------------------------------------
class SequenceClassificationORM:
    """An outcome reward model: one score for a whole answer (see the module docstring)."""

    is_oracle = False
    family = "orm"
    delimiter = "\n\n"
    joiner = "\n\n"

    def __init__(self, path_or_id: str, name: str | None = None, device: str | None = None,
                 trust_remote_code: bool = False, batch_size: int = 16) -> None:
        from transformers import AutoModelForSequenceClassification
        self.device, dtype = pick_device(device)
        self.name = name or path_or_id
        self.tokenizer = load_tokenizer(path_or_id, trust_remote_code)
        self.tokenizer.padding_side = "right"
        self.model = AutoModelForSequenceClassification.from_pretrained(
            path_or_id, dtype=dtype, trust_remote_code=trust_remote_code).to(self.device).eval()
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.batch_size = batch_size
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.layers, kv_width, self.hidden = model_shape(self.model.config)
        self.weight_bytes = param_bytes(self.model)
        self.token_kv = kv_token_bytes(self.layers, kv_width, torch.finfo(dtype).bits // 8)

    def build_text(self, question: str, answer: str) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                tokenize=False, add_generation_prompt=False)
        return f"{question}\n{answer}"

    @torch.inference_mode()
    def _score_answers(self, question: str, answers: list[str], cancel) -> tuple[list[float], Compute]:
        cost, out, started = Compute(), [], time.perf_counter()
        for b in range(0, len(answers), self.batch_size):
            if cancel is not None:
                cancel.check()
            texts = [self.build_text(question, a) for a in answers[b:b + self.batch_size]]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            logits = self.model(**{k: v.to(self.device) for k, v in enc.items()}).logits.float().cpu()
            probs = torch.sigmoid(logits[:, 0]) if logits.shape[-1] == 1 else torch.softmax(logits, -1)[:, 1]
            out.extend(float(p) for p in probs)
            n = int(enc["attention_mask"].sum())
            cost.verifier_tokens += n
            cost.verifier_calls += 1
            cost.flops += flops_for(self.n_params, self.layers, self.hidden, n, enc["input_ids"].shape[1] // 2)
            cost.mem_bytes += forward_mem_bytes(self.weight_bytes, self.token_kv, enc["input_ids"].numel())
        cost.wall_s = time.perf_counter() - started
        return out, cost

    def score_whole(self, problem, prompt, step_lists, cancel=None):
        return self._score_answers(question_of(problem, prompt), [self.joiner.join(s) for s in step_lists], cancel)

    def score_steps(self, problem, prompt, step_lists, cancel=None, cache: dict | None = None):
        question = question_of(problem, prompt)
        cache = {} if cache is None else cache
        prefixes = {self.joiner.join(s[:i]) for s in step_lists for i in range(1, len(s) + 1)}
        todo = sorted(p for p in prefixes if (question, p) not in cache)
        cost = Compute()
        if todo:
            scores, cost = self._score_answers(question, todo, cancel)
            cache.update({(question, p): s for p, s in zip(todo, scores)})
        return [[cache[(question, self.joiner.join(s[:i]))] for i in range(1, len(s) + 1)]
                for s in step_lists], cost


FAMILIES = {
    "qwen-prm": QwenMathPRM,
    "math-shepherd": MathShepherdPRM,
    "rlhflow": RLHFlowPRM,
    "skywork-prm": SkyworkPRM,
    "likelihood": LikelihoodPRM,
    "orm": SequenceClassificationORM,
}


def load(family: str, path_or_id: str, name: str | None = None, device: str | None = None,
         trust_remote_code: bool = False):
    """A verifier of one of ``FAMILIES`` from a hub id or a local Hugging Face folder."""
    if family not in FAMILIES:
        raise ValueError(f"unknown PRM family {family!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[family](path_or_id, name=name, device=device, trust_remote_code=trust_remote_code)


def detect_family(path: str) -> str | None:
    """A family guessed from a local folder's config (architectures) and weights, or None."""
    cfg_path = Path(path) / "config.json"
    if not cfg_path.exists():
        return None
    try:
        archs = json.loads(cfg_path.read_text()).get("architectures") or []
    except (OSError, ValueError):
        return None
    if any("ProcessRewardModel" in a for a in archs):
        return "qwen-prm"
    if any("Prm" in a or "ValueHead" in a for a in archs):
        return "skywork-prm"
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "orm"
    if any(a.endswith("ForTokenClassification") for a in archs):
        return None  # the generic token-classification PRM of backends.text.verifiers
    return None
