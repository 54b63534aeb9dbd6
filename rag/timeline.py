"""Questions that compare when events happened: "A和B哪个更早发生？", "A和B是同一年吗？".

No single passage answers them: each event is reported by its own article. The pipeline
retrieves passages for every event on its own (``Pipeline.retrieve``); here each event is
bound to the passage that reports it, dated by the sentence that reports it (else the
passage's dateline or publication day), and the dates are compared. The answer is
computed, not written by a language model, and cites every event's passage; when an
event is not found, or its date cannot be told precisely enough, the answer is an
abstention.

A question about what happened "the day X happened" (``X当天，…``) is asked as of that
day: X is found and dated the same way, and the pipeline looks for the rest of the
question among the passages of that date.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

from rag.dates import Ymd, date_agreement, dates_in
from rag.indexing import split_sentences
from rag.types import Choice, Chunk, Comparison, GenerationRequest, Passage, ScoredSentence, passage_text

# What is compared: which came first or last, or whether they share a year, month or day.
ORDERS = ("earliest", "latest")
SAMES = ("year", "month", "day")

# Where the events end and the comparison begins: 哪个, 谁, 是否, 是(在)同一….
_CUE = re.compile(r"哪|谁|是否|是不是|(?:是|都|均)?(?:在|于)?同(?:一|年|月|日|天|时)|是在|是于")
_SAME = re.compile(r"同一?(?:个)?(年|月|天|日)|同一时间")
_EARLY = re.compile(r"早|先")
_LATE = re.compile(r"晚|后|最近|最新")
# Words around the events that are not part of them: 这两个事件中, 的时间, 发生.
_TAIL = re.compile(
    r"(?:[，,、；;\s]|(?:这|以上|上述|这些)?(?:两|三|四|几)(?:个|件|项)?(?:事件|事情|活动|事)?(?:中|里|当中|之中)?"
    r"|(?:这|以上|上述|这些)(?:个|件|项)?(?:事件|事情|活动|事)(?:中|里|当中|之中)?|的时间|的日期|发生|的)+$"
)
_HEAD = re.compile(r"^(?:以下|下列|相比|还有|关于|以及|和|与|及|在)+")
# Events are listed with 、 (or a comma), the last joined by 和, 与, 及 or 以及.
_LIST = re.compile(r"[、，,；;]")
_JOIN = re.compile(r"以及|和|与|跟|及|还是")
_COUNT = re.compile(r"(两|三|四|五)(?:个|件|项)")
_EVENT_CHARS = 2


def _balanced_split(text: str) -> list[str]:
    """Two events joined by 和 (or 与, 及): split at the joining word that leaves the most
    even halves, since names hold the same words (汪小菲和大S参加…典礼和周铁农逝世)."""
    cuts = [(abs(m.start() - (len(text) - m.end())), m.start(), m.end()) for m in _JOIN.finditer(text)]
    if not cuts:
        return [text]
    _, start, end = min(cuts)
    return [text[:start], text[end:]]


def _clean(event: str) -> str:
    return _HEAD.sub("", _TAIL.sub("", event.strip()))


def parse_comparison(question: str) -> Comparison | None:
    """The comparison a Chinese question asks for, or None when it asks something else."""
    text = question.strip().rstrip("？?。！!")
    same = _SAME.search(text)
    if same:
        relation = {"年": "year", "月": "month"}.get(same.group(1) or "", "day")
        if relation == "year" and re.search(r"同一?个?月", text):
            relation = "month"  # 同年同月
    elif asking := re.search(r"哪|谁", text):
        after = text[asking.start() :]
        relation = "earliest" if _EARLY.search(after) else "latest" if _LATE.search(after) else ""
        if not relation:
            return None
    else:
        return None
    cue = _CUE.search(text)
    if cue is None or cue.start() < 2 * _EVENT_CHARS:
        return None
    listed = [part for part in map(_clean, _LIST.split(_clean(text[: cue.start()]))) if part]
    count = _COUNT.search(text[max(0, cue.start() - 10) :])
    if listed and (not count or len(listed) < "两三四五".index(count.group(1)) + 2):
        listed = [*listed[:-1], *_balanced_split(listed[-1])]  # A、B和C; A和B
    events = tuple(e for e in map(_clean, listed) if e and not re.fullmatch(r"[\d年月日号初底末]+", e))
    if not 2 <= len(events) <= 5 or any(len(e) < _EVENT_CHARS for e in events):
        return None
    return Comparison(events, relation)


# "X当天，…": the question is about the day event X happened.
_SAME_DAY_AS = re.compile(r"^(?P<event>[^，,。？?]{4,}?)(?:的)?(?:当天|当日|同一天|同日)[，,]?\s*(?P<rest>.{4,})$")


def parse_same_day(question: str) -> tuple[str, str] | None:
    """The event and what is asked of its day (``梦天实验舱发射当天，湖北新增多少例？`` ->
    (梦天实验舱发射, 湖北新增多少例？)), or None."""
    found = _SAME_DAY_AS.match(question.strip())
    if found is None or parse_comparison(question) is not None:
        return None
    event = _clean(found.group("event"))
    if any(day[0] is not None and day[2] is not None for day in dates_in(event)):
        return None  # 2024年3月5日当天: the question gives the day itself
    return event, found.group("rest")


def question_form(question: str) -> str:
    """``comparison`` or ``same-day`` when the question is one of those forms, else ''."""
    if parse_comparison(question) is not None:
        return "comparison"
    return "same-day" if parse_same_day(question) is not None else ""


def _pairs(text: str) -> set[str]:
    chars = re.sub(r"[^\u4e00-\u9fffA-Za-z0-9]", " ", text)
    return {a + b for word in chars.split() for a, b in pairwise(word)}


def coverage(event: str, text: str) -> float:
    """Share of the event's character pairs that the text holds."""
    wanted = _pairs(event)
    return len(wanted & _pairs(text)) / len(wanted) if wanted else 0.0


@dataclass(frozen=True)
class Dated:
    """An event bound to its passage (a rank in the request) and the date it happened."""

    event: str
    rank: int
    when: Ymd
    written: str  # the date as the passage writes it
    start: int  # the dating sentence, in the passage's document
    end: int
    text: str


_WRITTEN = re.compile(
    r"(\d{4})\s*年(?:\s*(\d{1,2})\s*月(?:\s*(\d{1,2})\s*[日号])?)?|(\d{1,2})\s*月(?:\s*(\d{1,2})\s*[日号])?"
)


def _dates_with_year(sentence: str, year: int | None) -> list[tuple[Ymd, str]]:
    """Dates a sentence writes, a yearless one (7月23日) given the passage's year."""
    found = []
    for match in _WRITTEN.finditer(sentence):
        y, m, d, m2, d2 = match.groups()
        if y:
            when: Ymd = (int(y), int(m) if m else None, int(d) if d else None)
        elif year is not None:
            when = (year, int(m2), int(d2) if d2 else None)
        else:
            continue
        if when[1] is not None and not 1 <= when[1] <= 12:
            continue
        found.append((when, match.group()))
    return found


def _from_iso(published: str) -> Ymd | None:
    try:
        day = date.fromisoformat(published)
    except ValueError:
        return None
    return (day.year, day.month, day.day)


def date_event(event: str, chunk: Chunk, rank: int) -> Dated | None:
    """The date of the event the passage reports: the first date of the sentence that
    reports it best (a yearless one takes the passage's year), else the first full date at
    the top of the passage (its dateline), else the document's publication day."""
    text = chunk.text
    spans = [(s - chunk.start, e - chunk.start) for s, e in split_sentences(chunk)]
    if not spans:
        return None
    scored = [(coverage(event, text[s:e]), -n, s, e) for n, (s, e) in enumerate(spans)]
    _, _, start, end = max(scored)
    years = [y for y, _, _ in dates_in(text) if y is not None]
    published = _from_iso(chunk.published)
    year = years[0] if years else published[0] if published else None

    def dated(when: Ymd, written: str, s: int, e: int) -> Dated:
        return Dated(event, rank, when, written, chunk.start + s, chunk.start + e, text[s:e])

    for when, written in _dates_with_year(text[start:end], year):
        if not written.startswith(str(when[0])):
            written = f"{when[0]}年{written}"  # the year is the passage's own, so still grounded
        return dated(when, written, start, end)
    top_start, top_end = spans[0]
    for when, written in _dates_with_year(text[top_start:top_end], None):
        if when[2] is not None:
            return dated(when, written, top_start, top_end)
    if published:
        return dated(published, f"{published[0]}年{published[1]}月{published[2]}日", start, end)
    return None


# An event's passage must hold this share of the event's character pairs.
MIN_EVENT_COVERAGE = 0.4
# How much agreeing with the date an event is given with counts beside coverage.
_STATED_DATE_WEIGHT = 0.3
# A passage that can be dated is taken over a better one that cannot, within this much.
_DATED_SLACK = 0.2


def bind(event: str, passages: Sequence[Passage], candidates: Sequence[int]) -> Dated | str:
    """The event's passage among its candidates and its date, or why there is none.

    Candidates that hold enough of the event's words are tried by how much they hold (and
    how well they agree with a date the event is given with: 2023年…), best ranked first on a
    tie; the first that can be dated is taken, unless a better one holds far more."""
    stated = next((d for d in dates_in(event) if d[0] is not None), None)
    scored = []
    for n, rank in enumerate(candidates):
        text = passage_text(passages[rank].chunk)
        share = coverage(event, text)
        if share >= MIN_EVENT_COVERAGE:
            scored.append((share + _STATED_DATE_WEIGHT * date_agreement(stated, text), -n, rank))
    if not scored:
        return f"no passage reports {event}"
    scored.sort(reverse=True)
    for score, _, rank in scored:
        if score < scored[0][0] - _DATED_SLACK:
            break
        if dated := date_event(event, passages[rank].chunk, rank):
            return dated
    return f"no passage says when {event} happened"


def _known(when: Ymd, depth: int) -> bool:
    return all(part is not None for part in when[:depth])


def compare(request: GenerationRequest, comparison: Comparison) -> Choice | str:
    """The computed answer to a comparison (a draft with a marker for every event's passage),
    or why it cannot be given."""
    dated: list[Dated] = []
    for event, ranks in zip(comparison.events, comparison.candidates, strict=True):
        found = bind(event, request.passages, ranks)
        if isinstance(found, str):
            return found
        dated.append(found)
    if comparison.relation in SAMES:
        depth = SAMES.index(comparison.relation) + 1
        if not all(_known(d.when, depth) for d in dated):
            return f"the passages do not give every event's {comparison.relation}"
        same = len({d.when[:depth] for d in dated}) == 1
        dates = "；".join(f"{d.event}在{d.written} [{d.rank + 1}]" for d in dated)
        draft = f"{'是的' if same else '不是'}。{dates}。"
        best = dated[0]
    else:
        order = sorted(dated, key=lambda d: tuple(part or 0 for part in d.when))
        if comparison.relation == "latest":
            order.reverse()
        best, runner = order[0], order[1]
        depth = next((n for n in range(3) if best.when[n] != runner.when[n]), 3)
        if depth == 3 or not (_known(best.when, depth + 1) and _known(runner.when, depth + 1)):
            return "the passages do not date the events precisely enough to order them"
        word = ("最" if len(dated) > 2 else "更") + ("早" if comparison.relation == "earliest" else "晚")
        others = "".join(f"；另一件在{d.written} [{d.rank + 1}]" for d in dated if d is not best)
        # Only the chosen event is named: the question names the others.
        draft = f"{best.event}{word}：它在{best.written} [{best.rank + 1}]{others}。"
    sentence = ScoredSentence(best.rank, best.text, best.start, best.end, 1.0)
    return Choice(sentence=sentence, answer=draft, score=1.0, draft=True)
