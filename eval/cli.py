"""``rag eval``: run a data set through the service, compare configs, write reports.

With no options it asks the seed questions of the seed page with the extractive generator
(under a minute) and writes its report under ``<RAG_CACHE_DIR>/eval/reports/``.

Registered as a ``rag`` subcommand through the ``rag.commands`` entry point, so the
library never imports the eval package.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from eval.data import HALVES, SEED_DOCS, Dataset, Question, half_of, load_dataset, withheld_gold
from eval.report import Summary, percent, summarise, write
from eval.runner import Asker, Config, HttpAsker, Record, in_process_asker, matrix, prepare_index, run_config
from rag.answer.generators import AUTO, REGISTRY
from rag.cli import ProgressLine
from rag.config import MAX_TOP_K, Settings
from rag.errors import RagError
from rag.index.search import RETRIEVERS

SAMPLE_SEED = 2018


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rag eval``."""
    parser.add_argument(
        "--data",
        default="seed",
        help="'seed', 'paraphrase' (seed questions reworded), a shared-format folder, or a SQuAD-style .json",
    )
    parser.add_argument("--url", default="", help="evaluate a running server (POST URL/api/ask) instead")
    parser.add_argument("--api-key", default="", help="bearer token for --url")
    parser.add_argument(
        "--generator",
        type=_names,
        default=None,
        help="comma-separated generators to compare (default: extractive, quick; llama-cpp is the local LLM)",
    )
    parser.add_argument(
        "--llm", action="store_true", help="answer with the local LLM (the same as --generator llama-cpp; minutes)"
    )
    parser.add_argument("--top-k", type=_ints, default=None, help="comma-separated top-k values")
    parser.add_argument("--chunk-size", type=_ints, default=None, help="comma-separated chunk sizes")
    parser.add_argument("--chunk-overlap", type=int, default=None, help="chunk overlap (capped at half a chunk)")
    parser.add_argument(
        "--retriever", type=_names, default=None, help=f"comma-separated retrieval modes: {', '.join(RETRIEVERS)}"
    )
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions (0: all)")
    parser.add_argument(
        "--as-of-field", default="", help="the qa.jsonl field with the day each question is asked (meta.question_date)"
    )
    parser.add_argument(
        "--sample", type=int, default=0, help="N questions drawn at random with a fixed seed (0: all); after --limit"
    )
    parser.add_argument(
        "--half",
        choices=HALVES,
        default=None,
        help="only the questions of one half of a dev set, split by document: tune (choose rules and defaults on "
        "it) or report (left untouched, the figures to quote)",
    )
    parser.add_argument(
        "--withhold-gold",
        action="store_true",
        help="ask each question without its gold passages (an unanswerable set: the right reply is an abstention; "
        "questions whose answer another passage holds are left out)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="report folder (default: <RAG_CACHE_DIR>/eval/reports/<data>-<time>)"
    )
    parser.add_argument(
        "--indexes", type=Path, default=None, help="where eval indexes are kept (default: <RAG_CACHE_DIR>/eval/indexes)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def chosen_questions(questions: Sequence[Question], limit: int = 0, sample: int = 0) -> tuple[Question, ...]:
    """The first ``limit`` questions (0: all), then ``sample`` of them drawn with a fixed seed:
    the same N on every run and machine, in the data set's order."""
    picked = tuple(questions[:limit] if limit else questions)
    if not 0 < sample < len(picked):
        return picked
    chosen = set(random.Random(SAMPLE_SEED).sample(range(len(picked)), sample))
    return tuple(q for n, q in enumerate(picked) if n in chosen)


def _progress(total: int, label: str, quiet: bool):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="q", disable=quiet, file=sys.stderr)


def _run(
    dataset: Dataset, configs: list[Config], args: argparse.Namespace, settings: Settings
) -> tuple[list[Summary], list[Record]]:
    pool = [q for q in dataset.questions if args.half is None or half_of(q) == args.half]
    questions = chosen_questions(pool, args.limit, args.sample)
    if args.withhold_gold:
        questions = withheld_gold(dataset, questions)
        if not questions:
            raise RagError(f"{dataset.name}: no question can be asked without its gold passages")
    summaries: list[Summary] = []
    records: list[Record] = []
    embedder = None
    indexes = args.indexes or settings.cache_dir / "eval" / "indexes"
    for config in configs:
        build_seconds = float("nan")
        asker: Asker
        if args.url:
            asker = HttpAsker(args.url, api_key=args.api_key)
        else:
            from rag.service import make_embedder

            embedder = embedder or make_embedder(settings)
            progress = None if args.no_progress else ProgressLine()
            try:
                indexed, build_seconds = prepare_index(
                    dataset, config, settings, embedder, indexes, SEED_DOCS, progress=progress
                )
            finally:
                if progress is not None:
                    progress.close()
            asker = in_process_asker(indexed, embedder)
        rows = []
        with _progress(len(questions), config.label, args.no_progress) as bar:
            for record in run_config(asker, questions, config):
                rows.append(record)
                bar.update(1)
        summaries.append(summarise(config.label, rows, build_seconds))
        records.extend(rows)
    return summaries, records


def _pct(value: float) -> str:
    """A rate as the report writes it (one decimal), with its unit; – when there is none."""
    written = percent(value)
    return written if written == "–" else f"{written}%"


def _print(summary: Summary) -> None:
    total = summary.latency_ms.get("total_ms") or summary.latency_ms.get("client_ms") or {"p50": 0.0, "p95": 0.0}
    print(
        f"{summary.config}: accuracy {_pct(summary.accuracy)} of {summary.answerable} answerable, "
        f"F1 {_pct(summary.f1)}, exact {_pct(summary.exact)}, "
        f"recall@1/3/5/10 {' / '.join(_pct(summary.recall[k]) for k in (1, 3, 5, 10))}, "
        f"MRR {_pct(summary.mrr)}, abstention precision / recall {_pct(summary.abstain_precision)} / "
        f"{_pct(summary.abstain_recall)}, p50 {total['p50']:.0f} ms, p95 {total['p95']:.0f} ms"
        + (f", {summary.errors} errors" if summary.errors else "")
    )


def _print_unanswerable(config: str, records: list[Record]) -> None:
    """How often the unanswerable questions got an answer (a false answer) instead of an abstention."""
    unanswerable = [r for r in records if not r.answerable and not r.error]
    if unanswerable:
        false = sum(not r.abstained for r in unanswerable)
        share = 100 * false / len(unanswerable)
        print(f"{config}: false answers {false} of {len(unanswerable)} unanswerable ({share:.1f}%)")


def _generators(args: argparse.Namespace) -> list[str]:
    """--generator's list (extractive when not given), with the local LLM added by --llm."""
    names = list(args.generator or ([] if args.llm else ["extractive"]))
    return [*names, "llama-cpp"] if args.llm and "llama-cpp" not in names else names


def run(settings: Settings, args: argparse.Namespace) -> int:
    """The ``rag eval`` command."""
    dataset = load_dataset(args.data, args.as_of_field)
    if not dataset.questions:
        raise RagError(f"{args.data}: no questions to ask")
    configs = matrix(
        _generators(args),
        args.top_k or [settings.top_k],
        args.chunk_size or [settings.chunk_size],
        settings.chunk_overlap if args.chunk_overlap is None else args.chunk_overlap,
        args.retriever or [settings.retriever],
    )
    for config in configs:
        if config.generator not in (*REGISTRY, AUTO):
            raise RagError(f"unknown generator {config.generator!r}; choose one of: {', '.join([*REGISTRY, AUTO])}")
        if config.retriever not in RETRIEVERS:
            raise RagError(f"unknown retriever {config.retriever!r}; choose one of: {', '.join(RETRIEVERS)}")
        if not 1 <= config.top_k <= MAX_TOP_K:
            raise RagError(f"--top-k must be between 1 and {MAX_TOP_K}, not {config.top_k}")
    summaries, records = _run(dataset, configs, args, settings)
    out = args.out or settings.cache_dir / "eval" / "reports" / f"{dataset.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    paths = write(out, dataset.name, summaries, records)
    for summary in summaries:
        _print(summary)
        _print_unanswerable(summary.config, [r for r in records if r.config == summary.config])
    print(f"report: {paths['markdown']}\nresults: {paths['json']}\nchart: {paths['chart']}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``eval`` to the ``rag`` command line."""
    parser = commands.add_parser("eval", help="score answers and retrieval on an eval set")
    add_arguments(parser)
    parser.set_defaults(handler=run)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m eval.cli``: the same as ``rag eval``."""
    parser = argparse.ArgumentParser(prog="rag eval", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(Settings(), args)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
