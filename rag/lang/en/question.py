"""How an English question says what it asks for, and what it means in Chinese news.

English questions are asked about Chinese text: the unit a question's number needs is a group
of Chinese units (``rag.lang.zh.units``), and a title is looked for as its Chinese titles.
Read only by the question analysis (``rag.answer.analysis``).
"""

from __future__ import annotations

import re

# What a question asks for, by its question words (tried in the order of rag.lang.zh.question.ASKS).
ASKS: dict[str, re.Pattern[str]] = {
    "date": re.compile(r"\bwhen\b|\bwhat (year|month|date|day)\b|\bsince when\b", re.I),
    "number": re.compile(
        r"\bhow (many|much|long|far|big|large)\b|\bwhat (percentage|percent|proportion|share|rate)\b"
        r"|\bnumber of\b",
        re.I,
    ),
    "person": re.compile(r"\bwho(m|se)?\b|\bwhat is the name of\b", re.I),
    "place": re.compile(
        r"\bwhere\b|\b(?:which|what) (?:city|country|province|county|place|town|village|region)\b", re.I
    ),
    "list": re.compile(r"\bwhat are the\b|\bwhich (?:ones|of the)\b|\blist (?:the|all)\b", re.I),
    "yes-no": re.compile(r"^\s*(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would|should)\b", re.I),
}
# Words that name what a number counts, by unit group (rag.lang.zh.units.UNIT_GROUPS).
UNIT_HINTS: dict[str, re.Pattern[str]] = {
    "percent": re.compile(r"\b(percent(age)?|rate|ratio|proportion|share)\b|%", re.I),
    "money": re.compile(
        r"\b(money|yuan|wages?|salar(y|ies)|funds?|funding|subsid(y|ies)|cost|revenue|tax(es)?|worth|rmb)\b", re.I
    ),
    "people": re.compile(
        r"\b(people|persons?|workers?|employees?|students?|teachers?|residents?|villagers?|volunteers?|members?|visitors?|leaders?|officials?|talents?|graduates?|trainees?)\b",
        re.I,
    ),
    "days": re.compile(r"\bdays?\b", re.I),
    "hours": re.compile(r"\bhours?\b", re.I),
    "orgs": re.compile(
        r"\b(companies|company|enterprises?|firms?|institutions?|organi[sz]ations?|agencies|schools?|factories)\b", re.I
    ),
    "cases": re.compile(r"\bcases?\b", re.I),
    "items": re.compile(
        r"\b(problems?|issues?|items?|types?|kinds?|projects?|measures?|jobs?|occupations?|posts?)\b", re.I
    ),
    "sessions": re.compile(r"\b(sessions?|classes|courses?|competitions?|contests?|events?|times|batches?)\b", re.I),
    "area": re.compile(r"\b(mu|acres?|hectares?|square met(er|re)s?)\b", re.I),
    "years": re.compile(r"\byears?\b", re.I),
}
# Titles, and the Chinese titles they are written as.
TITLE_HINTS: dict[str, str] = {
    "secretary": "书记",
    "director": "局长|主任",
    "mayor": "市长",
    "head": "局长|主任|县长|馆长",
    "chairman": "会长|董事长",
    "reporter": "记者",
}
_HOW_MANY_NOUN = re.compile(r"\bhow many\s+((?:[\w-]+\s+){0,2}[\w-]+)", re.I)
_TERM = re.compile(r"[A-Za-z]{2,}")


def unit_group(question: str) -> str:
    """The unit group a question's number counts: the noun right after "how many" says most,
    otherwise the first hint in the question; '' when none."""
    noun = _HOW_MANY_NOUN.search(question)
    for text in ([noun.group(1)] if noun else []) + [question]:
        for group, pattern in UNIT_HINTS.items():
            if pattern.search(text):
                return group
    return ""


def titles_asked(question: str) -> list[str]:
    """The Chinese titles of the titles an English question names (director -> 局长|主任)."""
    return [zh for en, zh in TITLE_HINTS.items() if re.search(rf"\b{en}\b", question, re.I)]


def latin_terms(question: str) -> tuple[str, ...]:
    """Words of two or more Latin letters (GDP, Zhuzhou)."""
    return tuple(_TERM.findall(question))


AGGREGATES: dict[str, re.Pattern[str]] = {
    "max": re.compile(r"\b(?:highest|most|maximum|peak|largest|biggest|longest)\b", re.I),
    "min": re.compile(r"\b(?:lowest|least|fewest|minimum|smallest|shortest)\b", re.I),
    "total": re.compile(r"\b(?:total|in all|altogether|combined|overall)\b", re.I),
}
