"""Fit the gate's confidence (``rag.answer.confidence``) on the tuning halves of the dev sets.

Each tuning-half question is asked twice, in-process and extractively: as it is, and without
its gold passages (``eval.data.withheld_gold``: the right reply is then an abstention). For
every question the gate answers, its signs (``rag.answer.evidence.evidence_signs``) are kept
with whether the answer was right. A logistic model is fitted on them (numpy, Newton's
method, a little L2), and a table of thresholds shows what each costs on the answerable
questions and saves on the unanswerable ones. ``--write`` stores the model in
``rag/answer/confidence.json`` with that table; the threshold is the setting
``RAG_ABSTAIN_MIN_CONFIDENCE``, chosen from the table.

    python -m eval.calibrate [--sample 800] [--write]

The report halves are never read here.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from eval.data import ROOT, SEED_DOCS, half_of, load_dataset, withheld_gold
from eval.metrics import answer_found, without_markers
from eval.runner import Config, prepare_index
from rag.answer.analysis import read_question
from rag.answer.confidence import MODEL
from rag.answer.evidence import Thresholds, choose, evidence_signs
from rag.config import Settings
from rag.index.store import Where
from rag.service import make_embedder, open_pipeline

SHARED = ROOT.parent / "shared" / "data"
DATASETS = (("seed", ""), (str(SHARED / "cmrc2018"), ""), (str(SHARED / "chronoqa"), "meta.question_date"))
THRESHOLDS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6)
_SEED = 26


Row = tuple[str, bool, bool, dict[str, float]]


def collect(settings: Settings, sample: int, indexes: Path) -> tuple[list[Row], list[Row], dict[str, tuple[int, int]]]:
    """(set, answerable, right, signs) of every tuning-half question the gate answers from a
    sentence, the same (without signs) of those it answers by a computed comparison, and how
    many answerable and unanswerable questions each set asked."""
    embedder = make_embedder(settings)
    thresholds = replace(Thresholds.from_settings(settings), min_confidence=0.0)
    rows: list[Row] = []
    computed: list[Row] = []
    asked_totals: dict[str, tuple[int, int]] = {}
    for spec, as_of_field in DATASETS:
        dataset = load_dataset(spec, as_of_field)
        pool = [q for q in dataset.questions if half_of(q) == "tune"]
        if sample and len(pool) > sample:
            pool = random.Random(_SEED).sample(pool, sample)
        asked = [*pool, *withheld_gold(dataset, pool)]
        config = Config(generator="extractive", top_k=settings.top_k, retriever=settings.retriever)
        indexed, _ = prepare_index(dataset, config, settings, embedder, indexes, SEED_DOCS)
        pipeline = open_pipeline(indexed, embedder)
        documents = frozenset(pipeline.snapshot.documents)
        for question in asked:
            where = Where(documents - set(question.withheld)) if question.withheld else None
            info = read_question(question.question, question.as_of)
            request = pipeline.retrieve(info, settings.top_k, where=where).request
            choice = choose(request, thresholds)
            if isinstance(choice, str):
                continue
            right = question.answerable and answer_found(without_markers(choice.answer), question.answer_groups)
            if choice.draft:  # a computed comparison: not gated by confidence, counted as it is
                computed.append((dataset.name, question.answerable, right, {}))
            else:
                signs = evidence_signs(request, choice.score, choice.sentence, choice.typed)
                rows.append((dataset.name, question.answerable, right, signs))
        asked_totals[dataset.name] = (sum(q.answerable for q in asked), sum(not q.answerable for q in asked))
        print(f"{dataset.name}: {len(pool)} questions, {len(asked) - len(pool)} withheld", file=sys.stderr)
    return rows, computed, asked_totals


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 30) -> tuple[np.ndarray, float]:
    """Logistic regression by Newton's method (weights, bias) on standardised signs."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.diag([l2] * d + [0.0])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        gradient = xb.T @ (p - y) + penalty @ w
        hessian = (xb * (p * (1 - p))[:, None]).T @ xb + penalty
        w -= np.linalg.solve(hessian, gradient)
    return w[:-1], float(w[-1])


def table(rows: Sequence[Row], probability: np.ndarray, totals: dict[str, tuple[int, int]]) -> list[dict[str, float]]:
    """For each threshold: answerable questions answered right (%) and unanswerable ones answered (%), per set."""
    out = []
    for threshold in THRESHOLDS:
        row: dict[str, float] = {"threshold": threshold}
        for name, (answerable, unanswerable) in totals.items():
            kept = [(r, p) for r, p in zip(rows, probability, strict=True) if r[0] == name and p >= threshold]
            right = sum(1 for r, _ in kept if r[1] and r[2])
            false = sum(1 for r, _ in kept if not r[1])
            row[f"{name} right %"] = round(100 * right / max(answerable, 1), 1)
            row[f"{name} false %"] = round(100 * false / max(unanswerable, 1), 1)
        out.append(row)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=800, help="questions per tuning half (0: all)")
    parser.add_argument("--indexes", type=Path, default=ROOT / "eval" / "indexes")
    parser.add_argument("--write", action="store_true", help=f"store the model in {MODEL.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    settings = Settings()
    rows, computed, totals = collect(settings, args.sample, args.indexes)
    names = sorted(rows[0][3])
    x = np.array([[r[3][n] for n in names] for r in rows])
    y = np.array([float(r[2]) for r in rows])
    means, scales = x.mean(axis=0), x.std(axis=0)
    scales[scales == 0] = 1.0
    weights, bias = fit((x - means) / scales, y)
    probability = 1 / (1 + np.exp(-(((x - means) / scales) @ weights + bias)))
    thresholds = table([*rows, *computed], np.concatenate([probability, np.ones(len(computed))]), totals)
    for line in thresholds:
        print(json.dumps(line, ensure_ascii=False))
    model = {
        "fitted_by": "python -m eval.calibrate" + (f" --sample {args.sample}" if args.sample else " --sample 0"),
        "weights": {n: round(float(w), 5) for n, w in zip(names, weights, strict=True)},
        "means": {n: round(float(m), 5) for n, m in zip(names, means, strict=True)},
        "scales": {n: round(float(s), 5) for n, s in zip(names, scales, strict=True)},
        "bias": round(bias, 5),
        "thresholds": thresholds,
    }
    print(json.dumps({k: model[k] for k in ("weights", "bias")}, ensure_ascii=False))
    if args.write:
        MODEL.write_text(json.dumps(model, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {MODEL}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
