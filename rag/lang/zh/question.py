"""How a Chinese question says what it asks for: its question words, the unit or thing it
counts, the title of the person it asks for, and the words around its question word.

The words are tables of ``rules.toml`` beside this file. Read only by the question analysis
(``rag.answer.analysis``), which runs once per question; every later stage reads the
analysis, never the question text.
"""

from __future__ import annotations

import re

from rag.lang.tables import alternation, pattern, words
from rag.lang.zh.script import cjk_bigrams
from rag.lang.zh.units import INDEX_POINTS, UNIT, UNIT_GROUPS, group_of
from rag.lang.zh.words import FILLER_END, TITLES

# What a question asks for, by its question words, in the order the analysis tries them: a
# date before a number before a person (a question may word two: 哪一年…多少), then a place,
# several things, yes or no.
ASKS: dict[str, re.Pattern[str]] = {
    form: pattern("zh", f"asks_{form.replace('-', '_')}", units=UNIT)
    for form in ("date", "number", "person", "place", "list", "yes-no")
}
_ASKS_YEAR = pattern("zh", "asks_year")
# The question words the asked figure or date stands in for, as the text around them is read.
HOW_MANY = pattern("zh", "how_many")
WHEN = pattern("zh", "when")
QUESTION_CHARS = frozenset(words("zh", "question_characters")[0])
_COUNTED = re.compile(rf"(?:{alternation('zh', 'how_many')})\s*({UNIT})")
_COUNT_OF = pattern("zh", "counted_before_shu")
_CHANGE = pattern("zh", "asks_change")
_SHARE = pattern("zh", "asks_share")
_INDEX = pattern("zh", "asks_index")
_MONEY = pattern("zh", "asks_money")
_NOUN_COUNTED = pattern("zh", "counted_noun", units=UNIT)
_CLAUSE_END = pattern("zh", "asked_clause_end")
AGGREGATES: dict[str, re.Pattern[str]] = {kind: pattern("zh", f"aggregate_{kind}") for kind in ("max", "min", "total")}


def counted_units(question: str) -> tuple[str, ...]:
    """Units a question names for its number: ``多少名`` -> people, ``优良天数是多少`` -> days
    (a unit before 数 is what is counted); empty when it names none."""
    if zh := _COUNTED.search(question):
        return group_of(zh.group(1))
    if counted := _COUNT_OF.search(question):
        return group_of(counted.group(1))
    return ()


def wanted_units(question: str, counted: tuple[str, ...]) -> tuple[str, ...] | None:
    """Units the question's number should carry: those it names (``counted``, its
    ``counted_units``), a percentage for a share, points for an index, money for an amount; ()
    for a change (a percentage or an amount, whichever the text gives); None when no rule of
    this language says."""
    if counted:
        return counted
    if _CHANGE.search(question):
        return ()
    if _SHARE.search(question):
        return UNIT_GROUPS["percent"]
    if _INDEX.search(question):  # an index stands at points (17847.99点), not at its change
        return INDEX_POINTS
    if _MONEY.search(question):
        return UNIT_GROUPS["money"]
    return None


def counted_noun(question: str) -> str:
    """What a 'how many' question counts: ``多少名教师`` -> ``教师`` ('' if none)."""
    match = _NOUN_COUNTED.search(question)
    return match.group(1) if match else ""


def titles_asked(question: str) -> list[str]:
    """The titles the question names (县长, 局长)."""
    return re.findall(TITLES, question)


def asks_year(question: str) -> bool:
    """Does the question ask for a year (哪一年), not a day?"""
    return _ASKS_YEAR.search(question) is not None


def topic_pairs(question: str) -> frozenset[str]:
    """Character pairs of a question that name its topic (no question words)."""
    return frozenset(pair for pair in cjk_bigrams(question) if not any(ch in QUESTION_CHARS for ch in pair))


def asked_context(question: str, asking: re.Pattern[str]) -> tuple[str, frozenset[str]]:
    """What the question says of the figure or date it asks for: the words just before its
    question word (多少, 什么时候; without 是/为/了...), and the character pairs around it."""
    found = asking.search(question)
    if not found:
        return "", frozenset()
    left = FILLER_END.sub("", question[max(0, found.start() - 8) : found.start()])
    right = _CLAUSE_END.split(question[found.end() : found.end() + 10])[0]
    pairs = frozenset(p for p in cjk_bigrams(left[-6:] + " " + right) if not any(ch in QUESTION_CHARS for ch in p))
    return left, pairs
