"""What the verifier families of ``backends.text.prm_families`` share: steps and questions as the families
read them, loading a checkpoint's pieces, and :class:`PrefixCachedPRM`, the base that scores every distinct
prefix once."""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn

from backends.text.transformers_lm import (flops_for, forward_mem_bytes, kv_token_bytes, model_shape, param_bytes,
                                           pick_device, position_limit)
from backends.text.verifiers import score_prefixes
from strategies.core import CancelToken, Compute


def split_steps(text: str, delimiter: str) -> list[str]:
    """Steps of a text: split at the delimiter, surrounding whitespace stripped, no empty trailing step.

    Empty pieces in the middle (two delimiters in a row) are dropped too: a PRM never scores an empty step.
    """
    return [p.strip() for p in text.split(delimiter) if p.strip()]


def likelihood_pieces(question: str, steps: list[str], delimiter: str) -> list[str]:
    """What a ``likelihood`` PRM reads, in pieces: the question, then every step, each closed by the delimiter
    (the last step too). The embedded PRM's training text (``backends.embedded.train.prm_text``) is their join."""
    return [question + delimiter] + [step + delimiter for step in steps]


def question_of(problem: object, prompt: str) -> str:
    text = getattr(problem, "text", None) if problem is not None else None
    return text if isinstance(text, str) and text else prompt


def read_tensors(path_or_id: str, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Tensors whose names start with one of ``prefixes``, read from a checkpoint's safetensors (sharded or not)."""
    from safetensors import safe_open
    from transformers.utils import cached_file

    index = cached_file(path_or_id, "model.safetensors.index.json", _raise_exceptions_for_missing_entries=False)
    if index:
        weight_map = json.loads(Path(index).read_text())["weight_map"]
        files = sorted({f for k, f in weight_map.items() if k.startswith(prefixes)})
    else:
        files = ["model.safetensors"]
    out: dict[str, torch.Tensor] = {}
    for name in files:
        local = cached_file(path_or_id, name)
        with safe_open(local, framework="pt") as f:
            for key in f.keys():
                if key.startswith(prefixes):
                    out[key] = f.get_tensor(key)
    return out


def load_tokenizer(path_or_id: str, trust_remote_code: bool):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(path_or_id, trust_remote_code=trust_remote_code)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def causal_lm(path_or_id: str, device: str | None, trust_remote_code: bool):
    """(device, causal LM in eval mode on it) for the families that read an LM's logits."""
    from transformers import AutoModelForCausalLM
    dev, dtype = pick_device(device)
    model = AutoModelForCausalLM.from_pretrained(path_or_id, dtype=dtype, trust_remote_code=trust_remote_code)
    return dev, model.to(dev).eval()


def load_backbone(path_or_id: str, dtype: torch.dtype, trust_remote_code: bool):
    """The transformer without any head (``model.*`` weights); heads are loaded by the family."""
    from transformers import AutoModel
    return AutoModel.from_pretrained(path_or_id, dtype=dtype, trust_remote_code=trust_remote_code)


class PrefixCachedPRM:
    """Shared machinery: batched right-padded forwards, per-prefix cache, compute counting.

    A family provides ``_encode(question, steps) -> (input_ids, read_positions)`` (one position per step)
    and ``_scores(input_ids, attention_mask) -> tensor[batch, seq]`` (the family's score at every position);
    ``_read`` turns a row and its positions into the step scores (the likelihood family reads relative ones).
    """

    is_oracle = False
    joiner = "\n\n"      # how score_whole joins steps into one
    delimiter = "\n\n"   # how score_text splits a text into steps

    def __init__(self, name: str, tokenizer, model: nn.Module, device: torch.device, batch_size: int = 16) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.n_params = sum(p.numel() for p in model.parameters())
        self.layers, kv_width, self.hidden = model_shape(getattr(model, "config", None) or object())
        value_bytes = next(model.parameters()).element_size()
        self.weight_bytes = param_bytes(model)
        self.token_kv = kv_token_bytes(self.layers, kv_width, value_bytes)
        config = getattr(model, "config", None)
        self.max_positions = position_limit(config) if config is not None else None

    # -- family hooks -------------------------------------------------------------------------------
    def _encode(self, question: str, steps: list[str]) -> tuple[list[int], list[int]]:
        raise NotImplementedError

    def _scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _read(self, row: torch.Tensor, positions: list[int]) -> list[float]:
        """Per-step scores from one row of ``_scores``; a family whose score is relative to a start overrides it."""
        return [float(row[p]) for p in positions]

    # -- shared ---------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _forward(self, question: str, step_lists: list[list[str]],
                 cancel: CancelToken | None) -> tuple[list[list[float]], Compute]:
        cost = Compute()
        started = time.perf_counter()
        out: list[list[float]] = []
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for b in range(0, len(step_lists), self.batch_size):
            if cancel is not None:
                cancel.check()
            built = [self._encode(question, steps) for steps in step_lists[b:b + self.batch_size]]
            width = max(len(ids) for ids, _ in built)
            if self.max_positions and width > self.max_positions:
                raise ValueError(f"{self.name} cannot score a solution of {width} tokens: its position table has "
                                 f"{self.max_positions} (shorter steps, or a verifier with a longer context)")
            ids = torch.full((len(built), width), pad, dtype=torch.long)
            mask = torch.zeros((len(built), width), dtype=torch.long)
            for row, (seq, _) in enumerate(built):
                ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
                mask[row, :len(seq)] = 1
            scores = self._scores(ids.to(self.device), mask.to(self.device)).float().cpu()
            n_tokens = int(mask.sum())
            cost.verifier_tokens += n_tokens
            cost.verifier_calls += 1
            cost.flops += flops_for(self.n_params, self.layers, self.hidden, n_tokens, width // 2)
            cost.mem_bytes += forward_mem_bytes(self.weight_bytes, self.token_kv, ids.numel())
            for row, (_, positions) in enumerate(built):
                out.append(self._read(scores[row], positions))
        cost.wall_s = time.perf_counter() - started
        return out, cost

    def score_steps(self, problem: object, prompt: str, step_lists: list[list[str]],
                    cancel: CancelToken | None = None, cache: dict | None = None) -> tuple[list[list[float]], Compute]:
        question = question_of(problem, prompt)
        return score_prefixes(cache, question, step_lists, lambda todo: self._forward(question, todo, cancel))

    def score_whole(self, problem: object, prompt: str, step_lists: list[list[str]],
                    cancel: CancelToken | None = None) -> tuple[list[float], Compute]:
        whole = [[self.joiner.join(steps)] for steps in step_lists]
        scores, cost = self._forward(question_of(problem, prompt), whole, cancel)
        return [s[-1] for s in scores], cost

    def score_text(self, problem: object, prompt: str, text: str,
                   cancel: CancelToken | None = None) -> tuple[list[float], Compute]:
        """Scores of a solution given as text, split at the family's delimiter (no empty trailing step)."""
        (scores,), cost = self.score_steps(problem, prompt, [split_steps(text, self.delimiter)], cancel)
        return scores, cost


def token_starting_at(offsets: list[tuple[int, int]], char_index: int) -> int:
    for i, (s, e) in enumerate(offsets):
        if s <= char_index < e:
            return i
    raise ValueError(f"no token covers character {char_index}")


# ----------------------------------------------------------------------------------------------------
# Qwen2.5-Math-PRM
# ----------------------------------------------------------------------------------------------------
