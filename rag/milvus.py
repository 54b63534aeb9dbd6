"""Chunks in Milvus (``RAG_STORE=milvus``): Milvus Lite in a local folder, or any Milvus server.

One collection holds every chunk row of every live version: its key, its document id and
publication day, its text, its keywords and its vector. Milvus searches vectors (exact
inner product on unit vectors: cosine), keywords (BM25 sparse vectors that Milvus computes
from text) and both fused by reciprocal rank, with the filters as Milvus expressions.

Keys tie rows to versions. A write inserts the new chunks under fresh keys and the version
folder records the keys it holds; a reader turns keys into its version's rows and skips
keys it does not know (a newer writer's rows, between their insert and the reader's next
reload). ``commit``, run once the new version is live, deletes the rows it dropped and
whatever a crashed writer left behind. Each key is ``generation << 20 | n``, the generation
a millisecond clock that only grows, so a crashed write's rows never collide with a later one's.

Keyword search reads one of two BM25 fields (``RAG_MILVUS_KEYWORDS``): ``client`` indexes
this service's own tokens (rag.lexical: jieba search mode and character bigrams, written out
space-separated for Milvus' standard analyzer), ``milvus`` the raw text through Milvus' jieba
analyzer. README "Stores" compares them on CMRC 2018.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.embedding import Vectors
from rag.errors import IndexCorrupt, IndexMismatch, StoreUnavailable
from rag.lexical import chunk_tokens, query_tokens
from rag.store import REBUILD_HINT, Hit, StoreConfig, Where, fused_search, with_cosines
from rag.types import Chunk, passage_text

_log = logging.getLogger(__name__)

KEYS_FILE = "milvus.keys.npy"
_GENERATION_SHIFT = 20
_BATCH = 512
_MAX_TEXT_BYTES = 65_535
_MAX_LIMIT = 16_384
_KEYWORD_FIELDS = {"client": "sparse_client", "milvus": "sparse_milvus"}
_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


class _QuietUnimplemented(logging.Filter):
    """Milvus Lite's server logs a traceback for each RPC it lacks (pymilvus asks it for
    timestamps on connect); those are expected, the rest still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Method not implemented" not in record.getMessage()


def _client(uri: str, token: str) -> Any:
    """One client per server and credentials in a process (Milvus Lite runs one server per folder)."""
    with _clients_lock:
        if (uri, token) not in _clients:
            try:
                from pymilvus import MilvusClient
            except ImportError as exc:
                raise StoreUnavailable(
                    "RAG_STORE=milvus needs pymilvus and milvus-lite: pip install -e '.[milvus]'"
                ) from exc
            if uri.endswith(".db"):
                logging.getLogger("grpc._server").addFilter(_QuietUnimplemented())
            try:
                _clients[(uri, token)] = MilvusClient(uri=uri, token=token)
            except Exception as exc:
                raise StoreUnavailable(f"cannot reach Milvus at {uri}: {exc}") from exc
        return _clients[(uri, token)]


def _fit(text: str, limit: int = _MAX_TEXT_BYTES) -> str:
    """The text cut to Milvus' VARCHAR limit in UTF-8 bytes (at a space when it has to cut)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = data[:limit].decode("utf-8", errors="ignore")
    return cut[: cut.rfind(" ")] if " " in cut else cut


def client_keywords(tokens: Sequence[str]) -> str:
    """Tokens as one string that Milvus' standard analyzer (``\\w+``) splits back into them:
    a bigram's ``#`` marker becomes ``_``, which the analyzer keeps inside a word."""
    return " ".join(t.replace("#", "_") for t in tokens)


def _literal(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def filter_expression(where: Where | None) -> str:
    """A Milvus boolean expression for the filter ("" when it filters nothing)."""
    if where is None or where.is_empty():
        return ""
    parts = []
    if where.doc_ids is not None:
        parts.append(f"doc_id in [{', '.join(_literal(d) for d in sorted(where.doc_ids))}]")
    if where.published_from:
        parts.append(f'(published != "" and published >= {_literal(where.published_from)})')
    if where.published_to:
        parts.append(f'(published != "" and published <= {_literal(where.published_to)})')
    return " and ".join(parts)


def _batches(items: Sequence[Any], size: int = _BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MilvusStore:
    """A version's rows in a Milvus collection (see the module docstring)."""

    kind = "milvus"

    def __init__(
        self,
        client: Any,
        config: StoreConfig,
        dimension: int,
        keys: npt.NDArray[np.int64],
        retired: npt.NDArray[np.int64] | None = None,
    ) -> None:
        self._client = client
        self._config = config
        self._collection = config.milvus_collection
        self._dimension = dimension
        self._keys = keys
        self._retired = retired if retired is not None else np.zeros(0, dtype=np.int64)
        self._row_of = {int(key): row for row, key in enumerate(keys)}

    @classmethod
    def create(cls, config: StoreConfig, index_dir: Path, dimension: int) -> MilvusStore:
        """An empty view of the configured collection, which is created when missing."""
        uri = config.uri(index_dir)
        client = _client(uri, config.milvus_token)
        try:
            if client.has_collection(config.milvus_collection):
                cls._check_dimension(client, config.milvus_collection, dimension)
            else:
                cls._create_collection(client, config.milvus_collection, dimension)
        except (IndexMismatch, StoreUnavailable):
            raise
        except Exception as exc:
            raise StoreUnavailable(f"Milvus at {uri}: {exc}") from exc
        return cls(client, config, dimension, np.zeros(0, dtype=np.int64))

    @classmethod
    def open(cls, config: StoreConfig, index_dir: Path, folder: Path, chunks: Sequence[Chunk]) -> MilvusStore:
        """The rows a saved version holds in the collection."""
        try:
            keys = np.load(folder / KEYS_FILE).astype(np.int64)
            meta = json.loads((folder / "milvus.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexCorrupt(f"{folder}: unreadable Milvus keys; {REBUILD_HINT}") from exc
        if len(keys) != len(chunks):
            raise IndexCorrupt(f"{folder}: {len(keys)} Milvus keys for {len(chunks)} chunks; {REBUILD_HINT}")
        config = StoreConfig(
            "milvus", config.milvus_uri, config.milvus_token, str(meta["collection"]), config.milvus_keywords
        )
        uri = config.uri(index_dir)
        client = _client(uri, config.milvus_token)
        try:
            if not client.has_collection(config.milvus_collection):
                raise IndexCorrupt(
                    f"{folder}: Milvus at {uri} has no collection {config.milvus_collection!r}; {REBUILD_HINT}"
                )
            client.load_collection(config.milvus_collection)
        except IndexCorrupt:
            raise
        except Exception as exc:
            raise StoreUnavailable(f"Milvus at {uri}: {exc}") from exc
        return cls(client, config, int(meta["dimension"]), keys)

    @staticmethod
    def _create_collection(client: Any, name: str, dimension: int) -> None:
        from pymilvus import DataType, Function, FunctionType

        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("gen", DataType.INT64)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=2048)
        schema.add_field("published", DataType.VARCHAR, max_length=16)
        schema.add_field(
            "text", DataType.VARCHAR, max_length=_MAX_TEXT_BYTES, enable_analyzer=True,
            analyzer_params={"tokenizer": "jieba"},
        )  # fmt: skip
        schema.add_field(
            "keywords", DataType.VARCHAR, max_length=_MAX_TEXT_BYTES, enable_analyzer=True,
            analyzer_params={"tokenizer": "standard"},
        )  # fmt: skip
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field("sparse_milvus", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("sparse_client", DataType.SPARSE_FLOAT_VECTOR)
        for source, target in (("text", "sparse_milvus"), ("keywords", "sparse_client")):
            schema.add_function(
                Function(
                    name=f"bm25_{source}",
                    function_type=FunctionType.BM25,
                    input_field_names=[source],
                    output_field_names=[target],
                )
            )
        index = client.prepare_index_params()
        index.add_index("vec", index_type="FLAT", metric_type="IP")
        for field in _KEYWORD_FIELDS.values():
            index.add_index(field, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")

    @staticmethod
    def _check_dimension(client: Any, name: str, dimension: int) -> None:
        fields = client.describe_collection(name).get("fields", [])
        dims = [int(f.get("params", {}).get("dim", 0)) for f in fields if f.get("name") == "vec"]
        if dims != [dimension]:
            raise IndexMismatch(
                f"the Milvus collection {name!r} holds {dims[0] if dims else 'no'}-dimensional vectors, the "
                f"embedding model gives {dimension}; drop it or set RAG_MILVUS_COLLECTION to another name"
            )

    def __len__(self) -> int:
        return len(self._keys)

    def _rows(self, found: Any, k: int) -> list[Hit]:
        """Search results as (row, score): keys this version holds, best first, at most k."""
        hits = []
        for item in found[0] if found else []:
            row = self._row_of.get(int(item["id"]))
            if row is not None:
                hits.append((row, float(item["distance"])))
        return hits[:k]

    def _limit(self, k: int) -> int:
        # Rows of a newer version (not yet reloaded) may take places: ask for more than k.
        return min(_MAX_LIMIT, 2 * k + 10)

    def _call(self, what: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, what)(self._collection, *args, **kwargs)
        except Exception as exc:
            raise StoreUnavailable(f"Milvus {what} on {self._collection!r} failed: {exc}") from exc

    def dense_search(self, query: Vectors, k: int, where: Where | None = None) -> list[Hit]:
        if not len(self) or k <= 0:
            return []
        found = self._call(
            "search", [np.asarray(query, dtype=np.float32).tolist()], anns_field="vec", limit=self._limit(k),
            filter=filter_expression(where), search_params={"metric_type": "IP"}, output_fields=["gen"],
        )  # fmt: skip
        return self._rows(found, k)

    def _keyword_query(self, question: str) -> str:
        tokens = query_tokens(question)
        if self._config.milvus_keywords == "client":
            return client_keywords(tokens)
        return " ".join(t for t in tokens if not t.startswith("#"))

    def keyword_search(self, question: str, k: int, where: Where | None = None) -> list[Hit]:
        text = self._keyword_query(question)
        if not len(self) or k <= 0 or not text:
            return []
        found = self._call(
            "search", [text], anns_field=_KEYWORD_FIELDS[self._config.milvus_keywords], limit=self._limit(k),
            filter=filter_expression(where), search_params={"metric_type": "BM25"}, output_fields=["gen"],
        )  # fmt: skip
        return self._rows(found, k)

    def hybrid_search(
        self, query: Vectors, question: str, k: int, depth: int, rrf_k: int, lexical_weight: float,
        where: Where | None = None,
    ) -> list[Hit]:  # fmt: skip
        text = self._keyword_query(question)
        if lexical_weight != 1.0 or not text or not len(self):
            # Milvus' RRF ranker has no weights; the weighted fusion runs here.
            return fused_search(self, query, question, k, depth, rrf_k, lexical_weight, where)
        from pymilvus import AnnSearchRequest, RRFRanker

        expr = filter_expression(where)
        requests = [
            AnnSearchRequest(
                [np.asarray(query, dtype=np.float32).tolist()], "vec", {"metric_type": "IP"},
                limit=self._limit(max(depth, k)), expr=expr,
            ),
            AnnSearchRequest(
                [text], _KEYWORD_FIELDS[self._config.milvus_keywords], {"metric_type": "BM25"},
                limit=self._limit(depth), expr=expr,
            ),
        ]  # fmt: skip
        found = self._call("hybrid_search", requests, RRFRanker(rrf_k), limit=self._limit(k), output_fields=["gen"])
        return with_cosines(self, query, [row for row, _ in self._rows(found, k)])

    def vectors(self, rows: Sequence[int]) -> Vectors:
        out = np.zeros((len(rows), self._dimension), dtype=np.float32)
        if not len(rows):
            return out
        keys = self._keys[np.asarray(rows, dtype=np.int64)]
        where = {int(key): n for n, key in enumerate(keys)}
        for batch in _batches(keys.tolist()):
            for item in self._call("get", ids=list(batch), output_fields=["vec"]):
                out[where[int(item["id"])]] = np.asarray(item["vec"], dtype=np.float32)
        return out

    def updated(self, keep: Sequence[int], chunks: Sequence[Chunk], vectors: Vectors) -> MilvusStore:
        new = chunks[len(keep) :]
        if len(new) != len(vectors):
            raise ValueError(f"{len(new)} new chunks but {len(vectors)} vectors")
        newest = int(self._keys.max()) >> _GENERATION_SHIFT if len(self._keys) else 0
        first = max(time.time_ns() // 1_000_000, newest + 1) << _GENERATION_SHIFT
        new_keys = first + np.arange(len(new), dtype=np.int64)
        for start in range(0, len(new), _BATCH):
            rows = [
                {
                    "id": int(key),
                    "gen": int(key) >> _GENERATION_SHIFT,
                    "doc_id": chunk.doc_id,
                    "published": chunk.published,
                    "text": _fit(passage_text(chunk)),
                    "keywords": _fit(client_keywords(chunk_tokens(chunk))),
                    "vec": np.asarray(vector, dtype=np.float32).tolist(),
                }
                for key, chunk, vector in zip(
                    new_keys[start : start + _BATCH], new[start : start + _BATCH], vectors[start : start + _BATCH],
                    strict=True,
                )
            ]  # fmt: skip
            self._call("insert", rows)
        kept = self._keys[np.asarray(keep, dtype=np.int64)] if len(keep) else np.zeros(0, dtype=np.int64)
        retired = np.setdiff1d(self._keys, kept)
        return MilvusStore(self._client, self._config, self._dimension, np.concatenate([kept, new_keys]), retired)

    def save(self, folder: Path) -> None:
        # The rows must be durable before a version names them.
        self._call("flush")
        np.save(folder / KEYS_FILE, self._keys)
        meta = {"collection": self._collection, "dimension": self._dimension}
        (folder / "milvus.json").write_text(json.dumps(meta), encoding="utf-8")

    def commit(self) -> None:
        for batch in _batches(self._retired.tolist()):
            self._call("delete", ids=list(batch))
        generations = sorted({int(k) >> _GENERATION_SHIFT for k in self._keys})
        # Rows of no generation this version holds: a replaced index, or a crashed write.
        self._call("delete", filter=f"gen not in {generations}" if generations else "gen >= 0")
        self._retired = np.zeros(0, dtype=np.int64)
