"""The evidence gate: the best sentence of the retrieved passages, a short typed span inside
it, or the reason there is no good evidence.

No model runs here: the pipeline has already scored the sentences of the retrieved
passages against the question with the embedding model. We add a small bonus for
sentences that hold the kind of thing the question asks for (a number with the right
unit, a date, a person after a title) and for shared Chinese character pairs, pick
the best sentence, then cut the answer span out of it.

The answer path runs the gate once per question (``rag.answer.stream``): when it finds no
evidence, no generator is asked; otherwise its choice is the extractive answer, the
preview streamed before an LLM's answer, and the focus of the LLM's prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from rag.answer.confidence import CONFIDENCE
from rag.answer.entities import missing_in
from rag.answer.timeline import compare
from rag.config import Settings
from rag.lang.en import dates as en_dates
from rag.lang.zh import answers as zh
from rag.lang.zh.dates import date_agreement, dates_in
from rag.lang.zh.script import cjk_bigrams
from rag.lang.zh.units import counts_in, number_unit
from rag.lang.zh.words import FILLER_END
from rag.types import AskedContext, Choice, GenerationRequest, QuestionInfo, ScoredSentence, Ymd, passage_text


class Kind(Enum):
    """What kind of span answers a question (what its analysis says it asks; for others, the sentence)."""

    NUMBER = "number"
    DATE = "date"
    PERSON = "person"
    OTHER = "other"


# Weights of the evidence bonuses added to the sentence's cosine similarity.
_TYPE_BONUS = 0.03
_OVERLAP_BONUS = 0.06
_RANK_PENALTY = 0.004
# A passage dated as the question asks (2023年4月12日) is about that event, not another one.
_DATE_BONUS = 0.05
# Translated keywords are the main lexical signal for an English question about Chinese text.
_KEYWORD_BONUS = 0.15
# A Chinese question's topic pairs that must appear in the evidence passage.
_MIN_COVERAGE = 0.5
# The question's anchors are looked for in this many of the best passages.
_ANCHOR_PASSAGES = 3
_SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Thresholds:
    """When the gate abstains: the evidence sentence's least similarity to the question
    (RAG_ABSTAIN_MIN_SIMILARITY), how far the best passage must stand out from the rest of the
    corpus (RAG_ABSTAIN_MIN_MARGIN), and the least confidence that the chosen evidence answers
    (RAG_ABSTAIN_MIN_CONFIDENCE, of ``rag.answer.confidence``; 0 turns it off)."""

    min_sentence: float
    min_margin: float
    min_confidence: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(settings.abstain_min_similarity, settings.abstain_min_margin, settings.abstain_min_confidence)


def _kind(info: QuestionInfo) -> Kind:
    return Kind(info.asks) if info.asks in ("number", "date", "person") else Kind.OTHER


def _context_overlap(question_pairs: frozenset[str], text: str, start: int, end: int, window: int = 12) -> int:
    return len(question_pairs & cjk_bigrams(text[max(0, start - window) : end + window]))


def _common_suffix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _said_of(
    info: QuestionInfo,
    asked: AskedContext,
    sentence: str,
    matches: list[re.Match[str]],
    last: bool = False,
    aggregates: bool = False,
) -> list[str]:
    """The matched spans, the one said of what the question asks first: the one whose words
    just before it end as the question's words before its question word do (下调至多少 ->
    the figure after 下调至), then the one with the most of the question's words around
    its question word within its clause, then the most question words nearby, then the first.
    With ``last``, spans the question itself gives come after all others; with ``aggregates``
    (figures), between spans the question's words tell apart no further, the one said to be
    what the question's aggregate asks (最高, 累计) first."""
    given = _SPACE.sub("", info.text)
    ranked = []
    for order, match in enumerate(matches):
        echoed = last and _SPACE.sub("", match.group()) in given
        # Asked for the highest (单日最高), a figure said to be the highest before a plain one,
        # and a total (累计) last.
        said = zh.said_aggregate(sentence, match.start(), match.end()) if aggregates and info.aggregate else ""
        fits = 0 if not info.aggregate or said == info.aggregate else 1 if not said else 2
        before = FILLER_END.sub("", zh.clause_before(sentence, match.start()))
        after = zh.clause_after(sentence, match.end())
        said_of = shared if (shared := _common_suffix(asked.left, before)) >= 2 else 0  # one shared 率 says little
        near = cjk_bigrams(before) | cjk_bigrams(after)
        overlap = _context_overlap(info.pairs, sentence, match.start(), match.end())
        ranked.append((echoed, -said_of, -len(asked.pairs & near), fits, -overlap, order, match.group().strip()))
    return [span for *_, span in sorted(ranked)]


def _first_digit(match: re.Match[str]) -> int:
    return match.start() + next((i for i, ch in enumerate(match.group()) if ch.isdigit()), 0)


def number_spans(info: QuestionInfo, sentence: str) -> list[str]:
    """Figures in the sentence with their scale and unit, best match for the question first.

    A figure counts when it carries the unit asked for (any unit when the question names
    none) and is neither part of a date nor one the question itself gives (a question
    about 2024年1月 is not answered by 1).
    """
    given = set(info.given_numbers)
    # The day of an English date (30 June 2024) is no figure either.
    dated = [(m.start(), m.end()) for m in en_dates.date_matches(sentence)]
    kept = [
        match
        for match in zh.figures(sentence)
        if zh.figure_digits(match.group()) not in given
        and not (info.units and number_unit(match.group().strip()) not in info.units)
        and not any(start <= _first_digit(match) < end for start, end in dated)
    ]
    if not kept and not info.given_numbers:
        # No figure in digits: one in Chinese numerals with its measure word (五层, 两轮, 八成).
        kept = [m for m in zh.numeral_figures(sentence) if not info.units or counts_in(info.units, m.group())]
    return _said_of(info, info.number_context, sentence, kept, aggregates=True)


def date_spans(info: QuestionInfo, sentence: str) -> list[str]:
    """Dates in the sentence, best match for the question first; one the question itself
    gives (2024年5月22日起…到什么时候) only after the others, since a question may echo its
    answer (2019年9月底…预计何时开通)."""
    # Dates in digits, else the ones written otherwise (建安二十四年, 20世纪中叶, 金朝), else English ones.
    found = (
        zh.dates(sentence)
        or zh.numeral_dates(sentence)
        or en_dates.date_matches(sentence)
        or en_dates.year_matches(sentence)
    )
    spans = _said_of(info, info.date_context, sentence, found, last=True)
    if info.asks_year:
        return spans
    # 什么时候 asks for the day: a year alone (2014年起担任CEO) only when no day or month is given.
    return [s for s in spans if not zh.is_year_only(s)] + [s for s in spans if zh.is_year_only(s)]


def person_spans(info: QuestionInfo, sentence: str) -> list[str]:
    """Names after a title (局长莫雄); if the question names a title, only that title counts."""
    found = []
    for order, match in enumerate(zh.people(sentence)):
        name = match.group("name")
        if name in info.text:
            continue
        if info.titles and not zh.holds_title(sentence, match.start("title"), match.group("title"), info.titles):
            continue  # the question asks for a 县长; a 代主任 is not an answer
        found.append((order, name))
    return [name for _, name in sorted(found)]


def answer_span(info: QuestionInfo, sentence: str) -> str | None:
    """The short answer inside a sentence, or None when the sentence holds none."""
    kind = _kind(info)
    if kind is Kind.NUMBER:
        spans = number_spans(info, sentence)
    elif kind is Kind.DATE:
        spans = date_spans(info, sentence)
    elif kind is Kind.PERSON:
        spans = person_spans(info, sentence)
    else:
        return None
    return spans[0] if spans else None


def _topic(request: GenerationRequest) -> tuple[frozenset[str], frozenset[str]]:
    """The question's topic pairs (all its pairs when it has no topic), and those of them the
    passages' titles do not hold: the focus a sentence that answers shares with it."""
    info = request.info
    pairs = info.topic_pairs or info.pairs
    return pairs, pairs - cjk_bigrams(" ".join(p.chunk.title for p in request.passages))


def rank_sentences(request: GenerationRequest) -> list[tuple[float, ScoredSentence, str | None]]:
    """Sentences by evidence score: similarity, typed-span bonus, shared character pairs.

    The pairs that count are the question's topic words that the passages' titles do not
    hold: a title names the subject, which most sentences of its article mention; the
    sentence that answers is the one that also shares the rest of the question (分布 in
    ``X主要分布在什么地方``). Measured on CMRC 2018: 62.6 -> 67.5 % correct; ChronoQA, whose
    passages have no titles, and the seed set unchanged (README, "Evidence sentence").
    """
    info = request.info
    pairs, focus = _topic(request)
    asked_date = request.asked_date
    agreement = [date_agreement(asked_date, passage_text(p.chunk), p.chunk.published) for p in request.passages]
    ranked = []
    for sentence in request.sentences:
        span = answer_span(info, sentence.text)
        if pairs:
            overlap = _OVERLAP_BONUS * len(focus & cjk_bigrams(sentence.text)) / len(focus) if focus else 0.0
        else:
            overlap = _KEYWORD_BONUS * keyword_coverage(request.keywords, sentence.text)
        when = _DATE_BONUS * agreement[sentence.passage_rank] if asked_date else 0.0
        score = sentence.score + (_TYPE_BONUS if span else 0.0) + overlap + when - _RANK_PENALTY * sentence.passage_rank
        ranked.append((score, sentence, span))
    ranked.sort(key=lambda item: -item[0])
    return ranked


def keyword_coverage(groups: tuple[tuple[str, ...], ...], text: str) -> float:
    """Share of an English question's words whose Chinese translation is in the text."""
    if not groups:
        return 0.0
    return sum(any(word in text for word in group) for group in groups) / len(groups)


def mentions_counted_noun(info: QuestionInfo, text: str) -> bool:
    """Does the evidence mention what the question counts (its first or last two characters)?"""
    noun = info.counted_noun
    return not noun or noun[:2] in text or noun[-2:] in text


def anchors_present(info: QuestionInfo, evidence: str) -> bool:
    """Numbers and Latin terms of the question, and most of a Chinese question's topic, are in the evidence."""
    lowered = evidence.lower().replace(" ", "")
    if any(number not in lowered for number in info.given_numbers):
        return False
    if info.pairs:
        if any(term.lower() not in lowered for term in info.latin_terms):
            return False
        pairs = info.topic_pairs
        if len(pairs) >= 2 and len(pairs & cjk_bigrams(evidence)) < _MIN_COVERAGE * len(pairs):
            return False
    return True


def choose(request: GenerationRequest, thresholds: Thresholds) -> Choice | str:
    """The evidence sentence and answer, or why there is no good evidence (no generator is asked).

    Abstain when the question names something the corpus lacks, when the best passage
    hardly stands out from the corpus at large, when no sentence is similar enough,
    when a number, date or name is asked for and no good sentence holds one (with the
    right unit, title or counted noun), when the sentences that would answer come from
    passages that do not name the places, organisations and people the question names
    (a passage about Zhuzhou does not answer for Changsha), or when the evidence lacks the
    question's anchors.
    """
    if request.comparison is not None:
        return compare(request, request.comparison)
    if not request.sentences:
        return "nothing retrieved"
    if request.unknown_names:
        return f"the documents never mention the name asked about: {', '.join(request.unknown_names)}"
    background = request.background
    if background is not None and request.passages[0].score - background < thresholds.min_margin:
        return "no passage stands out from the rest of the documents"
    info = request.info
    kind = _kind(info)
    ranked = [item for item in rank_sentences(request) if item[1].score >= thresholds.min_sentence]
    if not ranked:
        return "no sentence is similar enough to the question"
    typed = [item for item in ranked if item[2] is not None]
    if kind is Kind.PERSON and not typed and info.titles:
        return "no good sentence names a holder of the title asked about"
    if kind is Kind.NUMBER:
        typed = [item for item in typed if mentions_counted_noun(info, item[1].text)]
        if not typed and info.counted_noun:
            return f"no good sentence mentions what the question counts: {info.counted_noun}"
        units = info.counted_units
        if not typed and units:
            # No figure with the unit the question names: a sentence may still write it in
            # Chinese numerals (三天), but one that counts nothing in it answers something else.
            # Units guessed from other words (比例 -> %, 收入 -> 元) are not required: 八成
            # and 31,875美元 answer them.
            ranked = [item for item in ranked if counts_in(units, item[1].text)]
            if not ranked:
                return f"no good sentence gives a figure in {'/'.join(units)}"
    # Without a typed span (a name without a title, a number in Chinese numerals), the
    # best sentence itself is the answer.
    candidates = typed or ranked
    if request.names:
        unnamed = {item[1].passage_rank: missing_in(request.names, request.passages[item[1].passage_rank].chunk)
                   for item in candidates}  # fmt: skip
        bound = [item for item in candidates if not unnamed[item[1].passage_rank]]
        if not bound:
            missing = unnamed[candidates[0][1].passage_rank]
            return f"the passages that would answer never name {', '.join(missing)}"
        candidates = bound
    score, best, span = candidates[0]
    evidence = "\n".join(f"{p.chunk.title}\n{p.chunk.text}" for p in request.passages[:_ANCHOR_PASSAGES])
    if not anchors_present(info, evidence):
        return "the evidence lacks the question's numbers, terms or topic"
    if span and kind is Kind.DATE:
        span = completed_year(span, best.text, request.passages[best.passage_rank].chunk.text, request.asked_date)
    signs = evidence_signs(request, score, best, span is not None)
    confidence = CONFIDENCE.of(signs)
    if confidence < thresholds.min_confidence:
        return f"the evidence is too weak to answer (confidence {confidence:.2f} < {thresholds.min_confidence:.2f})"
    return Choice(sentence=best, answer=span or best.text, score=score, confidence=confidence, typed=span is not None)


def unquotable(request: GenerationRequest, choice: Choice) -> str:
    """Why the gate's evidence cannot be the extractive answer ('' when it can): that answer is
    only a span of the asked type. A question asking for a figure or a date is not answered
    by a whole sentence without one, nor an English question by a Chinese sentence (a language
    model, reading the passages, may still answer either). A person is still answered by the
    sentence that names them: names are cut out only after a title (局长莫雄), and on the dev
    sets' tuning halves most people asked for are named without one."""
    if choice.typed or choice.draft:
        return ""
    kind = _kind(request.info)
    if kind in (Kind.NUMBER, Kind.DATE):
        return f"no good sentence gives the {kind.value} asked for"
    if request.info.language == "en":
        return "no span of the passages answers the English question by itself"
    return ""


def evidence_signs(request: GenerationRequest, score: float, best: ScoredSentence, typed: bool) -> dict[str, float]:
    """What says the chosen evidence answers the question (``rag.answer.confidence`` weighs them):
    how far the best passage stands out, how similar the sentence is, how much of the question's
    topic the sentence and its passage hold, whether a span of the asked type was found, and
    what the question asks."""
    info = request.info
    passage = request.passages[best.passage_rank].chunk
    pairs, focus = _topic(request)
    sentence_pairs = cjk_bigrams(best.text)
    passage_pairs = cjk_bigrams(passage_text(passage))
    english = info.language == "en"
    kind = _kind(info)
    return {
        "margin": request.passages[0].score - request.background if request.background is not None else 0.05,
        "one_article": float(request.background is None),
        "best_passage": request.passages[0].score,
        "passage_gap": request.passages[0].score - request.passages[1].score if len(request.passages) > 1 else 0.0,
        "similarity": best.score,
        "score": score,
        "sentence_topic": len(focus & sentence_pairs) / len(focus) if focus else 0.0,
        "passage_topic": len(pairs & passage_pairs) / len(pairs) if pairs else 0.0,
        "keywords": keyword_coverage(request.keywords, best.text) if english else 0.0,
        "typed": float(typed),
        "asks_number": float(kind is Kind.NUMBER),
        "asks_date": float(kind is Kind.DATE),
        "asks_person": float(kind is Kind.PERSON),
        "english": float(english),
        "named": float(bool(request.names)),
        "rank": float(best.passage_rank),
    }


def completed_year(span: str, sentence: str, passage: str, asked: Ymd | None) -> str:
    """A date without its year (9月22日) completed from the year its sentence, else its
    passage, gives (the one the question asks about when they give several): news writes
    the year once, and a reader needs it. Only a year the passage holds is added, so the
    answer stays grounded in it."""
    if not zh.lacks_year(span):
        return span
    years = [y for text in (sentence, passage) for y, _, _ in dates_in(text) if y is not None]
    if not years:
        return span
    year = asked[0] if asked and asked[0] in years else years[0]
    return zh.with_year(span, year)
