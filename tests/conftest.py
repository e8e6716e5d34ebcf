"""Shared fixtures: tiny random models in Hugging Face format, built locally (nothing is downloaded)."""
from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHARS = list("0123456789+-*=. \nabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,:?")


def build_char_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1}
    for c in CHARS:
        vocab.setdefault(c, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


@pytest.fixture(scope="session")
def random_lm_path(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Llama with a character tokenizer, saved like a hub model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("random-lm")
    tok = build_char_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=0, eos_token_id=1, bos_token_id=1)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a test module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): the
    tiny models' tensors gain nothing from more, and OpenMP threads spin badly on an oversubscribed machine."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def store(tmp_path):
    """A fresh run store (SQLite file) for one test."""
    from storage import RunStore
    s = RunStore(tmp_path / "runs.db")
    yield s
    s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def embedded_models_ready() -> tuple[bool, str]:
    """Whether the embedded default policy and PRM (what a visitor's first Run uses) are on disk."""
    from backends import catalog
    for mid, kind in (("tiny-arith-s", "policy"), ("tiny-prm", "verifier")):
        ok, reason = catalog.resolve(mid, kind).availability()
        if not ok:
            return False, f"{mid}: {reason}"
    return True, ""


@contextlib.contextmanager
def serving(folder: Path, limits=None, **options):
    """The real app and its OpenAI gateway (``gateway.server.serve``, what ``python app.py`` runs) on the embedded
    models, over a fresh database in ``folder``, on a free local port (skips when the embedded weights are
    missing). Yields (url, store); ``options`` go to ``serve`` (``api_key``, ``exposed``, ``warm_up``, ...)."""
    ok, why = embedded_models_ready()
    if not ok:
        pytest.skip(f"embedded models not available ({why}); python -m backends.embedded.train writes them")
    from engine.limits import Limits
    from gateway.server import serve
    from storage import RunStore

    store = RunStore(folder / "runs.db")
    port = free_port()
    app = serve(store, limits or Limits(max_budget=64), "127.0.0.1", port, prevent_thread_lock=True, quiet=True,
                **options)
    try:
        yield f"http://127.0.0.1:{port}/", store
    finally:
        app.close()
        app.tts_gateway.close()
        store.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The real app on the embedded default, over a fresh database, served on a free local port for the
    test module (skips when the embedded weights are missing). Yields (url, store)."""
    with serving(tmp_path_factory.mktemp("app"), warm_up=True) as out:
        yield out
