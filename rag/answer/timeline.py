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

from collections.abc import Sequence
from dataclasses import dataclass

from rag.answer.grounding import shown_text, ungrounded_terms
from rag.lang.zh import events as zh
from rag.lang.zh.dates import date_agreement, dates_in, iso_day, written_day, written_spans
from rag.lang.zh.script import cjk_bigrams, split_sentences
from rag.types import Choice, Chunk, Comparison, GenerationRequest, Passage, Relation, ScoredSentence, Ymd, passage_text

# Whether the events share a year, a month or a day (the depth of the date compared).
SAMES: tuple[Relation, ...] = ("year", "month", "day")


def coverage(event: str, text: str, shared: frozenset[str] = frozenset()) -> float:
    """Share of the event's character pairs that the text holds (leaving out ``shared``: pairs
    the other events of the question have too, which tell nothing about which one it is)."""
    wanted = cjk_bigrams(event, latin=True)
    wanted = (wanted - shared) or wanted
    return len(wanted & cjk_bigrams(text, latin=True)) / len(wanted) if wanted else 0.0


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
    reported: bool = False  # dated by its article's dateline or publication day, not a sentence of its own

    def when_said(self) -> str:
        """When it happened, as the answer says it."""
        return zh.said_when(self.written, self.reported)


def _dates_with_year(sentence: str, year: int | None) -> list[tuple[Ymd, str]]:
    """Dates a sentence writes, a yearless one (7月23日) given the passage's year."""
    found = []
    for (y, m, d), written in written_spans(sentence):
        when = (y if y is not None else year, m, d)
        if when[0] is None:
            continue
        if d is not None and m is not None and _from_iso(f"{when[0]:04d}-{m:02d}-{d:02d}") is None:
            continue  # 2月30日
        found.append((when, written))
    return found


def _from_iso(published: str) -> Ymd | None:
    day = iso_day(published)
    return (day.year, day.month, day.day) if day is not None else None


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
    published = _from_iso(chunk.published)
    years = [y for y, _, _ in dates_in(text) if y is not None]
    # A yearless 7月23日 is in the year the article was published, else the first it names.
    year = published[0] if published else years[0] if years else None

    def dated(when: Ymd, written: str, s: int, e: int, reported: bool = False) -> Dated:
        return Dated(event, rank, when, written, chunk.start + s, chunk.start + e, text[s:e], reported)

    for when, written in _dates_with_year(text[start:end], year):
        if not written.startswith(str(when[0])):
            written = zh.with_year(written, when[0])
        return dated(when, written, start, end)
    top_start, top_end = spans[0]
    for when, written in _dates_with_year(text[top_start:top_end], None):
        if when[2] is not None:
            return dated(when, written, top_start, top_end, reported=True)
    if published:
        return dated(published, written_day(*published), start, end, reported=True)
    return None


# An event's passage must hold this share of the event's character pairs.
MIN_EVENT_COVERAGE = 0.4
# How much agreeing with the date an event is given with counts beside coverage.
_STATED_DATE_WEIGHT = 0.3
# A passage that can be dated is taken over a better one that cannot, within this much.
_DATED_SLACK = 0.2


def bind(
    event: str, passages: Sequence[Passage], candidates: Sequence[int], shared: frozenset[str] = frozenset()
) -> Dated | str:
    """The event's passage among its candidates and its date, or why there is none.

    Candidates that hold enough of the event's words are tried by how much they hold (and
    how well they agree with a date the event is given with: 2023年…), best ranked first on a
    tie; the first that can be dated is taken, unless a better one holds far more. Pairs in
    ``shared`` (the other events have them too) do not count."""
    stated = next((d for d in dates_in(event) if d[0] is not None), None)
    scored = []
    for n, rank in enumerate(candidates):
        text = passage_text(passages[rank].chunk)
        share = coverage(event, text, shared)
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


def _order(a: Ymd, b: Ymd) -> int | None:
    """-1 when ``a`` is before ``b``, 1 after, 0 the same day; None when the parts they give
    cannot tell (2021年 and 2021年5月)."""
    for x, y in zip(a, b, strict=True):
        if x is None or y is None:
            return None
        if x != y:
            return -1 if x < y else 1
    return 0


def compare(request: GenerationRequest, comparison: Comparison) -> Choice | str:
    """The computed answer to a comparison (a draft with a marker for every event's passage),
    or why it cannot be given."""
    events = comparison.events
    if len(comparison.candidates) != len(events):
        return "the events were not retrieved one by one"
    pairs = [cjk_bigrams(event, latin=True) for event in events]
    dated: list[Dated] = []
    for n, (event, ranks) in enumerate(zip(events, comparison.candidates, strict=True)):
        rivals = frozenset().union(*(p for m, p in enumerate(pairs) if m != n))
        found = bind(event, request.passages, ranks, rivals)
        if isinstance(found, str):
            return found
        chunk = request.passages[found.rank].chunk
        if ungrounded_terms(found.written, shown_text(chunk)):
            return f"the passage about {event} does not write its date"
        dated.append(found)
    by_report = [d.rank for d in dated if d.reported]
    if len(by_report) != len(set(by_report)):
        return "one article's date is all that dates two of the events"
    if comparison.relation in SAMES:
        depth = SAMES.index(comparison.relation) + 1
        if not all(_known(d.when, depth) for d in dated):
            return f"the passages do not give every event's {comparison.relation}"
        same = len({d.when[:depth] for d in dated}) == 1
        draft = zh.same_draft(same, [(f"{d.event}{d.when_said()}", d.rank + 1) for d in dated])
        best = dated[0]
    else:
        sign = -1 if comparison.relation == "earliest" else 1
        first = [d for d in dated if all(_order(d.when, o.when) == sign for o in dated if o is not d)]
        if not first:
            return "the passages do not date the events precisely enough to order them"
        best = first[0]
        # Only the chosen event is named: the question names the others.
        others = [(d.when_said(), d.rank + 1) for d in dated if d is not best]
        draft = zh.order_draft(best.event, (best.when_said(), best.rank + 1), others, sign < 0, len(dated) > 2)
    sentence = ScoredSentence(best.rank, best.text, best.start, best.end, 1.0)
    return Choice(sentence=sentence, answer=draft, score=1.0, draft=True)
