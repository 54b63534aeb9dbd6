"""A verified answer written as the question's language writes dates and counts.

The passages are mostly Chinese and the question may be English, so a span quoted from them
(``2010年 9月``, ``386 名``) reads wrongly in an English answer, and a model writing a Chinese
answer sometimes writes its date in English (``Sep 27, 2022``). Each unit the verifier
releases passes through ``localise`` once, after it was checked against the passages: only
the way a date or a count is written changes, never its value, so the unit stays grounded.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rag.lang.en import dates as en_dates
from rag.lang.tables import words
from rag.lang.zh import dates as zh_dates
from rag.lang.zh.script import HAN, in_chinese
from rag.lang.zh.units import COUNTING_UNITS, MORE_THAN
from rag.types import Ymd

# A count in a counting unit, with nothing Chinese after it (386 名 [1], 1700多家): in an
# English sentence it is the number alone.
_COUNT = re.compile(
    rf"(?<![\d.,])(\d[\d,]*(?:\.\d+)?)\s*({'|'.join(MORE_THAN)})?\s*"
    rf"(?:{'|'.join(map(re.escape, sorted(COUNTING_UNITS, key=len, reverse=True)))})(?![{HAN}])"
)
_MORE_THAN = words("en", "more_than")[0]
_NUMBER = re.compile(r"\d+")
Writer = Callable[[int | None, int | None, int | None], str]


def _rewrite(text: str, found: list[tuple[Ymd, int, int]], write: Writer) -> str:
    for when, start, end in reversed(found):
        text = text[:start] + write(*when) + text[end:]
    return text


def _count(match: re.Match[str]) -> str:
    return f"{_MORE_THAN} {match[1]}" if match[2] else match[1]


def localise(unit: str, language: str) -> str:
    """``unit`` with its dates and counts written as ``language`` (the question's) writes them,
    or as Chinese does when the unit is a Chinese sentence whatever the question's language.
    A rewrite that would bring a number the unit does not hold is not made: the unit was
    verified as it is."""
    if in_chinese(unit):  # a Chinese sentence keeps Chinese dates
        language = "zh"
    if language == "en":
        written = _COUNT.sub(_count, _rewrite(unit, zh_dates.written_matches(unit), en_dates.written_day))
    elif language == "zh":
        written = _rewrite(unit, en_dates.written_dates(unit), zh_dates.written_date)
    else:
        return unit
    # A month's number is the month the verified unit named in words (Sep -> 9月).
    new = set(_NUMBER.findall(zh_dates.MONTH_NUMBER.sub(" ", written))) - set(_NUMBER.findall(unit))
    return unit if new else written
