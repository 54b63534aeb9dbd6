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
from rag.lang.zh.script import HAN
from rag.lang.zh.units import COUNTING_UNITS, MORE_THAN
from rag.types import Ymd

# A count in a counting unit, with nothing Chinese after it (386 名 [1], 1700多家): in an
# English sentence it is the number alone.
_COUNT = re.compile(
    rf"(?<![\d.,])(\d[\d,]*(?:\.\d+)?)\s*({'|'.join(MORE_THAN)})?\s*"
    rf"(?:{'|'.join(map(re.escape, sorted(COUNTING_UNITS, key=len, reverse=True)))})(?![{HAN}])"
)
_MORE_THAN = words("en", "more_than")[0]
# Han characters; and Latin letters, for telling which language a sentence is in.
_HAN = re.compile(f"[{HAN}]")
_LATIN = re.compile(r"[A-Za-z]")
# A sentence with at least this many Han characters, and more of them than Latin letters, is
# Chinese (a Chinese name or two in an English sentence are not).
_CHINESE_CHARS = 6


Writer = Callable[[int | None, int | None, int | None], str]


def _rewrite(text: str, found: list[tuple[Ymd, int, int]], write: Writer) -> str:
    for when, start, end in reversed(found):
        text = text[:start] + write(*when) + text[end:]
    return text


def _count(match: re.Match[str]) -> str:
    return f"{_MORE_THAN} {match[1]}" if match[2] else match[1]


def localise(unit: str, language: str) -> str:
    """``unit`` with its dates and counts written as ``language`` (the question's) writes them,
    or as Chinese does when the unit is a Chinese sentence whatever the question's language."""
    if in_chinese(unit):
        language = "zh"
    if language == "en":
        unit = _rewrite(unit, zh_dates.written_matches(unit), en_dates.written_day)
        return _COUNT.sub(_count, unit)
    if language == "zh":
        return _rewrite(unit, en_dates.written_dates(unit), zh_dates.written_date)
    return unit


def in_chinese(text: str) -> bool:
    """Is the sentence written in Chinese (not an English one naming a Chinese name)?"""
    han = len(_HAN.findall(text))
    return han >= _CHINESE_CHARS and han > len(_LATIN.findall(text))
