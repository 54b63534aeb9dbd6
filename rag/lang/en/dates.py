"""Dates as English writes them: read in a model's draft (Sep 27, 2022), written for an
English answer (27 September 2022)."""

from __future__ import annotations

import re

from rag.lang.tables import words
from rag.types import Ymd

MONTHS = words("en", "months")
# Days in each month (a leap year's February).
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Each month whole or by its first three letters, capitalised as English writes months (so
# that "may" and "march" stay verbs); September also as Sept.
_MONTH = "|".join(f"{name[:3]}(?:{name[3:]})?" for name in MONTHS) + "|Sept"
_ORDINAL = f"(?:{'|'.join(words('en', 'ordinals'))})?"
# 27 September 2022, September 27, 2022, Sep. 27, September 2010, 27 Sept: a month with a day
# or a year. A day is no part of a clock time (10:30), a decimal or a range (March 3-5).
_DATE = re.compile(
    rf"(?:(?<![\w:.,/\-])(?P<before>\d{{1,2}}){_ORDINAL}\s+)?(?<![A-Za-z])(?P<month>{_MONTH})(?![A-Za-z])\.?"
    rf"(?:\s+(?P<after>\d{{1,2}}){_ORDINAL}(?![\w:.\-–]))?(?:,?\s+(?P<year>\d{{4}})(?![\d\-–]))?"
)


# A year alone after a word that makes it a date (in 2026): the match is the year.
_YEAR = re.compile(
    "(?:" + "|".join(rf"(?<=\b{word} )" for word in words("en", "year_words")) + r")(?:1[89]|20)\d\d(?![\w]|[.,]\d)"
)


def _month_number(written: str) -> int:
    return next(n for n, name in enumerate(MONTHS, 1) if name[:3] == written[:3])


def date_matches(text: str) -> list[re.Match[str]]:
    """Every English date of a month with its day or year (30 June 2024, June 2, Sep 27, 2022)."""
    found = []
    for match in _DATE.finditer(text):
        day = match["before"] or match["after"]
        if not (day or match["year"]):
            continue  # "May" alone is a verb as often as a month
        month = _month_number(match["month"])
        if day and not 1 <= int(day) <= _DAYS[month - 1]:
            continue
        found.append(match)
    return found


def year_matches(text: str) -> list[re.Match[str]]:
    """Years written alone as dates (in 2026, since 2019)."""
    return list(_YEAR.finditer(text))


def written_dates(text: str) -> list[tuple[Ymd, int, int]]:
    """Every English date of a month with its day or year: its (year, month, day) and where it is."""
    found: list[tuple[Ymd, int, int]] = []
    for match in date_matches(text):
        day = match["before"] or match["after"]
        month = _month_number(match["month"])
        when: Ymd = (int(match["year"]) if match["year"] else None, month, int(day) if day else None)
        found.append((when, match.start(), match.end()))
    return found


def written_day(year: int | None, month: int | None, day: int | None) -> str:
    """A date as English writes it, with what is known of it: 27 September 2022, September 2010, 2010."""
    return " ".join(
        str(part) for part in (day if month else None, MONTHS[month - 1] if month else None, year) if part is not None
    )
