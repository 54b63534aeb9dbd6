"""The embedded store against a Milvus server, side by side in one run (issue 28).

``python -m eval.bench_stores [--sizes 1000,20000] [--clients 16] [--seconds 60]``
(``make bench-stores``; ``RAG_EMBEDDING_PRECISION=int8`` as the README's figures used).

For each size of the CRUD-RAG news corpus (the first N articles of ``../shared/data/crud-news``):

1. The embedded index is built, or reused from ``eval/.indexes/`` (an interrupted build
   resumes). The wall seconds the build took (embedding, lexicon, writing; once for both
   stores, which use the same vectors) are kept in its ``build.json``.
2. A Milvus 2.3.5 standalone server is started on loopback (eval.milvus_server) with a fresh
   data folder, and the index moves into it with its vectors (nothing is embedded again):
   the seconds this takes are the Milvus store's write time. The embedded store's write
   time is measured the same way, from the same vectors, into a fresh FAISS and BM25 index.
3. Each index is served by a fresh process that only loads it and answers the seed questions
   (eval.bench_scale's ``--measure``): store search, retrieval and answer latency, and that
   process's peak RSS.
4. ``rag serve`` over each index takes ``--clients`` concurrent clients for ``--seconds``,
   extractive (eval.bench_load): p50/p95, errors, requests/s, and the server's peak RSS.

The table goes to the terminal and ``eval/reports/bench_stores.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from api.process import server_process
from eval.bench_load import run_load
from eval.bench_scale import _measure, _peak_rss_mb
from eval.data import ROOT, load_shared
from eval.milvus_server import running_milvus
from eval.runner import index_settings, passage_documents
from rag.cli import ProgressLine
from rag.config import Settings
from rag.index.milvus import close_all
from rag.index.snapshot import load_snapshot, save_snapshot
from rag.index.stores import new_store
from rag.library import index_documents
from rag.service import make_embedder, store_config

SHARED = ROOT.parent / "shared" / "data"
INDEXES = ROOT / "eval" / ".indexes"
BUILD_FILE = "build.json"
_BATCH = 500  # documents per saved version while building: an interrupted build loses at most one batch


def _build_embedded(base: Settings, size: int, previous: Path | None) -> tuple[Settings, float]:
    """The embedded index of the first ``size`` articles (started from the next smaller one's
    copy), and the build's wall seconds (the smaller one's included), kept in its build.json."""
    settings = index_settings(base.model_copy(update={"store": "embedded"}), INDEXES, f"crud-news-{size}",
                              base.chunk_size, base.chunk_overlap)  # fmt: skip
    record = settings.index_dir / BUILD_FILE
    if record.exists():
        return settings, float(json.loads(record.read_text(encoding="utf-8"))["build_s"])
    if previous is not None and not (settings.index_dir / "CURRENT").exists():
        shutil.copytree(previous, settings.index_dir, ignore=shutil.ignore_patterns(".lock", ".resume"))
    known = json.loads((previous / BUILD_FILE).read_text()) if previous and (previous / BUILD_FILE).exists() else {}
    build_s = float(known.get("build_s", 0.0))
    started = time.perf_counter()
    news = load_shared(SHARED / "crud-news")
    documents = passage_documents(news.name, news.passages[:size])
    embedder = make_embedder(settings)
    progress = ProgressLine()
    for start in range(0, size, _BATCH):
        index_documents(settings, documents[start : start + _BATCH], embedder, progress=progress)
    progress.close()
    build_s += time.perf_counter() - started
    record.write_text(json.dumps({"articles": size, "build_s": build_s}), encoding="utf-8")
    return settings, build_s


def _write_store(settings: Settings, kind: str, target: Path, uri: str) -> tuple[Settings, float]:
    """A copy of the embedded index as a version in ``kind`` (the vectors moved, none embedded
    again); the seconds writing the store and saving the version took (the same steps for both)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(settings.index_dir, target, ignore=shutil.ignore_patterns(".lock", ".resume", BUILD_FILE))
    update: dict[str, object] = {"index_dir": target, "store": kind}
    if kind == "milvus":
        update |= {"milvus_uri": uri, "milvus_collection": f"bench_{target.name.replace('-', '_')}"}
    moved = settings.model_copy(update=update)
    snapshot = load_snapshot(target)
    vectors = snapshot.chunk_vectors()
    started = time.perf_counter()
    store = new_store(store_config(moved), target, vectors.shape[1]).updated([], snapshot.chunks, vectors)
    save_snapshot(replace(snapshot, store=store, manifest=replace(snapshot.manifest, store=kind)), target)
    seconds = time.perf_counter() - started
    if kind == "milvus":
        close_all()  # the serving processes open their own clients
    return moved, seconds


def _serve_under_load(settings: Settings, clients: int, seconds: float, log: Path) -> dict[str, float]:
    """``rag serve`` over the index, ``clients`` asking for ``seconds``; with the server's peak RSS."""
    env = {
        "RAG_INDEX_DIR": str(settings.index_dir),
        "RAG_STORE": settings.store,
        "RAG_MILVUS_URI": settings.milvus_uri,
        "RAG_MILVUS_COLLECTION": settings.milvus_collection,
        "RAG_GENERATOR": "extractive",
        "RAG_DOCUMENTS_DIR": str(log.parent / "documents"),
    }
    with server_process(env, log) as (url, process):
        result = asyncio.run(run_load(url, clients, seconds))
        peak = _peak_rss_mb(process.pid)
    return {**result, "server_rss_mb": peak}


def _table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| articles | chunks | store | index build s (once) | store write s | search p50 / p95 ms "
        "| retrieval p50 / p95 ms | serving RSS MB | load: p50 / p95 ms | load: requests/s | load: errors "
        "| load: server RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['articles']:,} | {r['chunks']:,} | {r['store']} | {r['build_s']:.0f} | {r['write_s']:.1f} "
            f"| {r['search_p50_ms']:.1f} / {r['search_p95_ms']:.1f} "
            f"| {r['retrieval_p50_ms']:.1f} / {r['retrieval_p95_ms']:.1f} | {r['peak_rss_mb']:,.0f} "
            f"| {r['p50_ms']:.0f} / {r['p95_ms']:.0f} | {r['requests_per_s']:.0f} | {r['errors']} "
            f"| {r['server_rss_mb']:,.0f} |"
        )
    return "\n".join(lines)


def _save(rows: list[dict[str, object]]) -> str:
    table = _table(rows)
    reports = ROOT / "eval" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "bench_stores.md").write_text(table + "\n", encoding="utf-8")
    (reports / "bench_stores.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,20000", help="news corpus sizes, ascending")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    base = Settings()
    rows: list[dict[str, object]] = []
    work = Path(tempfile.mkdtemp(prefix="bench-stores-"))
    previous: Path | None = None
    try:
        with running_milvus(work / "milvus") as uri:
            for size in sorted(int(x) for x in args.sizes.split(",") if x):
                built, build_s = _build_embedded(base, size, previous)
                previous = built.index_dir
                for kind in ("embedded", "milvus"):
                    print(f"{size:,} articles, {kind}: writing the store", file=sys.stderr, flush=True)
                    served, write_s = _write_store(built, kind, work / f"news-{size}-{kind}", uri)
                    print(f"{size:,} articles, {kind}: measuring", file=sys.stderr, flush=True)
                    measured = _measure(served)
                    load = _serve_under_load(served, args.clients, args.seconds, work / f"serve-{size}-{kind}.log")
                    rows.append({"articles": size, "store": "embedded" if kind == "embedded" else "Milvus 2.3.5 server",
                                 "write_s": write_s, "build_s": build_s, **measured, **load})  # fmt: skip
                    _save(rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(_save(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
