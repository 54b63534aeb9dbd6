"""The accuracy gate: fixed samples of the dev sets, answered extractively, against the
figures stored in ``eval/gate.json``. CI runs it (``tests/test_gate.py``); a change that
costs more than ``TOLERANCE`` points on any of them fails.

Each dev set (CMRC 2018, ChronoQA) is split into a tuning half and a report half by document
(``eval.data.half_of``). The gate draws a fixed sample of questions from each half and indexes
their gold passages with a fixed sample of other passages of the same set, so it runs in a few
minutes; its figures are for that smaller corpus and are compared only with themselves. The
seed set is asked whole.

``python -m eval.gate`` prints the figures beside the stored ones (exit 1 on a drop);
``--update`` stores the new figures (after a change that is meant to move them, with the
reason in the commit).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eval.data import ROOT, SEED_DOCS, Dataset, half_of, load_seed, load_shared
from eval.runner import Config, in_process_asker, prepare_index, run_config
from rag.config import Settings
from rag.index.embedding import Embedder

STORED = ROOT / "eval" / "gate.json"
SHARED = ROOT.parent / "shared" / "data"
# Points of accuracy a figure may lose before the gate fails.
TOLERANCE = 1.0
_SEED = 2025


@dataclass(frozen=True)
class Sample:
    """How much of a dev set the gate asks: questions from each half, other passages beside
    their gold ones, and the field with the day a question is asked."""

    folder: str
    questions: int
    distractors: int
    as_of_field: str = ""


SAMPLES = (
    Sample("cmrc2018", questions=200, distractors=300),
    Sample("chronoqa", questions=250, distractors=600, as_of_field="meta.question_date"),
)


def sampled(dataset: Dataset, sample: Sample) -> tuple[Dataset, dict[str, list[str]]]:
    """The gate's corpus for a dev set (gold passages of the sampled questions, then the
    distractors), and the sampled question ids of each half."""
    rng = random.Random(_SEED)
    by_half: dict[str, list[str]] = {}
    chosen = []
    for half in ("tune", "report"):
        pool = [q for q in dataset.questions if q.answerable and q.gold_pids and half_of(q) == half]
        picked = rng.sample(pool, min(sample.questions, len(pool)))
        by_half[half] = [q.qid for q in picked]
        chosen.extend(picked)
    gold = {pid for q in chosen for pid in q.gold_pids}
    others = [p for p in dataset.passages if p.pid not in gold]
    extra = {p.pid for p in rng.sample(others, min(sample.distractors, len(others)))}
    passages = tuple(p for p in dataset.passages if p.pid in gold or p.pid in extra)
    name = f"{dataset.name}-gate"
    return Dataset(name, tuple(sorted(chosen, key=lambda q: q.qid)), passages), by_half


def measure(settings: Settings, embedder: Embedder, indexes: Path, data: Path = SHARED) -> dict[str, float]:
    """Accuracy (%) of each figure the gate keeps: ``seed``, and ``<set>/<half>`` for each dev set."""
    config = Config(generator="extractive", top_k=settings.top_k, retriever=settings.retriever)
    figures: dict[str, float] = {}
    jobs: list[tuple[Dataset, dict[str, list[str]]]] = [(load_seed(), {"": []})]
    for sample in SAMPLES:
        jobs.append(sampled(load_shared(data / sample.folder, sample.as_of_field), sample))
    for dataset, halves in jobs:
        indexed, _ = prepare_index(dataset, config, settings, embedder, indexes, SEED_DOCS)
        records = {r.qid: r for r in run_config(in_process_asker(indexed, embedder), dataset.questions, config)}
        for half, qids in halves.items():
            rows = [records[q] for q in qids] if qids else [r for r in records.values() if r.answerable]
            key = f"{dataset.name.removesuffix('-gate')}/{half}" if half else dataset.name
            figures[key] = round(100 * sum(r.correct for r in rows) / len(rows), 1)
    return figures


def drops(figures: dict[str, float], stored: dict[str, float], tolerance: float = TOLERANCE) -> list[str]:
    """The figures more than ``tolerance`` points below the stored ones (and stored ones missing)."""
    found = []
    for key, value in stored.items():
        if key not in figures:
            found.append(f"{key}: not measured")
        elif figures[key] < value - tolerance:
            found.append(f"{key}: {figures[key]:.1f} % (stored {value:.1f} %)")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.gate", description=__doc__)
    parser.add_argument("--update", action="store_true", help="store the figures measured now")
    parser.add_argument("--indexes", type=Path, default=None, help="where the gate's indexes are kept")
    args = parser.parse_args(argv)
    from rag.service import make_embedder

    settings = Settings(generator="extractive")
    indexes = args.indexes or settings.cache_dir / "gate-indexes"
    started = time.perf_counter()
    figures = measure(settings, make_embedder(settings), indexes)
    stored = json.loads(STORED.read_text(encoding="utf-8"))["accuracy"] if STORED.exists() else {}
    for key, value in figures.items():
        print(f"{key:20s} {value:5.1f} %   stored {stored.get(key, float('nan')):5.1f} %")
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.update:
        STORED.write_text(json.dumps({"accuracy": figures}, indent=2) + "\n", encoding="utf-8")
        print(f"stored in {STORED}")
        return 0
    if problems := drops(figures, stored):
        print("accuracy dropped:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
