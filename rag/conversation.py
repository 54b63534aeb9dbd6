"""Follow-up questions made standalone from the conversation, before retrieval.

"那株洲呢？" after "凤凰县为多少名农民工追回了拖欠工资？" means "株洲为多少名农民工追回了拖欠工资？";
"And how much money was that?" after "How many workers did Fenghuang recover wages for?"
needs the earlier question's topic to retrieve anything. These rules cover the common
shapes without a model:

- a Chinese follow-up that only names something new (``那株洲呢？``, ``株洲呢``) takes the
  earlier question with its place (or, failing that, its first noun) replaced;
- any other short follow-up that names nothing of its own, or one that points back
  (``那``, ``这``, ``it``, ``that``, ``and ...``), gets the earlier question's names
  (places, organisations, people: ``凤凰县``, ``Fenghuang``), or its whole text when it
  names nothing; the follow-up keeps its own question form ("how much money", not the
  earlier "how many workers");
- a question that stands on its own is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.lexicon import STOPWORDS, segmenter

_CJK = re.compile(r"[\u3400-\u9fff]")
# "那株洲呢？", "株洲呢", "那么株洲的呢" -> 株洲
_ONLY_NEW_SUBJECT = re.compile(r"^(?:那么?|还有|那个)?\s*(?P<subject>[\u3400-\u9fffA-Za-z0-9]{1,12}?)(?:的)?呢[？?]?$")
_POINTS_BACK_ZH = re.compile(r"^(?:那|那么|还有|另外|其中|这|此外)|(?:这些|那些|这个|那个|其|他们|它们|他|她|它)")
_POINTS_BACK_EN = re.compile(
    r"^(?:and|also|what about|how about|then)\b|\b(?:it|its|that|those|these|this|they|them|there|he|she|his|her)\b",
    re.IGNORECASE,
)
_SHORT_ZH = 8
_SHORT_EN = 5


@dataclass(frozen=True)
class Turn:
    """One earlier message."""

    role: str
    content: str


def _previous_question(history: Sequence[Turn]) -> str:
    for turn in reversed(history):
        if turn.role == "user" and turn.content.strip():
            return turn.content.strip()
    return ""


def _replace_subject(previous: str, subject: str) -> str | None:
    """The earlier question with its place (else its first noun) replaced by ``subject``."""
    import jieba.posseg

    segmenter()
    words = [(w.word, w.flag) for w in jieba.posseg.cut(previous)]
    for wanted in ("ns", "nt", "nr", "n"):
        for n, (word, flag) in enumerate(words):
            if flag == wanted and word != subject:
                return "".join(w for w, _ in words[:n]) + subject + "".join(w for w, _ in words[n + 1 :])
    return None


def _chinese_names(text: str) -> list[str]:
    """Places, organisations and people jieba finds in a text."""
    import jieba.posseg

    segmenter()
    return list(dict.fromkeys(w.word for w in jieba.posseg.cut(text) if w.flag in ("ns", "nt", "nr")))


def _latin_names(text: str) -> list[str]:
    """Capitalised words after the first word (names, in an English question)."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text)
    return list(dict.fromkeys(w for w in words[1:] if w[0].isupper() and w.lower() not in STOPWORDS))


def _topic(previous: str, question: str) -> str:
    """What the follow-up needs from the earlier question: its names it lacks, else all of it."""
    names = [n for n in _chinese_names(previous) + _latin_names(previous) if n not in question]
    return " ".join(names) if names else previous


def standalone_question(question: str, history: Sequence[Turn]) -> str:
    """The question as it should be retrieved, given the earlier turns (oldest first)."""
    question = question.strip()
    previous = _previous_question(history)
    if not question or not previous or question == previous:
        return question
    if _CJK.search(question):
        match = _ONLY_NEW_SUBJECT.match(question)
        if match:
            replaced = _replace_subject(previous, match.group("subject"))
            if replaced:
                return replaced
        short = len(_CJK.findall(question)) <= _SHORT_ZH and not _chinese_names(question)
        if short or _POINTS_BACK_ZH.search(question):
            return f"{_topic(previous, question)} {question}"
        return question
    words = re.findall(r"[A-Za-z0-9']+", question)
    if len(words) <= _SHORT_EN or _POINTS_BACK_EN.search(question):
        return f"{question} ({_topic(previous, question)})"
    return question
