"""KV reuse across search steps: a run's store of key/value caches keyed by exact token ids.

A search extends the same prefixes again and again (a beam's survivors, a resampled particle, a child scored
after its parent). :class:`KVStore` keeps, for every sequence a run has encoded, its per-layer keys and values,
keyed by the sequence's token ids; :func:`prefill` continues each new sequence from the longest stored prefix
of its ids and encodes only the rest. The key is the ids, never the text: a tokenizer may encode
``prefix + step`` differently from ``prefix`` then ``step`` (BPE merges across the boundary; the embedded
WordLevel tokenizer does not at a newline, but a stripped step does differ from the tokens generated), so a
sequence reuses exactly the tokens it shares with a stored one and re-encodes the rest. Survivors of a beam or
a resampling share their parent's entry (rows are copied into the batch, the entry is stored once).

Memory is bounded by a byte budget with least-recently-used eviction; ``peak_bytes`` is what the compute
meter reports. Lookups hash every prefix of a stored sequence incrementally (one dict probe per token) and
check the ids of the match, so a hash collision can cost reuse, never correctness.

The batch layout of :func:`prefill`: row ``i`` is ``[left pad][its c_i cached tokens][pad][its r_i new tokens]``
with the cached part left-padded to the longest reuse ``C`` and the new part to the longest remainder ``R``;
the attention mask hides every pad and the position ids count only real tokens, so each row sees exactly its
own sequence. At least one token of every sequence is encoded, for the logits of the next one.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

DEFAULT_BUDGET_BYTES = int(float(os.environ.get("TTS_KV_BUDGET_MB", "512")) * 2**20)

Layers = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys and values, [heads, tokens, head dim]


@dataclass
class KVEntry:
    ids: tuple[int, ...]
    layers: Layers
    nbytes: int
    extra: object = None  # what a user keeps beside the cache (the PRM: cumulative log-probabilities)


def _prefix_hashes(ids: tuple[int, ...], upto: int) -> list[int]:
    """hash of ids[:n] for n = 1..upto, each from the one before (linear, not quadratic, in the length)."""
    out, h = [], 0
    for t in ids[:upto]:
        h = hash((h, t))
        out.append(h)
    return out


@dataclass
class KVStore:
    """One run's caches, least recently used first; ``budget_bytes`` bounds what it holds."""

    budget_bytes: int = DEFAULT_BUDGET_BYTES
    entries: OrderedDict = field(default_factory=OrderedDict)
    bytes: int = 0
    peak_bytes: int = 0
    reused_tokens: int = 0  # tokens a prefill took from the store instead of encoding them
    evictions: int = 0
    _index: dict = field(default_factory=dict)  # hash of a prefix -> key of the latest entry holding it

    def longest(self, ids: tuple[int, ...], limit: int) -> tuple[KVEntry | None, int]:
        """The stored entry sharing the longest prefix with ``ids`` (at most ``limit`` tokens), and that length."""
        hashes = _prefix_hashes(ids, limit)
        for n in range(len(hashes), 0, -1):
            key = self._index.get(hashes[n - 1])
            if key is not None and key[:n] == ids[:n]:
                self.entries.move_to_end(key)
                return self.entries[key], n
        return None, 0

    def put(self, ids: tuple[int, ...], layers: Layers, extra: object = None) -> None:
        nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in layers)
        if nbytes > self.budget_bytes or not ids:
            return
        if ids in self.entries:
            self._drop(ids)
        self.entries[ids] = KVEntry(ids, layers, nbytes, extra)
        self.bytes += nbytes
        for h in _prefix_hashes(ids, len(ids)):
            self._index[h] = ids
        while self.bytes > self.budget_bytes:
            self._drop(next(iter(self.entries)))
            self.evictions += 1
        self.peak_bytes = max(self.peak_bytes, self.bytes)

    def _drop(self, key: tuple[int, ...]) -> None:
        entry = self.entries.pop(key)
        self.bytes -= entry.nbytes
        for h in _prefix_hashes(key, len(key)):
            if self._index.get(h) == key:
                del self._index[h]


@dataclass
class Prefill:
    """A batch continued from the store, one row per sequence asked for (duplicates share one encoding)."""

    cache: DynamicCache
    logits: torch.Tensor        # [rows, vocab] at each sequence's last token
    mask: torch.Tensor          # [rows, width]: 1 on real tokens
    positions: torch.Tensor     # [rows, width]
    encoded: list[int]          # tokens encoded for each sequence (0 for a repeat of an earlier one)
    reused: list[int]           # tokens taken from the store for each sequence
    new_logits: torch.Tensor    # [rows, R, vocab]: logits at every position of the encoded chunk
    chunk: torch.Tensor         # [rows, R]: the encoded chunk's ids (left-padded)
    entries: list[KVEntry | None]  # the stored entry each row continues from

    @property
    def width(self) -> int:
        return self.mask.shape[1]


def prefill(model, store: KVStore, id_lists: list[list[int]], pad_id: int, device: torch.device,
            overlap: int = 0) -> Prefill:
    """One forward pass that encodes each sequence's tokens past its longest stored prefix (layout above).

    ``overlap`` re-encodes that many of the matched tokens: a scorer that needs the logits predicting the first
    new token (the likelihood PRM) asks for 1, since the store keeps caches, not logits."""
    unique: dict[tuple[int, ...], int] = {}
    src = [unique.setdefault(tuple(ids), len(unique)) for ids in id_lists]
    keys = list(unique)
    hits = []
    for key in keys:
        entry, n = store.longest(key, len(key) - 1)
        hits.append((entry, max(0, n - overlap)) if entry is not None else (None, 0))
    c_max = max(n for _, n in hits)
    r_max = max(len(key) - n for key, (_, n) in zip(keys, hits))
    rows = len(keys)
    chunk = torch.full((rows, r_max), pad_id, dtype=torch.long)
    mask = torch.zeros((rows, c_max + r_max), dtype=torch.long)
    for b, (key, (_, n)) in enumerate(zip(keys, hits)):
        rest = key[n:]
        chunk[b, r_max - len(rest):] = torch.tensor(rest, dtype=torch.long)
        mask[b, c_max - n:c_max] = 1
        mask[b, c_max + r_max - len(rest):] = 1
    cache = DynamicCache()
    if c_max:
        some = next(e for e, n in hits if n)
        for layer, (k0, v0) in enumerate(some.layers):
            ks = k0.new_zeros((rows, k0.shape[0], c_max, k0.shape[2]))
            vs = v0.new_zeros((rows, v0.shape[0], c_max, v0.shape[2]))
            for b, (entry, n) in enumerate(hits):
                if n:
                    ks[b, :, c_max - n:] = entry.layers[layer][0][:, :n]
                    vs[b, :, c_max - n:] = entry.layers[layer][1][:, :n]
            cache.update(ks, vs, layer)
    mask, chunk = mask.to(device), chunk.to(device)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    out = model(input_ids=chunk, attention_mask=mask, position_ids=positions[:, c_max:], past_key_values=cache,
                use_cache=True)
    new_logits = out.logits.to(torch.promote_types(out.logits.dtype, torch.float32))  # bf16 up, never down
    seen: set[int] = set()
    encoded = []
    for u in src:
        encoded.append(0 if u in seen else len(keys[u]) - hits[u][1])
        seen.add(u)
    store.reused_tokens += sum(hits[u][1] for u in set(src))
    index = torch.tensor(src, device=device)
    if src != list(range(rows)):
        cache.batch_select_indices(index)
        mask, positions, new_logits, chunk = mask[index], positions[index], new_logits[index], chunk[index]
    return Prefill(cache, new_logits[:, -1, :], mask, positions, encoded, [hits[u][1] for u in src],
                   new_logits, chunk, [hits[u][0] for u in src])


def keep(store: KVStore, cache: DynamicCache, row: int, columns: torch.Tensor, ids: tuple[int, ...],
         extra: object = None) -> None:
    """Store the cache columns of batch row ``row`` (its real tokens, in order) as the entry for ``ids``."""
    layers = [(layer.keys[row][:, columns].clone(), layer.values[row][:, columns].clone()) for layer in cache.layers]
    store.put(ids, layers, extra)
