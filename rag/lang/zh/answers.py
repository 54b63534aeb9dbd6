"""What answers look like in Chinese news text: figures with their units, dates, people named
after their titles, and the clauses around them.

The evidence gate (``rag.answer.evidence``) asks these for the spans of a sentence; which
span answers the question is its decision.
"""

from __future__ import annotations

import re

from rag.lang.tables import alternation, pattern
from rag.lang.zh.script import HAN
from rag.lang.zh.units import UNIT
from rag.lang.zh.words import TITLES

# A figure: an approximation or order word, digits, 余/多, a scale (万亿 before 万), a unit
# (with the currency a money unit may name after it: 60亿元人民币, or what it is per:
# 8元/公斤), a second figure for a range or a score (45万至50万人, 3-0), and 以上/左右.
_FIGURE = (
    r"\d+(?:[.,]\d+)*\s*(?:余|多)?\s*(?:万亿|千亿|百亿|十亿|万|亿|千|百)?\s*(?:余|多)?"
    rf"\s*(?:(?:{UNIT}|级)(?:人民币)?(?:/(?:{UNIT}|公斤|千克|斤|吨|平方米|人|年|月|天|小时))?)?"
)
_NUMBER = re.compile(
    r"(?:每(?:秒|分钟|小时|天|日|周|月|年)?)?(?:第|近|约|至少|最多|不足|不到|高达|多达|超过|超|逾|达|仅|共)?"
    rf"\s*{_FIGURE}(?:\s*(?:至|到|-|~|～|—)\s*{_FIGURE})?(?:以上|以下|左右)?"
)
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_BARE_YEAR = re.compile(r"\d{4}\s*年")
# Digits that are part of a date or a clock time (2024年1月, 3日, 10时) are not a figure.
_DATE_PART = re.compile(r"\s*(?:月|日|号|时|点\d)")
# A date: year, month, day (or 底/初/中旬), a range to a later day, month or date, or a
# clock time (21:25).
_DAY = r"(?:\d{4}\s*年(?:\s*\d{1,2}\s*月(?:份|\s*\d{1,2}\s*[日号])?)?|\d{1,2}\s*月\s*\d{1,2}\s*[日号]|\d{1,2}\s*月份?)"
_DATE = re.compile(
    rf"(?:今年|去年)?\s*{_DAY}(?:底|初|末|中旬|上旬|下旬)?"
    rf"(?:\s*(?:至|到|—|－|~|～)\s*(?:{_DAY}|\d{{1,2}}\s*[日号]))?"
    r"|上世纪\s*\d+\s*年代|\d{1,2}[:：]\d{2}"
)
_YEAR_ONLY = re.compile(r"(?:今年|去年)?\s*\d{4}\s*年")
_HAS_YEAR = re.compile(r"\d{4}\s*年|年代")
_STARTS_WITH_MONTH = re.compile(r"\s*\d{1,2}\s*月")
# A person after a title, before what news says of them: 局长莫雄介绍.
_PERSON = re.compile(
    rf"(?P<title>{TITLES})(?P<name>[\u4e00-\u9fff]{{2,3}}?)"
    r"(?=说|介绍|表示|特别|仔细|认真|所|赶|来|回|出生|此行|曾|的|是|在|到|，|。|、|（|$)"
)
# Clauses end at these marks, and a table's cells at `` | `` (rag.ingest.office).
_CLAUSE = re.compile(r"[，。；;,|]")
_LIST_MARKS = "，。；：,;:"


def figures(sentence: str) -> list[re.Match[str]]:
    """The figures of a sentence with their scale and unit (not a bare year, nor the digits of a
    date or a clock time)."""
    kept = []
    for match in _NUMBER.finditer(sentence):
        span = match.group().strip()
        digits = _DIGITS.search(span)
        if digits is None or _BARE_YEAR.fullmatch(span):
            continue
        if span == digits.group() and _DATE_PART.match(sentence, match.end()):
            continue
        kept.append(match)
    return kept


def figure_digits(span: str) -> str:
    """The digits of a figure, without thousands separators (1,700多家 -> 1700)."""
    digits = _DIGITS.search(span)
    return digits.group().replace(",", "") if digits else ""


def dates(sentence: str) -> list[re.Match[str]]:
    """The dates a sentence writes: days, months, years, ranges, clock times."""
    return [m for m in _DATE.finditer(sentence) if m.group().strip()]


def is_year_only(span: str) -> bool:
    """Is the date a year alone (2014年)?"""
    return _YEAR_ONLY.fullmatch(span) is not None


def lacks_year(span: str) -> bool:
    """Is the date a month or day without its year (9月22日)?"""
    return not _HAS_YEAR.search(span) and _STARTS_WITH_MONTH.match(span) is not None


def with_year(span: str, year: int) -> str:
    """A yearless date with its year written before it."""
    return f"{year}年{span.strip()}"


def people(sentence: str) -> list[re.Match[str]]:
    """People named after a title (局长莫雄): matches with the groups ``title`` and ``name``."""
    return list(_PERSON.finditer(sentence))


def holds_title(sentence: str, start: int, title: str, wanted: str) -> bool:
    """Does the person hold a wanted title: the one before the name, or one listed with it?

    ``县纪委书记、县监委代主任龙江`` gives 龙江 both titles: the list runs back to the
    last comma or full stop before the name.
    """
    clause_start = max(sentence.rfind(mark, 0, start) for mark in _LIST_MARKS) + 1
    return re.fullmatch(wanted, title) is not None or re.search(wanted, sentence[clause_start:start]) is not None


def clause_before(sentence: str, start: int, reach: int = 10) -> str:
    """The words of the clause just before ``start`` (at most ``reach`` characters)."""
    return _CLAUSE.split(sentence[max(0, start - reach) : start])[-1].rstrip(" ：:")  # 增速：6.4%


def clause_after(sentence: str, end: int, reach: int = 10) -> str:
    """The words of the clause just after ``end`` (at most ``reach`` characters)."""
    return _CLAUSE.split(sentence[end : end + reach])[0]


# How a passage says a figure is the highest, the lowest or a total (said_* of rules.toml).
_SAID = {kind: pattern("zh", f"said_{kind}") for kind in ("max", "min", "total")}
_RECORD = pattern("zh", "said_record")


def said_aggregate(sentence: str, start: int, end: int) -> str:
    """``max``, ``min`` or ``total`` when the clause of the figure at ``start:end`` says it is
    the highest, the lowest or a total (单日最高4.5万人次, 累计接待15.6万人次), else ''.
    The clause is the words before the figure and the words after it up to the next clause."""
    around = clause_before(sentence, start, 12) + clause_after(sentence, end, 24) + _next_clause(sentence, end)
    return next((kind for kind, said in _SAID.items() if said.search(around)), "")


def _next_clause(sentence: str, end: int) -> str:
    """The clause after the one ``end`` is in, when it only says more of the figure
    (…4.5万人次，创下单日最高纪录): one that opens with a verb of record."""
    rest = sentence[end:]
    cut = _CLAUSE.search(rest)
    if cut is None:
        return ""
    following = _CLAUSE.split(rest[cut.end() :])[0]
    return following if _RECORD.match(following) else ""


# A figure in Chinese numerals with what it counts (五层, 十五路, 两到三枚, 四至八倍, 约为八成);
# 一 alone (一个, 一种) is an article more often than a count.
_NUMERALS = "零〇一二两三四五六七八九十百千"
_ABOUT = "(?:约为|约|近|共|达)?"
_NUMERAL_FIGURE = re.compile(
    rf"{_ABOUT}[{_NUMERALS}]+(?:(?:至|到|或|-|~)[{_NUMERALS}]+)?(?:{alternation('zh', 'counters')})"
)
_LONE_ONE = re.compile(rf"{_ABOUT}一(?![{_NUMERALS}])")
_NUMERAL_DATE = pattern("zh", "numeral_date", han=HAN)


def numeral_figures(sentence: str) -> list[re.Match[str]]:
    """Figures written in Chinese numerals with a measure word (not 一 alone)."""
    return [m for m in _NUMERAL_FIGURE.finditer(sentence) if _LONE_ONE.match(m.group()) is None]


def numeral_dates(sentence: str) -> list[re.Match[str]]:
    """Dates without a four-digit year: era years, centuries, dynasties, three-digit years."""
    return [m for m in _NUMERAL_DATE.finditer(sentence) if m.group().strip()]
