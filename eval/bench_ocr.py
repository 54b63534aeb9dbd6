"""OCR on generated newspaper scans: character accuracy, pages per minute, articles, answers.

Text is printed into scanned pages (eval.scans), read back by the service's own path (OCR,
reading order, cleaning, article splitting: ``rag.ingest.loaders.parse_bytes``), and compared
with what was printed. Then the same questions are asked of an index of the clean text and
of an index of the scans, so the cost of OCR shows in answer accuracy too.

    python -m eval.bench_ocr                                       # the seed page, its questions
    python -m eval.bench_ocr --data ../shared/data/cmrc2018 --passages 120   # unseen text
    python -m eval.bench_ocr --page broadsheet                    # the seed on large pages

Character accuracy is 1 - (Levenshtein distance / printed characters), whitespace removed,
over each file's whole text: a line read in the wrong order costs as much as a misread one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eval.data import ROOT, SEED_DOCS, Dataset, Question, load_dataset
from eval.report import summarise
from eval.runner import Config, Record, in_process_asker, passage_documents, run_config
from eval.scans import FontsMissing, Part, Scan, Story, Style, check_fonts, scan_stories, stories_from_text
from rag.config import Settings
from rag.ingest.loaders import ReadOptions, parse_bytes
from rag.ingest.ocr import RapidOcrEngine
from rag.library import index_documents, index_paths
from rag.service import make_embedder
from rag.types import Document, TextBox

STORIES_PER_FILE = 12
# Page geometries at 300 dpi: A4, and a 350 x 500 mm broadsheet in seven columns whose type
# is the same size as A4's (so the detector sees it a third as tall at its usual scale).
PAGES = {"a4": Style(), "broadsheet": Style(width=4134, height=5906, columns=7)}


class TimedOcr:
    """The OCR engine, timed: seconds spent reading pages, and how many."""

    def __init__(self, engine: RapidOcrEngine) -> None:
        self.engine = engine
        self.seconds = 0.0
        self.pages = 0

    @property
    def name(self) -> str:
        return self.engine.name

    def read(self, image: Any) -> list[TextBox]:
        started = time.perf_counter()
        found = self.engine.read(image)
        self.seconds += time.perf_counter() - started
        self.pages += 1
        return found


@dataclass(frozen=True)
class ScanResult:
    """One generated file read back."""

    name: str
    scan: Scan
    document: Document
    stories: list[Story]


def _squeeze(text: str) -> str:
    return "".join(text.split())


def char_accuracy(printed: str, read: str) -> tuple[int, int]:
    """(edit distance, printed characters), whitespace removed."""
    from rapidfuzz.distance import Levenshtein

    a, b = _squeeze(printed), _squeeze(read)
    return Levenshtein.distance(a, b), len(a)


def _headline(story: Story) -> str:
    parts = [story.kicker, story.headline, story.subtitle]
    return " ".join(p for p in parts if p)


def _passage_stories(dataset: Dataset, count: int) -> tuple[list[Story], set[str]]:
    """The first ``count`` passages as stories, each under its title (or first clause)."""
    stories, pids = [], set()
    for passage in dataset.passages[:count]:
        title = passage.title or passage.text.split("，")[0][:16]
        stories.append(Story(title, (Part(passage.text),)))
        pids.add(passage.pid)
    return stories, pids


def read_scans(groups: list[list[Story]], ocr: TimedOcr, folder: Path, page: Style | None = None) -> list[ScanResult]:
    """Print each group of stories into one PDF (in ``folder``), read it back."""
    results = []
    for n, stories in enumerate(groups):
        style = replace(page or Style(), seed=7 + n)
        scan = scan_stories(stories, style)
        name = f"scan-{n + 1:03d}.pdf"
        data = scan.pdf_bytes(style.dpi, style.jpeg_quality)
        (folder / name).write_bytes(data)
        document = parse_bytes(data, f"scans/{name}", str(folder / name), options=ReadOptions(ocr=ocr))
        results.append(ScanResult(name, scan, document, stories))
        print(f"{name}: {len(scan.pages)} pages read", flush=True)
    return results


def _accuracy(
    settings: Settings,
    embedder: Any,
    documents: list[Document] | None,
    folder: Path | None,
    questions: list[Question],
    pids: set[str] | None = None,
) -> tuple[dict[str, float | None], dict[str, Record]]:
    if documents is not None:
        index_documents(settings, documents, embedder)
    elif folder is not None:
        index_paths(settings, [folder], embedder)
    asker = in_process_asker(settings, embedder)
    records = list(run_config(asker, questions, Config()))
    summary = summarise("extractive", records)
    # Recall needs the gold passages' ids; a scan's documents are its files (None then).
    recall = summary.recall.get(5, 0.0) if documents is None or documents[0].doc_id in (pids or set()) else None
    figures = {"accuracy": summary.accuracy, "recall_at_5": recall, "questions": summary.answerable}
    return figures, {r.qid: r for r in records}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="seed", help="'seed' (the seed page) or a shared-format folder")
    parser.add_argument("--passages", type=int, default=120, help="passages of --data to print (not for seed)")
    parser.add_argument("--page", choices=sorted(PAGES), default="a4", help="the page size printed on")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports", help="where the JSON report goes")
    args = parser.parse_args(argv)
    try:
        check_fonts()
    except FontsMissing as exc:
        sys.exit(f"error: {exc}")

    dataset = load_dataset(args.data)
    settings = Settings(generator="extractive")
    embedder = make_embedder(settings)
    ocr = TimedOcr(RapidOcrEngine())
    ocr.engine.warm_up()
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
        root = Path(tmp)
        (root / "scans").mkdir()
        if dataset.passages:
            stories, pids = _passage_stories(dataset, args.passages)
            groups = [stories[i : i + STORIES_PER_FILE] for i in range(0, len(stories), STORIES_PER_FILE)]
            questions = [q for q in dataset.questions if q.gold_pids and set(q.gold_pids) <= pids]
        else:
            groups = [stories_from_text((SEED_DOCS / "hunan-daily-page.txt").read_text(encoding="utf-8"))]
            questions = list(dataset.questions)
        started = time.perf_counter()
        results = read_scans(groups, ocr, root / "scans", PAGES[args.page])
        read_seconds = time.perf_counter() - started
        distance = printed = 0
        headlines = found = 0
        for result in results:
            d, n = char_accuracy(result.scan.text(), result.document.text)
            distance, printed = distance + d, printed + n
            titles = {a.title for a in result.document.articles}
            wanted = [_headline(s) for s in result.stories if _headline(s)]
            headlines += len(wanted)
            found += sum(1 for w in wanted if w in titles)
        pages = sum(len(r.scan.pages) for r in results)
        clean_settings = settings.model_copy(update={"index_dir": root / "clean"})
        scan_settings = settings.model_copy(update={"index_dir": root / "scanned"})
        if dataset.passages:
            clean, clean_records = _accuracy(
                clean_settings,
                embedder,
                passage_documents(dataset.name, dataset.passages[: args.passages]),
                None,
                questions,
                pids,
            )
        else:
            clean, clean_records = _accuracy(clean_settings, embedder, None, SEED_DOCS, questions)
        scanned, scan_records = _accuracy(scan_settings, embedder, [r.document for r in results], None, questions)
    # The questions the scans lost and won, against the clean text, to see what OCR cost.
    lost = [
        {"qid": q, "question": r.question, "clean": r.answer, "scanned": scan_records[q].answer}
        for q, r in clean_records.items()
        if r.correct and not scan_records[q].correct
    ]
    won = [q for q, r in clean_records.items() if not r.correct and scan_records[q].correct]
    report = {
        "data": dataset.name,
        "page": args.page,
        "files": len(results),
        "pages": pages,
        "printed_characters": printed,
        "character_accuracy": 1 - distance / printed if printed else 0.0,
        "ocr_seconds": ocr.seconds,
        "read_seconds": read_seconds,
        "pages_per_minute": 60 * pages / read_seconds if read_seconds else 0.0,
        "headlines_found_as_titles": f"{found}/{headlines}",
        "clean_text": clean,
        "scanned": scanned,
        "lost_on_scans": lost,
        "won_on_scans": won,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.page == "a4" else f"-{args.page}"
    out = args.out / f"bench_ocr-{dataset.name}{suffix}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps(report, ensure_ascii=False, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
