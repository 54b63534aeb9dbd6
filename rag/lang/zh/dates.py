"""Dates in questions and passages: what a question dates, and how well a passage agrees.

News about the same thing recurs (the 2022 and the 2023 spring rush); a question that
names a day, month or year is about the passage of that date.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from rag.types import Ymd

# A month's number as Chinese writes it (9月).
MONTH_NUMBER = re.compile(r"\d{1,2}\s*月")
# What joins the two ends of a range of dates (1-9月, 3月至5月).
_RANGE_MARKS = "-－—~～至到"
_YMD = re.compile(r"(?=\d)(?:(\d{4})\s*年)?\s*(?:(\d{1,2})\s*月)?\s*(?:(\d{1,2})\s*[日号])?")


def written_spans(text: str) -> list[tuple[Ymd, str]]:
    """Every date written with digits (2023年4月12日, 4月12日, 2023年): its (year, month, day)
    and the text that writes it."""
    found = []
    for match in _YMD.finditer(text):
        year, month, day = (int(g) if g else None for g in match.groups())
        if year is None and month is None:
            continue  # a bare day number (or nothing)
        if month is not None and not 1 <= month <= 12:
            continue
        found.append(((year, month, day), match.group().strip()))
    return found


def written_matches(text: str) -> list[tuple[Ymd, int, int]]:
    """Every date written with digits and a 年 or 月 (2023年4月12日, 4月12日, 2023年): its (year,
    month, day) and where it is. Not a part of a longer figure (2012月) nor an end of a range
    (2023年1-9月, 3月至5月), which are no dates of their own."""
    found: list[tuple[Ymd, int, int]] = []
    for match in _YMD.finditer(text):
        year, month, day = (int(g) if g else None for g in match.groups())
        if (year is None and month is None) or (month is not None and not 1 <= month <= 12):
            continue
        end = match.start() + len(match.group().rstrip())
        before, after = text[match.start() - 1 : match.start()], text[end : end + 1]
        if any(mark and (mark.isdigit() or mark in _RANGE_MARKS) for mark in (before, after)):
            continue
        found.append(((year, month, day), match.start(), end))
    return found


def written_date(year: int | None, month: int | None, day: int | None) -> str:
    """A date as Chinese writes it, with what is known of it: 2022年9月27日, 2010年9月, 9月27日."""
    parts = ((year, "年"), (month, "月"), (day if month else None, "日"))
    return "".join(f"{value}{mark}" for value, mark in parts if value is not None)


def dates_in(text: str) -> list[Ymd]:
    """(year, month, day) of every date written with digits (2023年4月12日, 4月12日, 2023年)."""
    return [when for when, _ in written_spans(text)]


def written_day(year: int | None, month: int | None, day: int | None) -> str:
    """A day as Chinese writes it (2024年5月1日)."""
    return f"{year}年{month}月{day}日"


def iso_day(text: str) -> date | None:
    """The day a YYYY-MM-DD string names (a publication day), None when it names none."""
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        return None


_NUMERALS = {
    "一": 1,
    "两": 2,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
    "半": 0,
}
_YEARS = {"今年": 0, "去年": -1, "前年": -2, "明年": 1, "后年": 2}
_N = r"(\d+|[一两二三四五六七八九十半])"
_RELATIVE = re.compile(
    rf"(今年|去年|前年|明年|后年|{_N}\s*年前)\s*(?:(\d{{1,2}}|[一二三四五六七八九十]|十一|十二)\s*月(?:份)?\s*(?:(\d{{1,2}})\s*[日号])?)?"
    rf"|(上个?月|本月|这个月|下个?月|{_N}\s*个月前)(?:\s*(\d{{1,2}})\s*[日号])?"
    r"|(今天|今日|昨天|昨日|前天)"
)


def _number(text: str) -> int:
    return int(text) if text.isdigit() else _NUMERALS.get(text, 0) if len(text) == 1 else 10 + _NUMERALS[text[1]]


def _month_shift(year: int, month: int, by: int) -> tuple[int, int]:
    total = year * 12 + month - 1 + by
    return total // 12, total % 12 + 1


# Days and weeks back: 三天前; 前一天 opening the question (the day before it is asked);
# 上周, 两个星期前 (the month of that week).
_DAYS_BACK = re.compile(
    rf"(?<![\d一两二三四五六七八九十百]){_N}\s*天前|^前一天|(上个?(?:周|星期|礼拜)(?!期))"
    rf"|(?<![\d一两二三四五六七八九十百]){_N}\s*个?多?(?:周|星期|礼拜)前"
)


def _days_back(text: str, as_of: date) -> Ymd | None:
    found = _DAYS_BACK.search(text)
    if not found:
        return None
    days, last_week, weeks = found.groups()
    if days or not (last_week or weeks):
        when = as_of - timedelta(days=_number(days) if days else 1)
        return (when.year, when.month, when.day)
    when = as_of - timedelta(weeks=1 if last_week else max(_number(weeks), 1))
    return (when.year, when.month, None)


def resolve_relative(question: str, as_of: date) -> Ymd | None:
    """The date a relative expression means on ``as_of``: 去年4月18日 -> (as_of.year - 1, 4, 18),
    三年前 -> (year - 3,), 上个月 -> (year, month - 1), 昨天 or 前一天 -> the day before, 三天前
    -> three days back, 上周 or 两个星期前 -> the month of that week; None without one.
    (半年前 is six months back.)"""
    found = _RELATIVE.search(question)
    if not found:
        return _days_back(question, as_of)
    years, n_years, month, day, months, n_months, month_day, days = found.groups()
    if years:
        if years in _YEARS:
            year = as_of.year + _YEARS[years]
        elif n_years == "半":
            year, shifted = _month_shift(as_of.year, as_of.month, -6)
            return (year, shifted, None) if not month else (year, _number(month), int(day) if day else None)
        else:
            year = as_of.year - _number(n_years)
        return (year, _number(month) if month else None, int(day) if day and month else None)
    if months:
        if months in ("本月", "这个月"):
            by = 0
        elif months.startswith("上"):
            by = -1
        elif months.startswith("下"):
            by = 1
        else:
            by = -6 if n_months == "半" else -_number(n_months)
        year, shifted = _month_shift(as_of.year, as_of.month, by)
        return (year, shifted, int(month_day) if month_day else None)
    back = {"今天": 0, "今日": 0, "昨天": 1, "昨日": 1, "前天": 2}[days]
    when = as_of - timedelta(days=back)
    return (when.year, when.month, when.day)


def question_date(question: str, as_of: date | None = None) -> Ymd | None:
    """The date the question is about: the first absolute one it names (2023年4月12日 ->
    (2023, 4, 12)), else its relative one (去年4月) resolved on ``as_of`` (when given)."""
    dates = [d for d in dates_in(question) if d[0] is not None]
    if dates:
        return dates[0]
    return resolve_relative(question, as_of) if as_of is not None else None


def written_dates(text: str, published: str = "") -> list[Ymd]:
    """The dates a text writes with digits, and, for a text published on ``published``
    (YYYY-MM-DD), the days its relative words mean (去年10月 in a 2023 article -> (2022, 10))."""
    found = dates_in(text)
    if (day := iso_day(published)) is not None:
        for match in _RELATIVE.finditer(text):
            if (resolved := resolve_relative(match.group(), day)) is not None:
                found.append(resolved)
    return found


def date_agreement(asked: Ymd | None, text: str, published: str = "") -> float:
    """How closely the text's best date matches the asked one: the share of the asked
    year, month and day it gives, 0 when it names none of them or contradicts one. A text
    published on ``published`` also dates by its relative words (``written_dates``)."""
    if asked is None:
        return 0.0
    wanted = [(n, v) for n, v in enumerate(asked) if v is not None]
    best = 0.0
    for found in written_dates(text, published):
        if any(found[n] is not None and found[n] != v for n, v in wanted):
            continue
        best = max(best, sum(found[n] == v for n, v in wanted) / len(wanted))
    return best


def dated_first(rows: list[tuple[int, float]], agreement: list[float]) -> list[tuple[int, float]]:
    """Ranked rows with those that fully agree with the asked date moved to the front (each
    group keeps its order)."""
    return [r for r, a in zip(rows, agreement, strict=True) if a == 1.0] + [
        r for r, a in zip(rows, agreement, strict=True) if a < 1.0
    ]


_ISO = re.compile(r"(?<!\d)((?:19|20)\d{2})[-_./]?(0[1-9]|1[0-2])[-_./]?(0[1-9]|[12]\d|3[01])(?!\d)")
_ZH_DAY = re.compile(r"((?:19|20)\d{2})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
# A date this close to the top of a text is its dateline, not one of the events it reports.
_DATELINE_CHARS = 80


def _iso(year: str, month: str, day: str) -> str:
    try:
        return date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return ""


def published_date(text: str, name: str = "") -> str:
    """The day a document was published (YYYY-MM-DD) when its format does not say (a web
    page's metadata does, rag.ingest.webpages): a date in its file name (2023-04-12-x.txt), else a
    date on its first line or at the very top of its text; empty when none says."""
    if found := _ISO.search(name.rsplit("/", 1)[-1]):
        return _iso(*found.groups())
    top = text.lstrip()[:_DATELINE_CHARS]
    for pattern in (_ZH_DAY, _ISO):
        if found := pattern.search(top):
            return _iso(*found.groups())
    return ""
