"""The stores by name: an empty one for a new index, and the one a saved version names.

The registry is the only module that knows every store, so a store's own module imports
just the protocol (rag.index.store) and never another store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rag.errors import IndexCorrupt
from rag.index.embedded import EmbeddedStore
from rag.index.store import REBUILD_HINT, ChunkStore, StoreConfig
from rag.types import Chunk


def _new_milvus(config: StoreConfig, index_dir: Path, dimension: int) -> ChunkStore:
    from rag.index.milvus import MilvusStore

    return MilvusStore.create(config, index_dir, dimension)


def _open_milvus(config: StoreConfig, index_dir: Path, folder: Path, chunks: Sequence[Chunk]) -> ChunkStore:
    from rag.index.milvus import MilvusStore

    return MilvusStore.open(config, index_dir, folder, chunks)


_NEW: dict[str, Callable[[StoreConfig, Path, int], ChunkStore]] = {
    "embedded": lambda _config, _index_dir, dimension: EmbeddedStore.empty(dimension),
    "milvus": _new_milvus,
}
_OPEN: dict[str, Callable[[StoreConfig, Path, Path, Sequence[Chunk]], ChunkStore]] = {
    "embedded": lambda _config, _index_dir, folder, chunks: EmbeddedStore.load(folder, chunks),
    "milvus": _open_milvus,
}


def new_store(config: StoreConfig, index_dir: Path, dimension: int) -> ChunkStore:
    """An empty store of the configured kind (for a new index, or one moving to another store)."""
    return _NEW[config.kind](config, index_dir, dimension)


def open_store(kind: str, config: StoreConfig, index_dir: Path, folder: Path, chunks: Sequence[Chunk]) -> ChunkStore:
    """The store of a saved version (``kind`` is what its manifest records)."""
    if kind not in _OPEN:
        raise IndexCorrupt(f"{folder}: unknown store {kind!r} (known: {', '.join(_OPEN)}); {REBUILD_HINT}")
    return _OPEN[kind](config, index_dir, folder, chunks)
