"""Command line: ``rag index``, ``rag ask``, ``rag info``. Thin: settings, library, messages."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import date
from importlib.metadata import entry_points
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from rag.answer.generators import REGISTRY, Generators
from rag.answer.stream import Answerer, AnswerStream, Delta, Done, Query
from rag.config import MAX_TOP_K, Settings
from rag.errors import RagError
from rag.index.search import RETRIEVERS
from rag.index.snapshot import current_version, load_snapshot
from rag.index.store import Where
from rag.library import DocumentLibrary
from rag.service import make_embedder, open_pipeline, store_config


def _day(text: str) -> date:
    """A ``YYYY-MM-DD`` option's value; argparse shows the message of a bad one after the flag."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD (e.g. 2024-03-01), not {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Question answering over your documents.")
    sub = parser.add_subparsers(dest="command", required=True)
    index = sub.add_parser("index", help="index files or folders (only new or changed files are embedded)")
    index.add_argument("paths", nargs="*", type=Path, help="files or folders (default: seeds/)")
    index.add_argument("--rebuild", action="store_true", help="ignore the existing index and build anew")
    ask = sub.add_parser("ask", help="answer a question from the index")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--top-k", type=int, default=None, help=f"passages to retrieve (1-{MAX_TOP_K})")
    ask.add_argument("--generator", default=None, help=f"one of: {', '.join(sorted(REGISTRY))}")
    ask.add_argument("--retriever", default=None, choices=RETRIEVERS, help="retrieval mode (default: RAG_RETRIEVER)")
    ask.add_argument(
        "--as-of",
        type=_day,
        default=None,
        help="YYYY-MM-DD that 去年, 上个月 count from (default: today)",
    )
    ask.add_argument("--document", action="append", help="search only this document (repeat for more)")
    ask.add_argument("--since", type=_day, help="only documents published on or after YYYY-MM-DD")
    ask.add_argument("--until", type=_day, help="only documents published on or before YYYY-MM-DD")
    sub.add_parser("info", help="describe the index")
    for plugin in entry_points(group="rag.commands"):
        # Other packages (the eval harness) add subcommands without rag importing them.
        plugin.load()(sub)
    for name in ("index", "ask", "info", "serve"):
        if name in sub.choices:
            sub.choices[name].add_argument(
                "--index-dir", type=Path, default=None, help="the index folder (default: RAG_INDEX_DIR, else ./index)"
            )
    return parser


def _print_answer(stream: AnswerStream) -> None:
    """The verified answer text as it streams in, then why it abstained, the evidence, the citations."""
    answer = None
    for event in stream:
        if isinstance(event, Delta):
            print(event.text, end="", flush=True)
        elif isinstance(event, Done):
            answer = event.answer
    print()
    if answer is None:
        return
    for warning in answer.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if answer.abstain_reason:
        print(f"  ({answer.abstain_reason})")
    if answer.evidence and answer.evidence != answer.text:
        print(f"\n  evidence: {answer.evidence}")
    for n, citation in enumerate(answer.citations, start=1):
        dated = f", published {citation.published}" if citation.published else ""
        where = f"chars {citation.evidence_start}-{citation.evidence_end}"
        if citation.page:
            x0, y0, x1, y1 = citation.evidence_regions[0].box
            where += f"; page {citation.page}, box {x0:.3f},{y0:.3f},{x1:.3f},{y1:.3f} of the page"
        print(f"  [{n}] {citation.title} ({citation.doc_id}{dated}, {where})")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


class ProgressLine:
    """A build's progress on stderr: one line redrawn in place on a terminal (stage, count,
    percent, rate, time left), plain lines every ``every_s`` seconds otherwise (logs, CI).
    The rate counts only work done in this run, so resumed documents do not skew the ETA."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 10.0) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._every_s = every_s
        self._stage = ""
        self._first: tuple[float, int] = (0.0, 0)
        self._shown = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self._stage:
            if self._tty and self._stage:
                self._stream.write("\n")
            self._stage, self._first, self._shown = stage, (now, done), 0.0
        finished = total > 0 and done >= total
        if not finished and now - self._shown < (0.25 if self._tty else self._every_s) and self._shown:
            return
        self._shown = now
        line = f"{stage}"
        if total:
            line += f": {done:,}/{total:,} ({100 * done / total:.0f}%)"
            started, first = self._first
            rate = (done - first) / (now - started) if now > started and done > first else 0.0
            if rate:
                line += f", {rate:.1f}/s"
                line += ", done" if finished else f", {_duration((total - done) / rate)} left"
        else:
            line += "..."
        if self._tty:
            self._stream.write("\r\x1b[2K" + line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty and self._stage:
            self._stream.write("\n")
            self._stream.flush()


def _cmd_index(settings: Settings, args: argparse.Namespace) -> int:
    paths = args.paths or [Path("seeds")]
    progress = ProgressLine()
    try:
        library = DocumentLibrary(settings)
        result = library.index_paths(paths, make_embedder(settings), rebuild=args.rebuild, progress=progress)
    finally:
        progress.close()
    stats = result.stats
    print(
        f"indexed {settings.index_dir}: {len(stats.added)} added, {len(stats.updated)} updated, "
        f"{len(stats.removed)} removed, {len(stats.unchanged)} unchanged; {stats.chunks} chunks; "
        f"embedded {stats.embedded_texts} texts in {stats.embed_seconds:.1f} s"
        + (f"; {stats.resumed} documents' vectors resumed from an interrupted run" if stats.resumed else "")
    )
    for path, reason in result.failed:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return 1 if result.failed and not (stats.added or stats.updated or stats.unchanged) else 0


def _cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    if args.top_k is not None and not 1 <= args.top_k <= MAX_TOP_K:
        raise RagError(f"--top-k must be between 1 and {MAX_TOP_K}, not {args.top_k}")
    pipeline = open_pipeline(settings)
    unknown = sorted(set(args.document or ()) - set(pipeline.snapshot.documents))
    if unknown:
        known = sorted(pipeline.snapshot.documents)
        shown = ", ".join(known[:10]) + (
            f" and {len(known) - 10} more (`rag info` lists them)" if len(known) > 10 else ""
        )
        raise RagError(f"--document {unknown[0]!r}: no such document in the index; its ids: {shown or 'none'}")
    answerer = Answerer(pipeline, Generators(settings), settings)
    query = Query(
        args.question, top_k=args.top_k, generator=args.generator, retriever=args.retriever, preview=False,
        as_of=args.as_of, where=Where.of(args.document, args.since, args.until),
    )  # fmt: skip
    stream = answerer.open(query)
    if args.json:
        print(json.dumps(stream.answer().as_json(), ensure_ascii=False, indent=2))
    else:
        _print_answer(stream)
    return 0


def _cmd_info(settings: Settings, _: argparse.Namespace) -> int:
    snapshot = load_snapshot(settings.index_dir, store_config(settings))
    m = snapshot.manifest
    print(f"index: {settings.index_dir} ({current_version(settings.index_dir)}), store: {m.store}")
    print(f"embedding model: {m.embedding_model} ({m.dimension} dimensions)")
    print(f"chunking: {m.chunk_size} characters, {m.chunk_overlap} overlap; {len(snapshot.chunks)} chunks")
    print(f"documents: {len(snapshot.documents)}")
    for doc in snapshot.documents.values():
        n_chunks = snapshot.chunk_counts.get(doc.doc_id, 0)
        scanned = f", {doc.pages} scanned pages" if doc.pages else ""
        print(f"  {doc.doc_id}: {len(doc.text)} characters, {n_chunks} chunks, {len(doc.articles)} articles{scanned}")
        for article in doc.articles:
            print(f"    - {article.title}")
    return 0


_COMMANDS = {"index": _cmd_index, "ask": _cmd_ask, "info": _cmd_info}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; library errors become one-line messages and exit status 2."""
    args = _parser().parse_args(argv)
    index_dir = getattr(args, "index_dir", None)
    if index_dir is None:
        return _run(args)
    # Through the environment, the one place settings are read from, so that the processes
    # `rag serve --workers N` starts get it too; as it was once the command is done.
    before = os.environ.get("RAG_INDEX_DIR")
    os.environ["RAG_INDEX_DIR"] = str(index_dir.expanduser().resolve())
    try:
        return _run(args)
    finally:
        if before is None:
            os.environ.pop("RAG_INDEX_DIR", None)
        else:
            os.environ["RAG_INDEX_DIR"] = before


def _run(args: argparse.Namespace) -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = "RAG_" + "_".join(str(part) for part in error["loc"]).upper() if error["loc"] else "a RAG_ setting"
        print(f"error: {name}: {error['msg']}", file=sys.stderr)
        return 2
    handler = _COMMANDS.get(args.command) or args.handler
    try:
        return int(handler(settings, args))
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`rag info | head -1`): stop quietly, and keep Python's
        # final flush of stdout from failing again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
