"""Query latency and serving memory as the corpus grows: the seed page, CMRC 2018, and
CRUD-RAG news at 1k/5k/20k, in the configured store and embedding precision.

``python -m eval.bench_scale [--news 1000,5000,20000]`` (``RAG_STORE=milvus``,
``RAG_EMBEDDING_PRECISION=int8`` to measure those). Indexes live under ``eval/.indexes/``
and are kept between runs; an interrupted news build resumes from the vectors it had made
(rag.index.build.ResumeCache). The report says how long each build step took (this run's
embedding only; reused steps show 0).

Each corpus is measured in a fresh process that only serves (``--measure FOLDER``): its
peak RSS is what a server of that index needs, not what building it took. Latency uses
the seed questions as queries: retrieval alone (embed + search), and retrieval plus the
extractive answer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from eval.data import ROOT, SEED_DOCS, load_seed, load_shared
from eval.metrics import percentile
from eval.runner import Config, index_settings, passage_documents, prepare_index
from rag.answer.analysis import analyse
from rag.answer.generators import Generators
from rag.answer.stream import Answerer, Query
from rag.cli import ProgressLine
from rag.config import Settings
from rag.library import index_documents
from rag.service import make_embedder, open_pipeline

SHARED = ROOT.parent / "shared" / "data"
INDEXES = ROOT / "eval" / ".indexes"


def _questions() -> list[str]:
    return [q.question for q in load_seed().questions]


def _measure(settings: Settings) -> dict[str, float]:
    """In a fresh process: load the index as a server does, time the seed questions, report peak RSS."""
    if settings.store == "milvus":
        from rag.index.milvus import close_all

        close_all()  # Milvus Lite opens a folder in one process at a time
    command = [sys.executable, "-m", "eval.bench_scale", "--measure", str(settings.index_dir)]
    env = {**os.environ, "RAG_STORE": settings.store, "RAG_MILVUS_COLLECTION": settings.milvus_collection}
    env["RAG_MILVUS_URI"] = settings.milvus_uri
    env.update({"RAG_CHUNK_SIZE": str(settings.chunk_size), "RAG_CHUNK_OVERLAP": str(settings.chunk_overlap)})
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=ROOT)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _peak_rss_mb(pid: int | str = "self") -> float:
    """A process's peak RSS since it started (this one by default). Not ``ru_maxrss``: Linux
    carries the parent's peak at fork over into it, and the parent here is the process that
    built the index."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def _latency(settings: Settings, questions: list[str]) -> dict[str, float]:
    started = time.perf_counter()
    pipeline = open_pipeline(settings)
    pipeline.warm_up()
    load_s = time.perf_counter() - started
    answerer = Answerer(pipeline, Generators(settings), settings)
    retrieval_ms, search_ms, answer_ms = [], [], []
    for question in questions[:5]:
        pipeline.retrieve(analyse(question), settings.top_k)
    for question in questions:
        started = time.perf_counter()
        timings = pipeline.retrieve(analyse(question), settings.top_k).timings_ms
        retrieval_ms.append((time.perf_counter() - started) * 1000)
        search_ms.append(timings["search_ms"])
        started = time.perf_counter()
        answerer.ask(Query(question, generator="extractive"))
        answer_ms.append((time.perf_counter() - started) * 1000)
    return {
        "chunks": len(pipeline.snapshot.chunks),
        "documents": len(pipeline.snapshot.documents),
        "retrieval_p50_ms": percentile(retrieval_ms, 50),
        "retrieval_p95_ms": percentile(retrieval_ms, 95),
        "search_p50_ms": percentile(search_ms, 50),
        "search_p95_ms": percentile(search_ms, 95),
        "answer_p50_ms": percentile(answer_ms, 50),
        "answer_p95_ms": percentile(answer_ms, 95),
        "load_s": load_s,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _write_table(rows: list[dict[str, object]]) -> str:
    """The Markdown table so far, written to eval/reports/bench_scale.md (and .json)."""
    lines = [
        "| corpus | store | documents | chunks | build this run (s) | load (s) | search p50 ms "
        "| retrieval p50 / p95 ms | retrieval + answer p50 / p95 ms | serving peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['corpus']} | {row['store']} | {row['documents']:,} | {row['chunks']:,} | {row['build_s']:.0f} | "
            f"{row['load_s']:.1f} | {row.get('search_p50_ms', float('nan')):.1f} | "
            f"{row['retrieval_p50_ms']:.1f} / {row['retrieval_p95_ms']:.1f} | "
            f"{row['answer_p50_ms']:.1f} / {row['answer_p95_ms']:.1f} | {row['peak_rss_mb']:.0f} |"
        )
    reports = ROOT / "eval" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "bench_scale.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (reports / "bench_scale.json").write_text(json.dumps(rows, indent=1, default=str), encoding="utf-8")
    return "\n".join(lines)


def main() -> int:
    """Build (or reuse) each corpus's index and time queries against it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--news", default="1000,5000,20000", help="news corpus sizes, ascending")
    parser.add_argument("--skip-cmrc", action="store_true")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the serving process
    args = parser.parse_args()
    base = Settings()
    if args.measure:
        measured = _latency(base.model_copy(update={"index_dir": args.measure}), _questions())
        print(json.dumps(measured))
        return 0
    embedder = make_embedder(base)
    config = Config(chunk_size=base.chunk_size, chunk_overlap=base.chunk_overlap)
    rows: list[dict[str, object]] = []

    seed_settings, seconds = prepare_index(load_seed(), config, base, embedder, INDEXES, SEED_DOCS)
    store = f"{base.store}, {base.embedding_precision}"
    rows.append({"corpus": "seed page", "store": store, "build_s": seconds, **_measure(seed_settings)})
    _write_table(rows)
    if not args.skip_cmrc:
        cmrc = load_shared(SHARED / "cmrc2018")
        cmrc_settings, seconds = prepare_index(cmrc, config, base, embedder, INDEXES, SEED_DOCS)
        rows.append({"corpus": "CMRC 2018", "store": store, "build_s": seconds, **_measure(cmrc_settings)})
        _write_table(rows)

    news = load_shared(SHARED / "crud-news")
    news_settings = index_settings(base, INDEXES, "crud-news", base.chunk_size, base.chunk_overlap)
    done = 0
    for size in sorted(int(x) for x in args.news.split(",") if x):
        started = time.perf_counter()
        documents = passage_documents(news.name, news.passages[done:size])
        progress = ProgressLine()
        index_documents(news_settings, documents, embedder, progress=progress)
        progress.close()
        seconds = time.perf_counter() - started
        done = size
        rows.append({"corpus": f"news {size:,}", "store": store, "build_s": seconds, **_measure(news_settings)})
        _write_table(rows)  # each row as it completes: a long run that is stopped keeps what it measured

    print(_write_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
