"""The ``extractive`` generator: the best sentence, and a short typed span inside it.

No model runs here: the pipeline has already scored the sentences of the retrieved
passages against the question with the embedding model. We add a small bonus for
sentences that hold the kind of thing the question asks for (a number with the right
unit, a date, a person after a title) and for shared Chinese character pairs, pick
the best sentence, then cut the answer span out of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from rag.generators.base import GenerationRequest, ScoredSentence
from rag.types import Answer, Citation

ABSTAIN_TEXT = "文档中没有找到答案。The documents do not contain the answer."


class Kind(Enum):
    """What a question asks for."""

    NUMBER = "number"
    DATE = "date"
    PERSON = "person"
    OTHER = "other"


# Units a number can carry, grouped by what they count.
_UNIT_GROUPS: dict[str, tuple[str, ...]] = {
    "people": ("人次", "名", "人", "位", "户"),
    "money": ("万元", "亿元", "元"),
    "percent": ("%", "％"),
    "days": ("天",),
    "hours": ("小时",),
    "orgs": ("家", "所"),
    "cases": ("起", "件"),
    "items": ("个", "项", "条", "种", "处", "座", "栋"),
    "sessions": ("期", "场", "次", "届", "批"),
    "area": ("亩", "平方米"),
    "years": ("年",),
}
_ALL_UNITS = sorted({u for units in _UNIT_GROUPS.values() for u in units}, key=len, reverse=True)
_NUMBER = re.compile(
    r"(?:近|约|超过|逾)?\s*\d+(?:[.,]\d+)*\s*(?:余|多)?\s*[万亿千百]?\s*(?:余|多)?\s*(?:"
    + "|".join(re.escape(u) for u in _ALL_UNITS)
    + r")?"
)
_DATE = re.compile(
    r"\d{4}\s*年(?:\s*\d{1,2}\s*月(?:份|\s*\d{1,2}\s*日)?)?"
    r"|\d{1,2}\s*月\s*\d{1,2}\s*日|(?:今年|去年)?\s*\d{1,2}\s*月份?|上世纪\s*\d+\s*年代"
)
_TITLES = (
    "代主任|副主任|主任|副书记|书记|副局长|局长|副市长|市长|副县长|县长|副会长|会长|院长|校长|"
    "摄影师|记者|村民|负责人|传承人|讲解员|董事长|总经理|经理|馆长|队长|社长"
)
_PERSON = re.compile(
    rf"(?P<title>{_TITLES})(?P<name>[\u4e00-\u9fff]{{2,3}}?)"
    r"(?=说|介绍|表示|特别|仔细|认真|所|赶|来|回|出生|此行|曾|的|是|在|到|，|。|、|（|$)"
)

_ZH_NUMBER_Q = re.compile(r"多少|几[个名家人天次项起件年月期场位]|多大|多高|多长|多久|百分之|比例|比率|占比")
_EN_NUMBER_Q = re.compile(r"\bhow (many|much|long|far|big|large)\b|\bwhat (percentage|percent|proportion|share|rate)\b|\bnumber of\b", re.I)
_ZH_DATE_Q = re.compile(r"什么时候|何时|哪一?年|哪个月|几月|哪一?天|什么时间|何年")
_EN_DATE_Q = re.compile(r"\bwhen\b|\bwhat (year|month|date|day)\b|\bsince when\b", re.I)
_ZH_PERSON_Q = re.compile(r"谁|哪位|叫什么名字|姓名")
_EN_PERSON_Q = re.compile(r"\bwho(m|se)?\b|\bwhat is the name of\b", re.I)

_EN_UNIT_HINTS: dict[str, re.Pattern[str]] = {
    "percent": re.compile(r"\b(percent(age)?|rate|ratio|proportion|share)\b|%", re.I),
    "money": re.compile(r"\b(money|yuan|wages?|salar(y|ies)|funds?|funding|subsid(y|ies)|cost|revenue|tax(es)?|worth|rmb)\b", re.I),
    "people": re.compile(r"\b(people|persons?|workers?|employees?|students?|teachers?|residents?|villagers?|volunteers?|members?|visitors?|leaders?|officials?|talents?|graduates?|trainees?)\b", re.I),
    "days": re.compile(r"\bdays?\b", re.I),
    "hours": re.compile(r"\bhours?\b", re.I),
    "orgs": re.compile(r"\b(companies|company|enterprises?|firms?|institutions?|organi[sz]ations?|agencies|schools?|factories)\b", re.I),
    "cases": re.compile(r"\bcases?\b", re.I),
    "items": re.compile(r"\b(problems?|issues?|items?|types?|kinds?|projects?|measures?|jobs?|occupations?|posts?)\b", re.I),
    "sessions": re.compile(r"\b(sessions?|classes|courses?|competitions?|contests?|events?|times|batches?)\b", re.I),
    "area": re.compile(r"\b(mu|acres?|hectares?|square met(er|re)s?)\b", re.I),
    "years": re.compile(r"\byears?\b", re.I),
}
_EN_TITLE_HINTS: dict[str, str] = {
    "secretary": "书记",
    "director": "局长|主任",
    "mayor": "市长",
    "head": "局长|主任|县长|馆长",
    "chairman": "会长|董事长",
    "photographer": "摄影师",
    "inheritor": "传承人",
    "villager": "村民",
    "reporter": "记者",
}
# Weights of the evidence bonuses added to the sentence's cosine similarity.
_TYPE_BONUS = 0.03
_OVERLAP_BONUS = 0.06
_RANK_PENALTY = 0.004


@dataclass(frozen=True)
class Choice:
    """The chosen evidence sentence and the answer cut from it."""

    sentence: ScoredSentence
    answer: str
    score: float


def question_kind(question: str) -> Kind:
    """Classify a question (Chinese or English) by what it asks for."""
    if _ZH_DATE_Q.search(question) or _EN_DATE_Q.search(question):
        return Kind.DATE
    if _ZH_NUMBER_Q.search(question) or _EN_NUMBER_Q.search(question):
        return Kind.NUMBER
    if _ZH_PERSON_Q.search(question) or _EN_PERSON_Q.search(question):
        return Kind.PERSON
    return Kind.OTHER


def wanted_units(question: str) -> tuple[str, ...]:
    """Units the question's number should carry (empty: any number)."""
    zh = re.search(r"(?:多少|几)\s*(" + "|".join(re.escape(u) for u in _ALL_UNITS) + ")", question)
    if zh:
        unit = zh.group(1)
        return next((units for units in _UNIT_GROUPS.values() if unit in units), (unit,))
    if re.search(r"多少钱|金额|资金|工资|补贴|税收", question):
        return _UNIT_GROUPS["money"]
    if re.search(r"百分之|比例|比率|占比|率", question):
        return _UNIT_GROUPS["percent"]
    # The noun right after "how many" says most; otherwise the first hint in the question.
    counted = re.search(r"\bhow many\s+((?:[\w-]+\s+){0,2}[\w-]+)", question, re.I)
    for text in ([counted.group(1)] if counted else []) + [question]:
        for group, pattern in _EN_UNIT_HINTS.items():
            if pattern.search(text):
                return _UNIT_GROUPS[group]
    return ()


def number_unit(span: str) -> str:
    """The unit a number span ends with ('' when bare)."""
    return next((u for u in _ALL_UNITS if span.rstrip().endswith(u)), "")


def cjk_bigrams(text: str) -> set[str]:
    """Pairs of adjacent CJK characters: a cheap lexical signal for Chinese questions."""
    chars = re.sub(r"[^\u4e00-\u9fff]", " ", text)
    return {a + b for word in chars.split() for a, b in zip(word, word[1:])}


def _context_overlap(question_pairs: set[str], text: str, start: int, end: int, window: int = 12) -> int:
    return len(question_pairs & cjk_bigrams(text[max(0, start - window) : end + window]))


def number_spans(question: str, sentence: str) -> list[str]:
    """Number spans in the sentence, best match for the question first."""
    units = wanted_units(question)
    pairs = cjk_bigrams(question)
    found = []
    for order, match in enumerate(_NUMBER.finditer(sentence)):
        span = match.group().strip()
        if not re.search(r"\d", span) or re.fullmatch(r"\d{4}\s*年", span):
            continue
        unit_ok = not units or number_unit(span) in units
        overlap = _context_overlap(pairs, sentence, match.start(), match.end())
        found.append((not unit_ok, -overlap, order, span))
    return [span for unit_miss, _, _, span in sorted(found) if not unit_miss]


def date_spans(sentence: str) -> list[str]:
    """Date expressions in the sentence, in order."""
    return [m.group().strip() for m in _DATE.finditer(sentence) if m.group().strip()]


def person_spans(question: str, sentence: str) -> list[str]:
    """Names after a title (局长莫雄), those whose title the question names first."""
    wanted = "|".join(
        [t for t in re.findall(_TITLES, question)]
        + [zh for en, zh in _EN_TITLE_HINTS.items() if re.search(rf"\b{en}\b", question, re.I)]
    )
    found = []
    for order, match in enumerate(_PERSON.finditer(sentence)):
        name = match.group("name")
        if name in question:
            continue
        title_hit = bool(wanted) and re.fullmatch(wanted, match.group("title")) is not None
        found.append((not title_hit, order, name))
    return [name for *_, name in sorted(found)]


def answer_span(question: str, kind: Kind, sentence: str) -> str | None:
    """The short answer inside a sentence, or None when the sentence holds none."""
    if kind is Kind.NUMBER:
        spans = number_spans(question, sentence)
    elif kind is Kind.DATE:
        spans = date_spans(sentence)
    elif kind is Kind.PERSON:
        spans = person_spans(question, sentence)
    else:
        return None
    return spans[0] if spans else None


def rank_sentences(request: GenerationRequest, kind: Kind) -> list[tuple[float, ScoredSentence, str | None]]:
    """Sentences by evidence score: similarity, typed-span bonus, shared character pairs."""
    pairs = cjk_bigrams(request.question)
    ranked = []
    for sentence in request.sentences:
        span = answer_span(request.question, kind, sentence.text)
        overlap = len(pairs & cjk_bigrams(sentence.text)) / len(pairs) if pairs else 0.0
        score = (
            sentence.score
            + (_TYPE_BONUS if span else 0.0)
            + _OVERLAP_BONUS * overlap
            - _RANK_PENALTY * sentence.passage_rank
        )
        ranked.append((score, sentence, span))
    ranked.sort(key=lambda item: -item[0])
    return ranked


def choose(request: GenerationRequest, threshold: float) -> Choice | None:
    """The evidence sentence and answer, or None to abstain on weak evidence."""
    if not request.sentences:
        return None
    kind = question_kind(request.question)
    ranked = rank_sentences(request, kind)
    best_score, best, span = ranked[0]
    if best.score < threshold:
        return None
    if kind is not Kind.OTHER and span is None:
        # The question wants a number, date or name: take the best sentence that has one.
        typed = [(s, sentence, sp) for s, sentence, sp in ranked if sp is not None and sentence.score >= threshold]
        if typed:
            best_score, best, span = typed[0]
    return Choice(sentence=best, answer=span or best.text, score=best_score)


class ExtractiveGenerator:
    """Answers with a span of the best evidence sentence; abstains below a threshold."""

    def __init__(self, threshold: float) -> None:
        self._threshold = threshold

    @property
    def name(self) -> str:
        return "extractive"

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        choice = choose(request, self._threshold)
        yield choice.answer if choice else ABSTAIN_TEXT

    def complete(self, request: GenerationRequest, text: str) -> Answer:
        choice = choose(request, self._threshold)
        if choice is None or text != choice.answer:
            return Answer(text=text, abstained=True, citations=())
        sentence = choice.sentence
        passage = request.passages[sentence.passage_rank]
        chunk = passage.chunk
        citation = Citation(
            doc_id=chunk.doc_id,
            title=chunk.title,
            chunk_id=chunk.chunk_id,
            text=chunk.text,
            score=passage.score,
            start=chunk.start,
            end=chunk.end,
            evidence_start=sentence.start,
            evidence_end=sentence.end,
        )
        return Answer(text=text, abstained=False, citations=(citation,), evidence=sentence.text)
