"""The question, analysed once: text (and the conversation before it) in, a ``QuestionInfo`` out.

Every later stage (retrieval, the evidence gate, generation, grounding) reads the analysis
carried on the request; none parses the question text again. The language packages hold
the rules (``rag.lang.zh.question``, ``rag.lang.en.question``): this module only asks them.

In order: the question is validated, a follow-up is made standalone from the conversation
(``rag.answer.conversation``), and the standalone text is read for what it asks: its form
(a number, a date, a person, a place, yes or no, a list, events compared in time, what
happened the day an event happened), the date it is about, the unit or thing it counts,
the title of the person it asks for, the names of its main clause, its Latin terms and
figures, and its Chinese character pairs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from rag.answer.conversation import ChatFunction, Turn, standalone_question, validate_history
from rag.answer.entities import name_candidates
from rag.config import Settings
from rag.errors import InvalidQuestion
from rag.index.lexicon import english_words
from rag.lang.en import question as en
from rag.lang.zh import question as zh
from rag.lang.zh.dates import question_date
from rag.lang.zh.events import parse_comparison, parse_same_day
from rag.lang.zh.script import cjk_bigrams, has_han
from rag.lang.zh.units import UNIT_GROUPS
from rag.text import invalid_character
from rag.types import Aggregate, AskedContext, Form, QuestionInfo, SameDay

_NUMBERS = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Limits:
    """How long a question and the conversation before it may be (RAG_MAX_QUESTION_CHARS,
    RAG_MAX_HISTORY_TURNS, RAG_MAX_HISTORY_CHARS)."""

    question_chars: int
    history_turns: int
    history_chars: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.max_question_chars, settings.max_history_turns, settings.max_history_chars)

    @classmethod
    def defaults(cls) -> Limits:
        """The settings' defaults (tests, benchmarks)."""
        fields = Settings.model_fields
        return cls(
            fields["max_question_chars"].default,
            fields["max_history_turns"].default,
            fields["max_history_chars"].default,
        )


def validate_question(question: str, max_chars: int) -> str:
    """The question stripped of surrounding space; empty or overlong ones are refused."""
    stripped = question.strip()
    if not stripped:
        raise InvalidQuestion("the question is empty; ask something about the documents")
    if len(stripped) > max_chars:
        raise InvalidQuestion(f"the question has {len(stripped)} characters; the limit is {max_chars}")
    if (at := invalid_character(stripped)) >= 0:
        raise InvalidQuestion(
            f"the question has an invalid character at position {at} (a lone surrogate); send UTF-8 text"
        )
    return stripped


def analyse(
    question: str,
    as_of: date | None = None,
    history: Sequence[Turn] = (),
    chat: ChatFunction | None = None,
    limits: Limits | None = None,
) -> QuestionInfo:
    """The question analysed: validated, made standalone from ``history`` (by ``chat``, a
    language model, when given; else by rules), and read for what it asks. Relative dates
    (去年4月) are resolved on ``as_of`` (today when None)."""
    limits = limits or Limits.defaults()
    original = validate_question(question, limits.question_chars)
    text = original
    turns = validate_history(history, limits.history_turns, limits.history_chars)
    if turns:
        text = standalone_question(original, turns, chat, limits.question_chars)
    return read_question(text, as_of or date.today(), original)


def read_question(text: str, as_of: date | None = None, original: str = "") -> QuestionInfo:
    """What a standalone question asks (see the module doc); ``as_of`` None leaves relative dates
    unresolved."""
    comparison = parse_comparison(text)
    same_day = None
    if comparison is None and (parts := parse_same_day(text)) is not None:
        event, rest = parts
        same_day = SameDay(event, read_question(rest, as_of))
    asks = _asks(text)
    counted = zh.counted_units(text)
    form: Form = "comparison" if comparison else "same-day" if same_day else asks
    return QuestionInfo(
        text=text,
        original=original or text,
        language="zh" if has_han(text) else "en",
        form=form,
        asks=asks,
        comparison=comparison,
        same_day=same_day,
        asked_date=question_date(text, as_of),
        units=_units(text, counted),
        counted_units=counted,
        counted_noun=zh.counted_noun(text),
        titles="|".join([*zh.titles_asked(text), *en.titles_asked(text)]),
        asks_year=zh.asks_year(text),
        aggregate=_aggregate(text),
        given_numbers=tuple(_NUMBERS.findall(text)),
        latin_terms=en.latin_terms(text),
        pairs=frozenset(cjk_bigrams(text)),
        topic_pairs=zh.topic_pairs(text),
        number_context=AskedContext(*zh.asked_context(text, zh.HOW_MANY)),
        date_context=AskedContext(*zh.asked_context(text, zh.WHEN)),
        name_candidates=name_candidates(text),
        english_words=tuple(english_words(text)),
    )


def _asks(text: str) -> Form:
    """What the question's words ask for, in the order of the language tables (a date before a
    number before a person, as a question may word two of them: 哪一年 ... 多少)."""
    forms: tuple[Form, ...] = ("date", "number", "person", "place", "list", "yes-no")
    return next((f for f in forms if zh.ASKS[f].search(text) or en.ASKS[f].search(text)), "other")


def _units(text: str, counted: tuple[str, ...]) -> tuple[str, ...]:
    """Units the question's number should carry (empty: any number): the Chinese rules first,
    then an English word for what is counted."""
    units = zh.wanted_units(text, counted)
    if units is not None:
        return units
    group = en.unit_group(text)
    return UNIT_GROUPS[group] if group else ()


def _aggregate(text: str) -> Aggregate:
    """``max``, ``min`` or ``total`` when the question asks for the highest, lowest or a total."""
    kinds: tuple[Aggregate, ...] = ("max", "min", "total")
    return next((k for k in kinds if zh.AGGREGATES[k].search(text) or en.AGGREGATES[k].search(text)), "")
