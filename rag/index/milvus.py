"""Chunks in Milvus (``RAG_STORE=milvus``): Milvus Lite in a local folder, or any Milvus server.

One collection holds every chunk row of every live version: its key, its document id and
publication day, its text, its keywords and its vector. Milvus searches vectors (exact
inner product on unit vectors: cosine), keywords (BM25 sparse vectors that Milvus computes
from text) and both fused by reciprocal rank, with the filters as Milvus expressions.

Keys tie rows to versions. A write inserts the new chunks under fresh keys and the version
folder records the keys it holds; a reader turns keys into its version's rows and skips
keys it does not know (a newer writer's rows, between their insert and the reader's next
reload). Deletes wait one version: ``commit``, run once a new version is live, deletes the
rows that only the version before the replaced one held, and whatever a crashed writer left
behind; the replaced version, still on disk and perhaps still being read, keeps every row.
Each key is ``generation << 20 | n``, the generation a millisecond clock that only grows, so
a crashed write's rows never collide with a later one's. One collection belongs to one
index folder (an id in the folder, a property of the collection).

Reads wait for exactly the writes their version names: a version records the server's
timestamp of its last write (``written_ts`` in ``milvus.json``), and every search and get
passes it as the guarantee timestamp. A server then answers at once from the rows it has,
once it has applied that write. "Strong" consistency, which the collection was first made
with, made a Milvus 2.3 server wait for its next time tick (200 ms) on every call: 212 ms a
search at 1,000 news articles against 1.3 ms now (README "Stores").

Keyword search is BM25 that Milvus computes over this service's own tokens (rag.index.lexical:
jieba search mode and character bigrams), each written as a hex word (``client_keywords``)
so that any Milvus analyzer splits them back unchanged: both stores match the same words.
Milvus' own jieba analyzer on the raw text ranked worse on CMRC 2018 (keyword recall@1
0.960 against 0.975; README "Stores").

A server without built-in BM25 (Milvus before 2.5: "create index on 104 field is not
supported") gets a collection of vectors and filter fields only, and the keyword half runs
in this service: the same BM25 over the same tokens as the embedded store, saved in the
version folder (``lexical`` in ``milvus.json`` says which). Hybrid retrieval keeps both halves.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.errors import IndexCorrupt, IndexMismatch, StoreUnavailable
from rag.fileio import write_atomically
from rag.index.embedding import Vectors
from rag.index.lexical import ChunkKeywords, build_lexical, chunk_tokens, query_tokens
from rag.index.store import REBUILD_HINT, Hit, StoreConfig, Where, fused_search, with_cosines
from rag.types import Chunk, passage_text

_log = logging.getLogger(__name__)

KEYS_FILE = "milvus.keys.npy"
RETIRED_FILE = "milvus.retired.npy"
META_FILE = "milvus.json"
OWNER_FILE = "milvus.owner"
_OWNER_PROPERTY = "rag_index"
_GENERATION_SHIFT = 20
_BATCH = 512
_MAX_TEXT_BYTES = 65_535
_MAX_LIMIT = 16_384
# A server's vectors: IVF with 128 lists, 16 probed (an eighth of each sealed segment is read;
# segments under Milvus' index threshold, and rows not yet sealed, are searched exactly).
# At 20,000 news articles (64,081 rows) a search took 1.5 ms against 4.5 ms exact (FLAT); its
# recall against exact search was not measured (README "Stores").
_NLIST = 128
_DENSE_PARAMS = {"metric_type": "IP", "params": {"nprobe": 16}}
_prefetch = ThreadPoolExecutor(max_workers=4, thread_name_prefix="milvus-prefetch")
_KEYWORDS = "sparse"
_IN_SERVICE = "service"  # milvus.json's lexical: BM25 computed by this service
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
            # pymilvus logs each failed call with a traceback at error level; this module logs
            # each one once, in its own words (``_call``), and the capability probe's refusal is expected.
            logging.getLogger("pymilvus.decorators").setLevel(logging.CRITICAL)
            if uri.endswith(".db"):
                logging.getLogger("grpc._server").addFilter(_QuietUnimplemented())
            if uri.endswith(".db") and _locked(Path(uri) / "LOCK"):
                raise StoreUnavailable(
                    f"another process has the Milvus Lite folder {uri} open (one process at a time): add documents "
                    "through the running server's API, or stop it first"
                )
            # Milvus Lite's in-process server refuses pymilvus' 10 s keepalive pings ("too_many_pings",
            # logged at error level by gRPC); on loopback, in one process, they serve nothing.
            lite = {"grpc.keepalive_time_ms": 3_600_000, "grpc.keepalive_permit_without_calls": False}
            try:
                _clients[(uri, token)] = MilvusClient(
                    uri=uri, token=token, grpc_options=lite if uri.endswith(".db") else {}
                )
            except Exception as exc:
                _log.warning("cannot reach Milvus at %s: %r", uri, exc)
                raise StoreUnavailable(f"cannot reach Milvus at {uri} (RAG_MILVUS_URI); the log says why") from exc
        return _clients[(uri, token)]


def close_all() -> None:
    """Close this process's Milvus clients and stop its Milvus Lite servers, freeing their
    folders for another process (a benchmark's serving process, say)."""
    with _clients_lock:
        for (uri, _), client in list(_clients.items()):
            with contextlib.suppress(Exception):
                client.close()
            if uri.endswith(".db"):
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(uri)
        _clients.clear()


def _locked(lock: Path) -> bool:
    """Whether another process holds Milvus Lite's lock on its folder (it allows one)."""
    try:
        with lock.open("a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False  # no folder yet: Milvus Lite makes it
    return False


def _fit(text: str, limit: int = _MAX_TEXT_BYTES) -> str:
    """The text cut to Milvus' VARCHAR limit in UTF-8 bytes (at a space when it has to cut)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = data[:limit].decode("utf-8", errors="ignore")
    return cut[: cut.rfind(" ")] if " " in cut else cut


def client_keywords(tokens: Sequence[str]) -> str:
    """Tokens as one string of words that any of Milvus' analyzers splits back into them:
    each token becomes 16 hex digits (64 bits of its hash). Milvus Lite's standard analyzer
    keeps a run of Chinese characters whole while a server's splits it into characters,
    and either may drop the ``#`` of a bigram token; a run of ASCII letters and digits is
    one word to both."""
    return " ".join(hashlib.blake2b(t.encode(), digest_size=8).hexdigest() for t in tokens)


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
        local: ChunkKeywords | None = None,
        written_ts: int = 0,
    ) -> None:
        """``local``: the keyword half this service keeps for a server without BM25; None:
        Milvus computes BM25. ``written_ts``: the server's timestamp of the version's last write."""
        self._client = client
        self._local = local
        self._config = config
        self._collection = config.milvus_collection
        self._dimension = dimension
        self._keys = keys
        # Rows the version before this one held and this one does not: deleted one
        # version later, when no reader can still be on that version.
        self._retired = retired if retired is not None else np.zeros(0, dtype=np.int64)
        self._row_of = {int(key): row for row, key in enumerate(keys)}
        self._written_ts = written_ts

    def _read(self) -> dict[str, Any]:
        """How a read waits for this version's rows: until the server has applied the version's
        last write (none: a version saved before timestamps were kept waits for everything)."""
        if self._written_ts:
            return {"consistency_level": "Customized", "guarantee_timestamp": self._written_ts}
        return {"consistency_level": "Strong"}

    def _last_write_ts(self) -> int:
        """The server's timestamp of this process's last write to the collection (0: unknown)."""
        try:
            from pymilvus.client import ts_utils

            handler = self._client._get_connection()
            return int(ts_utils.get_collection_ts(self._collection, handler.server_address) or 0)
        except Exception:  # a client without the cache: reads fall back to strong consistency
            return 0

    @classmethod
    def create(cls, config: StoreConfig, index_dir: Path, dimension: int) -> MilvusStore:
        """An empty view of the configured collection, which is created when missing."""
        uri = config.uri(index_dir)
        client = _client(uri, config.milvus_token)
        owner = _owner(index_dir)
        name = config.milvus_collection
        try:
            exists = client.has_collection(name)
            bm25 = cls._create_collection(client, name, dimension, owner, uri) if not exists else True
        except Exception as exc:
            _log.warning("Milvus at %s: %r", uri, exc)
            raise StoreUnavailable(
                f"Milvus at {uri} could not create the collection {name!r}; the log says why"
            ) from exc
        if exists:
            bm25 = cls._check_collection(client, name, dimension, owner, uri)
        local = None if bm25 else ChunkKeywords(build_lexical(()), ())
        return cls(client, replace(config, milvus_uri=uri), dimension, np.zeros(0, dtype=np.int64), local=local)

    @classmethod
    def open(cls, config: StoreConfig, index_dir: Path, folder: Path, chunks: Sequence[Chunk]) -> MilvusStore:
        """The rows a saved version holds in the collection."""
        try:
            keys = np.load(folder / KEYS_FILE).astype(np.int64)
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            collection, dimension, made_at = str(meta["collection"]), int(meta["dimension"]), str(meta["uri"])
            in_service = meta.get("lexical") == _IN_SERVICE
            written_ts = int(meta.get("written_ts", 0))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorrupt(f"{folder}: unreadable {KEYS_FILE} or {META_FILE}; {REBUILD_HINT}") from exc
        if len(keys) != len(chunks):
            raise IndexCorrupt(f"{folder}: {len(keys)} Milvus keys for {len(chunks)} chunks; {REBUILD_HINT}")
        config = StoreConfig("milvus", config.milvus_uri, config.milvus_token, collection)
        uri = config.uri(index_dir)
        client = _client(uri, config.milvus_token)
        try:
            exists = client.has_collection(collection)
            if exists:
                client.load_collection(collection)
        except Exception as exc:
            _log.warning("Milvus at %s: %r", uri, exc)
            raise StoreUnavailable(f"Milvus at {uri} did not answer (RAG_MILVUS_URI); the log says why") from exc
        if not exists:
            elsewhere = f"; it was built in {made_at}" if made_at != uri else ""
            raise IndexCorrupt(
                f"{folder}: Milvus at {uri} has no collection {collection!r}{elsewhere}: set RAG_MILVUS_URI to that "
                f"server, or {REBUILD_HINT}"
            )
        cls._check_collection(client, collection, dimension, _owner(index_dir), uri)
        local = ChunkKeywords.load(folder, chunks) if in_service else None
        return cls(client, replace(config, milvus_uri=uri), dimension, keys, local=local, written_ts=written_ts)

    @staticmethod
    def _create_collection(client: Any, name: str, dimension: int, owner: str, uri: str) -> bool:
        """Make the collection; whether Milvus computes BM25 in it (a server before 2.5 cannot:
        the collection then holds vectors and filter fields, and keyword search runs here)."""
        from pymilvus import DataType, Function, FunctionType

        def schema(bm25: bool) -> Any:
            made = client.create_schema(auto_id=False)
            made.add_field("id", DataType.INT64, is_primary=True)
            made.add_field("gen", DataType.INT64)
            made.add_field("doc_id", DataType.VARCHAR, max_length=2048)
            made.add_field("published", DataType.VARCHAR, max_length=16)
            # The passage as shown (title and text): for tools that browse the collection.
            made.add_field("text", DataType.VARCHAR, max_length=_MAX_TEXT_BYTES)
            made.add_field("vec", DataType.FLOAT_VECTOR, dim=dimension)
            if bm25:
                made.add_field(
                    "keywords", DataType.VARCHAR, max_length=_MAX_TEXT_BYTES, enable_analyzer=True,
                    analyzer_params={"tokenizer": "standard"},
                )  # fmt: skip
                made.add_field(_KEYWORDS, DataType.SPARSE_FLOAT_VECTOR)
                bm25_function = Function(
                    name="bm25", function_type=FunctionType.BM25, input_field_names=["keywords"],
                    output_field_names=[_KEYWORDS],
                )  # fmt: skip
                made.add_function(bm25_function)
            return made

        def create(bm25: bool) -> None:
            index = client.prepare_index_params()
            if uri.endswith(".db"):  # Milvus Lite: exact search
                index.add_index("vec", index_type="FLAT", metric_type="IP")
            else:
                index.add_index("vec", index_type="IVF_FLAT", metric_type="IP", params={"nlist": _NLIST})
            if bm25:
                index.add_index(_KEYWORDS, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
            client.create_collection(
                name, schema=schema(bm25), index_params=index, consistency_level="Strong",
                properties={_OWNER_PROPERTY: owner},
            )  # fmt: skip

        try:
            create(bm25=True)
            return True
        except Exception as exc:
            _log.info("Milvus at %s has no built-in BM25 (%r): keyword search runs in this service", uri, exc)
            if client.has_collection(name):  # made before its BM25 index was refused
                client.drop_collection(name)
        create(bm25=False)
        return False

    @staticmethod
    def _check_collection(client: Any, name: str, dimension: int, owner: str, uri: str) -> bool:
        """Refuse a collection of another index, another embedding dimension or another layout;
        whether Milvus computes BM25 in it."""
        try:
            described = client.describe_collection(name)
        except Exception as exc:
            _log.warning("Milvus at %s: %r", uri, exc)
            raise StoreUnavailable(f"Milvus at {uri} did not describe {name!r}; the log says why") from exc
        fields = {f.get("name"): f for f in described.get("fields", [])}
        dim = int(fields.get("vec", {}).get("params", {}).get("dim", 0))
        other = "drop it or set RAG_MILVUS_COLLECTION to another name"
        if dim != dimension:
            raise IndexMismatch(
                f"the Milvus collection {name!r} holds {dim or 'no'}-dimensional vectors, the embedding model "
                f"gives {dimension}; {other}"
            )
        if not {"id", "gen", "doc_id", "published", "vec"} <= set(fields):
            raise IndexMismatch(f"the Milvus collection {name!r} was not made by this version of the service; {other}")
        found = str((described.get("properties") or {}).get(_OWNER_PROPERTY, ""))
        if found != owner:
            # Each version owns every row of its collection: two indexes in one would delete each other's rows.
            raise IndexMismatch(f"the Milvus collection {name!r} belongs to another index folder; {other}")
        return {"keywords", _KEYWORDS} <= set(fields)

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
            _log.warning("Milvus %s on %r failed: %r", what, self._collection, exc)
            raise StoreUnavailable(
                f"Milvus {what} on {self._collection!r} failed (RAG_MILVUS_URI); the log says why"
            ) from exc

    # Searches name one small output field: without it Milvus returns every field of every hit.
    def dense_search(self, query: Vectors, k: int, where: Where | None = None) -> list[Hit]:
        if not len(self) or k <= 0:
            return []
        found = self._call(
            "search", [np.asarray(query, dtype=np.float32).tolist()], anns_field="vec", limit=self._limit(k),
            filter=filter_expression(where), search_params=_DENSE_PARAMS,
            output_fields=["gen"], **self._read(),
        )  # fmt: skip
        return self._rows(found, k)

    @property
    def lexical(self) -> str:
        """Where BM25 is computed: ``milvus`` (the server) or ``service`` (a server before 2.5)."""
        return "milvus" if self._local is None else "service"

    def keyword_search(self, question: str, k: int, where: Where | None = None) -> list[Hit]:
        if self._local is not None:
            return self._local.search(question, k, where)
        text = client_keywords(query_tokens(question))
        if not len(self) or k <= 0 or not text:
            return []
        found = self._call(
            "search", [text], anns_field=_KEYWORDS, limit=self._limit(k), filter=filter_expression(where),
            search_params={"metric_type": "BM25"}, output_fields=["gen"], **self._read(),
        )  # fmt: skip
        return self._rows(found, k)

    def hybrid_search(
        self, query: Vectors, question: str, k: int, depth: int, rrf_k: int, lexical_weight: float,
        where: Where | None = None,
    ) -> list[Hit]:  # fmt: skip
        text = client_keywords(query_tokens(question))
        if lexical_weight != 1.0 or not text or not len(self) or self._local is not None:
            # Milvus' RRF ranker has no weights; the weighted fusion runs here.
            return fused_search(
                self, query, question, k, depth, rrf_k, lexical_weight, where,
                prefetch=self._prefetch if self._local is not None else None,
            )  # fmt: skip
        from pymilvus import AnnSearchRequest, RRFRanker

        expr = filter_expression(where)
        requests = [
            AnnSearchRequest(
                [np.asarray(query, dtype=np.float32).tolist()], "vec", _DENSE_PARAMS,
                limit=self._limit(max(depth, k)), expr=expr,
            ),
            AnnSearchRequest([text], _KEYWORDS, {"metric_type": "BM25"}, limit=self._limit(depth), expr=expr),
        ]  # fmt: skip
        found = self._call(
            "hybrid_search", requests, RRFRanker(rrf_k), limit=self._limit(k), output_fields=["gen"], **self._read()
        )
        return with_cosines(self, query, [row for row, _ in self._rows(found, k)])

    def _prefetch(self, rows: Sequence[int]) -> Future[Vectors]:
        """The rows' vectors fetched while the dense search runs (one round trip instead of two)."""
        return _prefetch.submit(self.vectors, rows)

    def vectors(self, rows: Sequence[int]) -> Vectors:
        out = np.zeros((len(rows), self._dimension), dtype=np.float32)
        if not len(rows):
            return out
        keys = self._keys[np.asarray(rows, dtype=np.int64)]
        unique = sorted({int(key) for key in keys})
        found: dict[int, Vectors] = {}
        for batch in _batches(unique):
            for item in self._call("get", ids=list(batch), output_fields=["vec"], **self._read()):
                found[int(item["id"])] = np.asarray(item["vec"], dtype=np.float32)
        missing = [key for key in unique if key not in found]
        if missing:
            raise IndexCorrupt(
                f"the Milvus collection {self._collection!r} lacks {len(missing)} rows this version holds; "
                f"{REBUILD_HINT}"
            )
        for n, key in enumerate(keys):
            out[n] = found[int(key)]
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
                    "vec": np.asarray(vector, dtype=np.float32).tolist(),
                    **({} if self._local is not None else {"keywords": _fit(client_keywords(chunk_tokens(chunk)))}),
                }
                for key, chunk, vector in zip(
                    new_keys[start : start + _BATCH], new[start : start + _BATCH], vectors[start : start + _BATCH],
                    strict=True,
                )
            ]  # fmt: skip
            self._call("insert", rows)
        kept = self._keys[np.asarray(keep, dtype=np.int64)] if len(keep) else np.zeros(0, dtype=np.int64)
        retired = np.setdiff1d(self._keys, kept)
        local = self._local.updated(keep, chunks) if self._local is not None else None
        return MilvusStore(
            self._client,
            self._config,
            self._dimension,
            np.concatenate([kept, new_keys]),
            retired,
            local,
            self._last_write_ts() if len(new) else self._written_ts,
        )

    def save(self, folder: Path) -> None:
        # The rows must be durable before a version names them.
        self._call("flush")
        self._written_ts = max(self._written_ts, self._last_write_ts())
        np.save(folder / KEYS_FILE, self._keys)
        np.save(folder / RETIRED_FILE, self._retired)
        meta: dict[str, object] = {
            "collection": self._collection, "dimension": self._dimension, "uri": self._uri(),
            "written_ts": self._written_ts,
        }  # fmt: skip
        if self._local is not None:
            self._local.save(folder)
            meta["lexical"] = _IN_SERVICE
        (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")

    def _uri(self) -> str:
        """Where the collection is, without credentials."""
        uri = self._config.milvus_uri
        return uri.split("@", 1)[-1] if "://" in uri else uri

    def commit(self, previous: Path | None) -> None:
        """Delete what no reader can need any more: the rows the replaced version had retired
        (only the version before it held them), and rows of generations neither this version
        nor the replaced one holds (an index built anew, or a writer that crashed before its
        version went live). A failure is logged: the rows stay, harmless, as no version names them."""
        keep = set(self._keys.tolist())
        retired = np.zeros(0, dtype=np.int64)
        if previous is not None and (previous / KEYS_FILE).exists():
            try:
                keep |= set(np.load(previous / KEYS_FILE).tolist())
                retired = np.load(previous / RETIRED_FILE)
            except (OSError, ValueError) as exc:
                _log.warning("%s: unreadable Milvus keys (%r); its rows are kept", previous, exc)
                return
        generations = sorted({key >> _GENERATION_SHIFT for key in keep})
        try:
            for batch in _batches([int(key) for key in retired if int(key) not in keep]):
                self._call("delete", ids=list(batch))
            self._call("delete", filter=f"gen not in {generations}" if generations else "gen >= 0")
        except StoreUnavailable:
            _log.warning("rows no version holds stay in %r until a later write", self._collection)


def _owner(index_dir: Path) -> str:
    """The index folder's id, made on first use: a collection names the index that owns it."""
    path = index_dir / OWNER_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        index_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(path, uuid.uuid4().hex.encode(), prefix=".owner-")
        return path.read_text(encoding="utf-8").strip()
