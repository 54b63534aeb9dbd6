"""Query latency as the corpus grows: the seed page, CMRC 2018, and CRUD-RAG news at 1k/5k/20k.

``python -m eval.bench_scale [--news 1000,5000,20000]``. Indexes live under
``eval/.indexes/`` and are kept between runs: the news index grows in batches of 500
documents, each saved atomically, so an interrupted build resumes where it stopped and
a finished one is not embedded again. The report says how long each build step took
(this run's embedding only; reused steps show 0).

Latency is measured in-process with the seed questions as queries: retrieval alone
(embed + search) and retrieval plus the extractive answer.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from eval.data import ROOT, SEED_DOCS, load_seed, load_shared
from eval.metrics import percentile
from eval.runner import Config, passage_documents, prepare_index
from rag.answering import Answerer, Query
from rag.config import Settings
from rag.generators import Generators
from rag.service import index_documents, make_embedder, open_pipeline

SHARED = ROOT.parent / "shared" / "data"
INDEXES = ROOT / "eval" / ".indexes"
BATCH = 500


def _latency(settings: Settings, embedder: object, questions: list[str]) -> dict[str, float]:
    pipeline = open_pipeline(settings, embedder)  # type: ignore[arg-type]
    pipeline.warm_up()
    answerer = Answerer(pipeline, Generators(settings), settings)
    retrieval_ms, answer_ms = [], []
    for question in questions[:5]:
        pipeline.retrieve(question, settings.top_k)
    for question in questions:
        started = time.perf_counter()
        pipeline.retrieve(question, settings.top_k)
        retrieval_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        answerer.ask(Query(question, generator="extractive"))
        answer_ms.append((time.perf_counter() - started) * 1000)
    return {
        "chunks": len(pipeline.snapshot.chunks),
        "documents": len(pipeline.snapshot.documents),
        "retrieval_p50_ms": percentile(retrieval_ms, 50),
        "retrieval_p95_ms": percentile(retrieval_ms, 95),
        "answer_p50_ms": percentile(answer_ms, 50),
        "answer_p95_ms": percentile(answer_ms, 95),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _write_table(rows: list[dict[str, object]]) -> str:
    """The Markdown table so far, written to eval/reports/bench_scale.md (and .json)."""
    lines = [
        "| corpus | documents | chunks | build this run (s) | retrieval p50 / p95 ms "
        "| retrieval + answer p50 / p95 ms | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['corpus']} | {row['documents']:,} | {row['chunks']:,} | {row['build_s']:.0f} | "
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
    args = parser.parse_args()
    base = Settings()
    embedder = make_embedder(base)
    questions = [q.question for q in load_seed().questions]
    config = Config(chunk_size=base.chunk_size, chunk_overlap=base.chunk_overlap)
    rows: list[dict[str, object]] = []

    seed_settings, seconds = prepare_index(load_seed(), config, base, embedder, INDEXES, SEED_DOCS)
    rows.append({"corpus": "seed page", "build_s": seconds, **_latency(seed_settings, embedder, questions)})
    _write_table(rows)
    if not args.skip_cmrc:
        cmrc = load_shared(SHARED / "cmrc2018")
        cmrc_settings, seconds = prepare_index(cmrc, config, base, embedder, INDEXES, SEED_DOCS)
        rows.append({"corpus": "CMRC 2018", "build_s": seconds, **_latency(cmrc_settings, embedder, questions)})
        _write_table(rows)

    news = load_shared(SHARED / "crud-news")
    news_settings = base.model_copy(update={"index_dir": INDEXES / f"crud-news-{base.chunk_size}-{base.chunk_overlap}"})
    done = 0
    for size in sorted(int(x) for x in args.news.split(",") if x):
        started = time.perf_counter()
        documents = passage_documents(news.name, news.passages[done:size])
        for start in range(0, len(documents), BATCH):
            index_documents(news_settings, documents[start : start + BATCH], embedder)
            print(f"news: {done + start + len(documents[start : start + BATCH])} documents indexed", flush=True)
        seconds = time.perf_counter() - started
        done = size
        rows.append({"corpus": f"news {size:,}", "build_s": seconds, **_latency(news_settings, embedder, questions)})
        _write_table(rows)  # each row as it completes: a long run that is stopped keeps what it measured

    print(_write_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
