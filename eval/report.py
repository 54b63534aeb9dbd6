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
    """The figures of one config over one data set. Rates are fractions (0-1); the report prints
    them as percentages. Breakdowns map a group to its rate and ``counts`` to its questions."""

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
    by_category: dict[str, float]  # the data set's own category (the answer's type for the seed set)
    errors: int
    f1_by_category: dict[str, float] = field(default_factory=dict)
    abstain_reasons: dict[str, int] = field(default_factory=dict)
    build_seconds: float = math.nan
    notes: list[str] = field(default_factory=list)
    by_language: dict[str, float] = field(default_factory=dict)
    by_form: dict[str, float] = field(default_factory=dict)  # ChronoQA's temporal type; events compared or dated
    counts: dict[str, int] = field(default_factory=dict)  # questions per category, language:<x> and form group


def _forms(record: Record) -> list[str]:
    forms = [record.temporal_type] if record.temporal_type else []
    if (form := read_question(record.question).form) in ("comparison", "same-day"):
        forms.append(form)
    return forms


def _rates(groups: dict[str, list[bool]]) -> dict[str, float]:
    return {name: mean([float(ok) for ok in oks]) for name, oks in sorted(groups.items())}


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
    languages: dict[str, list[bool]] = defaultdict(list)
    forms: dict[str, list[bool]] = defaultdict(list)
    f1s: dict[str, list[float]] = defaultdict(list)
    for r in records:
        categories[r.category].append(r.correct)
        languages[r.lang].append(r.correct)
        for form in _forms(r):
            forms[form].append(r.correct)
        if r.answerable:
            f1s[r.category].append(r.f1)
    counts = {name: len(oks) for name, oks in categories.items()}
    counts |= {f"language:{name}": len(oks) for name, oks in languages.items()}
    counts |= {f"form:{name}": len(oks) for name, oks in forms.items()}
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
        by_category=_rates(categories),
        f1_by_category={name: mean(values) for name, values in sorted(f1s.items())},
        errors=sum(1 for r in records if r.error),
        abstain_reasons=dict(
            Counter((r.abstain_reason or "(no reason given)").split(":")[0] for r in records if r.abstained)
        ),
        build_seconds=build_seconds,
        by_language=_rates(languages),
        by_form=_rates(forms),
        counts=counts,
    )


def percent(value: float) -> str:
    """A rate (0-1) as a percentage with one decimal, without the sign; – for none."""
    return "–" if math.isnan(value) else f"{100 * value:.1f}"


def _ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.0f}"


def _cell(text: str, width: int = 80) -> str:
    """Text fit for one Markdown table cell."""
    flat = " ".join(text.split()).replace("|", "/")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _total_ms(record: Record) -> float:
    return record.timings_ms.get("total_ms", record.timings_ms.get("client_ms", math.nan))


def verdict(record: Record) -> str:
    """One word or two for a row of the report: right, wrong, a right or wrong abstention, or error."""
    if record.error:
        return "error"
    if record.answerable:
        return "right" if record.correct else ("wrong (abstained)" if record.abstained else "wrong")
    return "right (abstained)" if record.abstained else "wrong (answered)"


def _breakdown(title: str, note: str, key: str, prefix: str, summaries: Sequence[Summary]) -> list[str]:
    groups = sorted({name for s in summaries for name in getattr(s, key)})
    if not groups:
        return []
    lines = ["", f"## {title}", ""] + ([note, ""] if note else [])
    lines += ["| group | questions | " + " | ".join(f"{s.config} %" for s in summaries) + " |"]
    lines += ["|---|---|" + "---|" * len(summaries)]
    for name in groups:
        count = summaries[0].counts.get(prefix + name, 0)
        cells = [percent(getattr(s, key).get(name, math.nan)) for s in summaries]
        lines.append(f"| {name} | {count} | " + " | ".join(cells) + " |")
    return lines


def markdown(dataset: str, summaries: Sequence[Summary], records: Sequence[Record]) -> str:
    """A Markdown report: the headline table, breakdowns with counts, latency, and every question."""
    lines = [f"# Eval: {dataset}", ""]
    lines += [
        "| config | questions | accuracy % | F1 % | exact % | recall@1 % | recall@3 % | recall@5 % | recall@10 % "
        "| MRR % | abstention precision % | abstention recall % | p50 ms | p95 ms | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        total = s.latency_ms.get("total_ms", s.latency_ms.get("client_ms", {"p50": math.nan, "p95": math.nan}))
        lines.append(
            f"| {s.config} | {s.questions} | {percent(s.accuracy)} | {percent(s.f1)} | {percent(s.exact)} | "
            + " | ".join(percent(s.recall[k]) for k in RECALL_KS)
            + f" | {percent(s.mrr)} | {percent(s.abstain_precision)} | {percent(s.abstain_recall)} | "
            f"{_ms(total['p50'])} | {_ms(total['p95'])} | {s.errors} |"
        )
    lines += [
        "",
        "- accuracy: answerable questions whose answer holds the expected one; abstaining on one is wrong.",
        "- F1 and exact: characters shared with the shortest expected answer, and exact equality.",
        "- recall@k: questions with a passage of the right article among the first k retrieved; MRR: the mean of "
        "1/rank of the first such passage.",
        "- abstention precision: abstentions that were on unanswerable questions; recall: unanswerable questions "
        "abstained on.",
        "- p50 / p95: time from question to final answer, in milliseconds.",
    ]
    lines += _breakdown(
        "Accuracy by category", "Right answers (abstaining on an unanswerable question is right).",
        "by_category", "", summaries,
    )  # fmt: skip
    lines += _breakdown("Accuracy by language of the question", "", "by_language", "language:", summaries)
    lines += _breakdown(
        "Accuracy by form of the question", "Time questions by their kind, and events compared or dated.",
        "by_form", "form:", summaries,
    )  # fmt: skip
    lines += ["", "## Time by stage (ms, p50 / p95)", ""]
    stages = sorted({stage for s in summaries for stage in s.latency_ms})
    lines += ["| config | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
    for s in summaries:
        cells = [f"{_ms(s.latency_ms[st]['p50'])} / {_ms(s.latency_ms[st]['p95'])}" if st in s.latency_ms else "–"
                 for st in stages]  # fmt: skip
        lines.append(f"| {s.config} | " + " | ".join(cells) + " |")
    reasons = sorted({reason for s in summaries for reason in s.abstain_reasons})
    if reasons:
        lines += ["", "## Why it abstained (questions)", ""]
        lines += ["| reason | " + " | ".join(s.config for s in summaries) + " |", "|---|" + "---|" * len(summaries)]
        for reason in reasons:
            lines.append(f"| {reason} | " + " | ".join(str(s.abstain_reasons.get(reason, 0)) for s in summaries) + " |")
    for s in summaries:
        rows = [r for r in records if r.config == s.config]
        lines += ["", f"## Every question: {s.config}", ""]
        lines += ["| id | category | question | expected | answer | verdict | cited | ms |"]
        lines += ["|---|---|---|---|---|---|---|---|"]
        for r in rows:
            answer = (r.error and f"(error: {r.error})") or (
                f"(abstained: {r.abstain_reason})" if r.abstained else r.answer
            )
            lines.append(
                f"| {r.qid} | {r.category} | {_cell(r.question)} | {_cell(r.expected) or '(none: abstain)'} | "
                f"{_cell(answer)} | {verdict(r)} | {_cell(r.cited, 40)} | {_ms(_total_ms(r))} |"
            )
    return "\n".join(lines) + "\n"


def chart(dataset: str, summaries: Sequence[Summary], path: Path) -> None:
    """A PNG of accuracy per category, each bar labelled with its percentage and its count of questions;
    one colour per config."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_count = sorted({name for s in summaries for name in s.by_category}, key=lambda g: -summaries[0].counts.get(g, 0))
    groups = ["all answerable", *by_count]
    height = 0.8 / max(1, len(summaries))
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(groups) * max(1, len(summaries)) ** 0.5 + 1.6))
    colours = ["#3b7dd8", "#d8873b", "#4caf50", "#9c27b0", "#795548", "#607d8b"]
    for n, s in enumerate(summaries):
        values = [s.accuracy] + [s.by_category.get(g, math.nan) for g in groups[1:]]
        ys = [i + n * height for i in range(len(groups))]
        bars = [0.0 if math.isnan(v) else 100 * v for v in values]
        ax.barh(ys, bars, height=height, color=colours[n % len(colours)], label=s.config)
        for y, v in zip(ys, values, strict=True):
            label = "–" if math.isnan(v) else f"{100 * v:.0f}%"
            ax.text((0 if math.isnan(v) else 100 * v) + 1, y, label, va="center", fontsize=8)
    first = summaries[0]
    labels = [f"all answerable ({first.answerable})"] + [f"{g} ({first.counts.get(g, 0)})" for g in groups[1:]]
    ax.set_yticks([i + height * (len(summaries) - 1) / 2 for i in range(len(groups))], labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 112)
    ax.set_xlabel("questions answered right (%); in brackets: questions")
    ax.set_title(f"{dataset}: accuracy by category")
    if len(summaries) > 1:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(out: Path, dataset: str, summaries: Sequence[Summary], records: Sequence[Record]) -> dict[str, Path]:
    """results.json, report.md and chart.png under ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "markdown": out / "report.md", "chart": out / "chart.png"}
    payload = {"dataset": dataset, "summaries": [asdict(s) for s in summaries], "records": [asdict(r) for r in records]}
    paths["json"].write_text(json.dumps(payload, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    paths["markdown"].write_text(markdown(dataset, summaries, records), encoding="utf-8")
    chart(dataset, summaries, paths["chart"])
    return paths
