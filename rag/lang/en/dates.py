"""Dates as English writes them: read in a model's draft (Sep 27, 2022), written for an
English answer (27 September 2022)."""

from __future__ import annotations

import re

from rag.lang.tables import words
from rag.types import Ymd

MONTHS = words("en", "months")
# Each month whole or by its first three letters; September also as Sept.
_MONTH = "|".join(f"{name[:3]}(?:{name[3:]})?" for name in MONTHS) + "|Sept"
_ORDINAL = r"(?:st|nd|rd|th)?"
# 27 September 2022, September 27, 2022, Sep. 27, September 2010, 27 Sept: a month with a day or a year.
_DATE = re.compile(
    rf"(?<![A-Za-z\d])(?:(?P<before>\d{{1,2}}){_ORDINAL}\s+)?(?P<month>{_MONTH})(?![A-Za-z])\.?"
    rf"(?:\s+(?P<after>\d{{1,2}}){_ORDINAL}(?![A-Za-z\d]))?(?:,?\s+(?P<year>\d{{4}})(?!\d))?",
    re.I,
)


def written_dates(text: str) -> list[tuple[Ymd, int, int]]:
    """Every English date of a month with its day or year: its (year, month, day) and where it is."""
    found = []
    for match in _DATE.finditer(text):
        day = match["before"] or match["after"]
        if not (day or match["year"]):
            continue  # "May" alone is a verb as often as a month
        month = next(n for n, name in enumerate(MONTHS, 1) if name[:3].lower() == match["month"][:3].lower())
        when: Ymd = (int(match["year"]) if match["year"] else None, month, int(day) if day else None)
        if when[2] is not None and not 1 <= when[2] <= 31:
            continue
        found.append((when, match.start(), match.end()))
    return found


def written_day(year: int | None, month: int | None, day: int | None) -> str:
    """A date as English writes it, with what is known of it: 27 September 2022, September 2010, 2010."""
    return " ".join(
        str(part) for part in (day if month else None, MONTHS[month - 1] if month else None, year) if part is not None
    )
