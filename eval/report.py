"""Aggregate eval records into summaries; write JSON, Markdown and a PNG chart."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eval.metrics import abstention_scores, mean, percentile, recall_at_k, reciprocal_rank
from eval.runner import Record
from rag.answer.analysis import read_question

RECALL_KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class Summary:
    """The figures of one config over one data set."""

    config: str
    questions: int
    answerable: int
    accuracy: float  # answerable questions answered correctly (abstaining is wrong)
    overall: float  # all questions right, counting abstention on the unanswerable as right
    f1: float
    exact: float
    recall: dict[int, float]
    mrr: float
    abstain_precision: float
    abstain_recall: float
    latency_ms: dict[str, dict[str, float]]
    by_category: dict[str, float]
    errors: int
    f1_by_category: dict[str, float] = field(default_factory=dict)
    abstain_reasons: dict[str, int] = field(default_factory=dict)
    build_seconds: float = math.nan
    notes: list[str] = field(default_factory=list)


def summarise(config: str, records: Sequence[Record], build_seconds: float = math.nan) -> Summary:
    """Figures for one config's records."""
    answerable = [r for r in records if r.answerable]
    ranked = answerable  # an error or a miss counts as nothing relevant retrieved
    precision, recall = abstention_scores([r.abstained for r in records], [r.answerable for r in records])
    stages = sorted({k for r in records for k in r.timings_ms})
    latency = {
        stage: {
            "p50": percentile([r.timings_ms[stage] for r in records if stage in r.timings_ms], 50),
            "p95": percentile([r.timings_ms[stage] for r in records if stage in r.timings_ms], 95),
        }
        for stage in stages
    }
    categories: dict[str, list[bool]] = defaultdict(list)
    f1s: dict[str, list[float]] = defaultdict(list)
    for r in records:
        groups = [r.category, f"lang:{r.lang}"] + ([f"temporal:{r.temporal_type}"] if r.temporal_type else [])
        if (form := read_question(r.question).form) in ("comparison", "same-day"):  # events compared or dated
            groups.append(f"form:{form}")
        for group in groups:
            categories[group].append(r.correct)
            if r.answerable:
                f1s[group].append(r.f1)
    return Summary(
        config=config,
        questions=len(records),
        answerable=len(answerable),
        accuracy=mean([float(r.correct) for r in answerable]),
        overall=mean([float(r.correct) for r in records]),
        f1=mean([r.f1 for r in answerable]),
        exact=mean([float(r.exact) for r in answerable]),
        recall={k: mean([recall_at_k(r.rank, k) for r in ranked]) for k in RECALL_KS},
        mrr=mean([reciprocal_rank(r.rank) for r in ranked]),
        abstain_precision=precision,
        abstain_recall=recall,
        latency_ms=latency,
        by_category={name: mean([float(c) for c in oks]) for name, oks in sorted(categories.items())},
        f1_by_category={name: mean(values) for name, values in sorted(f1s.items())},
        errors=sum(1 for r in records if r.error),
        abstain_reasons=dict(
            Counter((r.abstain_reason or "(no reason given)").split(":")[0] for r in records if r.abstained)
        ),
        build_seconds=build_seconds,
    )


def _pct(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.1f}"


def _ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.0f}"


def markdown(dataset: str, summaries: Sequence[Summary], weakest: Sequence[Record]) -> str:
    """A Markdown report: the headline table, latency, categories and the misses."""
    lines = [f"# Eval: {dataset}", ""]
    lines += [
        "| config | questions | accuracy % | F1 % | EM % | R@1 | R@3 | R@5 | R@10 | MRR | abstain P | abstain R "
        "| p50 ms | p95 ms | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        total = s.latency_ms.get("total_ms", s.latency_ms.get("client_ms", {"p50": math.nan, "p95": math.nan}))
        lines.append(
            f"| {s.config} | {s.questions} | {_pct(s.accuracy)} | {_pct(s.f1)} | {_pct(s.exact)} | "
            + " | ".join(_pct(s.recall[k]) for k in RECALL_KS)
            + f" | {s.mrr:.3f} | {_pct(s.abstain_precision)} | {_pct(s.abstain_recall)} | "
            f"{_ms(total['p50'])} | {_ms(total['p95'])} | {s.errors} |"
        )
    lines += ["", "Accuracy counts answerable questions only; abstaining on one is wrong.", ""]
    lines += ["## Latency by stage (ms, p50 / p95)", ""]
    stages = sorted({stage for s in summaries for stage in s.latency_ms})
    lines += ["| config | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
    for s in summaries:
        cells = [f"{_ms(s.latency_ms[st]['p50'])} / {_ms(s.latency_ms[st]['p95'])}" if st in s.latency_ms else "–"
                 for st in stages]  # fmt: skip
        lines.append(f"| {s.config} | " + " | ".join(cells) + " |")
    lines += ["", "## Correct by category (%; character F1 of the answerable in brackets)", ""]
    names = sorted({name for s in summaries for name in s.by_category})
    lines += ["| category | " + " | ".join(s.config for s in summaries) + " |", "|---|" + "---|" * len(summaries)]
    for name in names:
        cells = [
            _pct(s.by_category.get(name, math.nan))
            + (f" ({_pct(s.f1_by_category[name])})" if name in s.f1_by_category else "")
            for s in summaries
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    reasons = sorted({reason for s in summaries for reason in s.abstain_reasons})
    if reasons:
        lines += ["", "## Why it abstained (questions)", ""]
        lines += ["| reason | " + " | ".join(s.config for s in summaries) + " |", "|---|" + "---|" * len(summaries)]
        for reason in reasons:
            lines.append(f"| {reason} | " + " | ".join(str(s.abstain_reasons.get(reason, 0)) for s in summaries) + " |")
    if weakest:
        lines += [
            "",
            f"## Misses of {summaries[0].config}",
            "",
            "| qid | category | question | answer |",
            "|---|---|---|---|",
        ]
        for r in weakest:
            answer = f"(abstained: {r.abstain_reason})" if r.abstained else r.answer.replace("|", "/")[:60]
            lines.append(f"| {r.qid} | {r.category} | {r.question[:50]} | {answer or r.error[:60]} |")
    return "\n".join(lines) + "\n"


def chart(summaries: Sequence[Summary], path: Path) -> None:
    """A PNG with accuracy and p50 latency per config, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [s.config for s in summaries]
    accuracy = [100 * (0 if math.isnan(s.accuracy) else s.accuracy) for s in summaries]
    latency = [s.latency_ms.get("total_ms", s.latency_ms.get("client_ms", {"p50": 0.0}))["p50"] for s in summaries]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.6 * len(labels) + 2))
    left.barh(labels, accuracy, color="#3b7dd8")
    left.set_xlabel("answer accuracy (%)")
    left.set_xlim(0, 100)
    right.barh(labels, latency, color="#d8873b")
    right.set_xlabel("p50 latency per question (ms)")
    right.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(out: Path, dataset: str, summaries: Sequence[Summary], records: Sequence[Record]) -> dict[str, Path]:
    """results.json, report.md and chart.png under ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    first = summaries[0].config if summaries else ""
    weakest = [r for r in records if r.config == first and not r.correct]
    paths = {"json": out / "results.json", "markdown": out / "report.md", "chart": out / "chart.png"}
    payload = {"dataset": dataset, "summaries": [asdict(s) for s in summaries], "records": [asdict(r) for r in records]}
    paths["json"].write_text(json.dumps(payload, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    paths["markdown"].write_text(markdown(dataset, summaries, weakest), encoding="utf-8")
    chart(summaries, paths["chart"])
    return paths
