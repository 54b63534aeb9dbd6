"""The question analysis, pinned by a table (tests/data/question_analysis.jsonl).

Each row is a question from a visible dev set (seed, CMRC 2018, ChronoQA), an English question
of ours, or a natural paraphrase of a template-shaped one, with the fields of ``QuestionInfo``
a correct analysis gives (only the fields a row lists are checked; names only where they are
the question's names rather than the tagger's fragments). A row marked ``known_gap`` states
what is right and fails today: it is an expected failure that must start passing when the
gap is closed (strict), and then loses its mark. Every rule added to the analysis comes with
rows here.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from rag.answer.analysis import Limits, analyse, read_question
from rag.errors import InvalidQuestion
from rag.lang.zh.units import UNIT_GROUPS
from rag.types import QuestionInfo

TABLE = Path(__file__).parent / "data" / "question_analysis.jsonl"
ROWS = [json.loads(line) for line in TABLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def _observed(info: QuestionInfo, field: str) -> Any:
    if field == "units":
        return next((group for group, units in UNIT_GROUPS.items() if units == info.units), "/".join(info.units))
    if field == "events":
        return list(info.comparison.events) if info.comparison else None
    if field == "relation":
        return info.comparison.relation if info.comparison else None
    if field == "event":
        return info.same_day.event if info.same_day else None
    if field == "names":
        return list(dict.fromkeys(c.word for c in info.name_candidates))
    if field == "asked_date":
        return list(info.asked_date) if info.asked_date else None
    return getattr(info, field)


def _param(row: dict[str, Any]) -> Any:
    marks = [pytest.mark.xfail(reason=row["known_gap"], strict=True)] if "known_gap" in row else []
    return pytest.param(row, marks=marks, id=f"{row['source']}:{row['question'][:24]}")


def test_the_table_is_large_and_covers_every_source() -> None:
    assert len(ROWS) >= 150
    sources = {row["source"] for row in ROWS}
    assert {"seed", "cmrc2018", "chronoqa", "english", "paraphrase"} <= sources
    assert sum("known_gap" not in row for row in ROWS) >= 130


@pytest.mark.parametrize("row", [_param(row) for row in ROWS])
def test_a_question_is_analysed_as_the_table_says(row: dict[str, Any]) -> None:
    as_of = date.fromisoformat(row["as_of"]) if row.get("as_of") else None
    info = read_question(row["question"], as_of)
    observed = {field: _observed(info, field) for field in row["expected"]}
    assert observed == row["expected"]


def test_the_analysis_validates_and_keeps_the_question_as_asked() -> None:
    info = analyse("  凤凰县为多少名农民工追回了拖欠工资？ ", date(2024, 3, 15))
    assert info.text == info.original == "凤凰县为多少名农民工追回了拖欠工资？"
    for bad in ("", "   ", "x\ud800", "多" * 30):
        with pytest.raises(InvalidQuestion):
            analyse(bad, limits=Limits(question_chars=20, history_turns=5, history_chars=100))


def test_a_same_day_question_carries_the_analysis_of_what_it_asks() -> None:
    info = read_question("长沙地铁六号线开通运营当天，湖南最大降雨量达到多少？")
    assert info.same_day is not None and info.same_day.rest.asks == "number"
    assert info.same_day.rest.text == "湖南最大降雨量达到多少？"
