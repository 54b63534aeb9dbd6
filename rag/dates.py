"""Dates in questions and passages: what a question dates, and how well a passage agrees.

News about the same thing recurs (the 2022 and the 2023 spring rush); a question that
names a day, month or year is about the passage of that date.
"""

from __future__ import annotations

import re

Ymd = tuple[int | None, int | None, int | None]

_YMD = re.compile(r"(?=\d)(?:(\d{4})\s*年)?\s*(?:(\d{1,2})\s*月)?\s*(?:(\d{1,2})\s*[日号])?")


def dates_in(text: str) -> list[Ymd]:
    """(year, month, day) of every date written with digits (2023年4月12日, 4月12日, 2023年)."""
    found = []
    for match in _YMD.finditer(text):
        year, month, day = (int(g) if g else None for g in match.groups())
        if year is None and month is None:
            continue  # a bare day number (or nothing)
        if month is not None and not 1 <= month <= 12:
            continue
        found.append((year, month, day))
    return found


def question_date(question: str) -> Ymd | None:
    """The first absolute date the question names (2023年4月12日 -> (2023, 4, 12)), if any."""
    dates = [d for d in dates_in(question) if d[0] is not None]
    return dates[0] if dates else None


def date_agreement(asked: Ymd | None, text: str) -> float:
    """How closely the text's best date matches the asked one: the share of the asked
    year, month and day it gives, 0 when it names none of them or contradicts one."""
    if asked is None:
        return 0.0
    wanted = [(n, v) for n, v in enumerate(asked) if v is not None]
    best = 0.0
    for date in dates_in(text):
        if any(date[n] is not None and date[n] != v for n, v in wanted):
            continue
        best = max(best, sum(date[n] == v for n, v in wanted) / len(wanted))
    return best


def dated_first(rows: list[tuple[int, float]], agreement: list[float]) -> list[tuple[int, float]]:
    """Ranked rows with those that fully agree with the asked date moved to the front (each
    group keeps its order)."""
    return [r for r, a in zip(rows, agreement, strict=True) if a == 1.0] + [
        r for r, a in zip(rows, agreement, strict=True) if a < 1.0
    ]
