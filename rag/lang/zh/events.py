"""How Chinese questions compare events in time, and how the computed answers say it.

``parse_comparison`` reads "A和B哪个更早发生？", "A、B和C哪个最早？", "A和B是同一年吗？";
``parse_same_day`` reads "X当天，…". The answer phrases (``said_when``, ``same_draft``,
``order_draft``) word what ``rag.answer.timeline`` computed. Read by the question analysis
(the parsers) and the timeline (the phrases) only.
"""

from __future__ import annotations

import re

from rag.lang.tables import pattern, patterns
from rag.lang.zh.dates import dates_in
from rag.types import Comparison, Relation

# The grammar of compared events (tables event_* of rules.toml): where the events end and the
# comparison begins (cue), the relation asked (same, early, late), the words around the events
# that are not part of them (head, tail), how they are listed and joined, their count, and
# what may follow the cue (when_only: only words about when).
_EVENT = {
    name: pattern("zh", f"event_{name}")
    for name in ("cue", "same", "early", "late", "tail", "head", "list", "join", "count", "when_only")
}
_EVENT_CHARS = 2


def _balanced_split(text: str) -> list[str]:
    """Two events joined by 和 (or 与, 及): split at the joining word that leaves the most
    even halves, since names hold the same words (汪小菲和大S参加…典礼和周铁农逝世)."""
    cuts = [(abs(m.start() - (len(text) - m.end())), m.start(), m.end()) for m in _EVENT["join"].finditer(text)]
    if not cuts:
        return [text]
    _, start, end = min(cuts)
    return [text[:start], text[end:]]


def _clean(event: str) -> str:
    return _EVENT["head"].sub("", _EVENT["tail"].sub("", event.strip()))


# Other wordings of a comparison, read as the template: A比B早吗 -> A和B哪个更早.
_PAIR_EARLY = patterns("zh", "event_pair_early")
_PAIR_LATE = patterns("zh", "event_pair_late")
_IN_ORDER = patterns("zh", "event_in_order")


def _as_template(text: str) -> str | None:
    """A comparison worded otherwise (A比B早吗, A早于B吗, 按时间先后排序, 相隔多久) in the
    template's words, or None."""
    for pairs, word in ((_PAIR_EARLY, "更早"), (_PAIR_LATE, "更晚")):
        for pair in pairs:
            if found := pair.match(text):
                return f"{found.group('a')}和{found.group('b')}哪个{word}"
    for in_order in _IN_ORDER:
        if found := in_order.match(text):
            return f"{found.group('events')}哪个最早"
    return None


def parse_comparison(question: str) -> Comparison | None:
    """The comparison a Chinese question asks for, or None when it asks something else."""
    text = question.strip().rstrip("？?。！!")
    found = _parse_template(text)
    if found is None and (template := _as_template(text)) is not None:
        found = _parse_template(template)
    return found


def _parse_template(text: str) -> Comparison | None:
    """The comparison of a question in the template's words (A和B哪个更早发生)."""
    relation: Relation
    same = _EVENT["same"].search(text)
    if same:
        relation = "year" if same.group(1) == "年" else "month" if same.group(1) == "月" else "day"
        if relation == "year" and re.search(r"同一?个?月", text):
            relation = "month"  # 同年同月
    elif asking := re.search(r"哪|谁", text):
        after = text[asking.start() :]
        if _EVENT["early"].search(after):
            relation = "earliest"
        elif _EVENT["late"].search(after):
            relation = "latest"
        else:
            return None
    else:
        return None
    cue = _EVENT["cue"].search(text)
    if cue is None or cue.start() < 2 * _EVENT_CHARS or not _EVENT["when_only"].fullmatch(text[cue.start() :]):
        return None
    listed = [part for part in map(_clean, _EVENT["list"].split(_clean(text[: cue.start()]))) if part]
    count = _EVENT["count"].search(text[max(0, cue.start() - 10) :])
    if listed and (not count or len(listed) < "两三四五".index(count.group(1)) + 2):
        listed = [*listed[:-1], *_balanced_split(listed[-1])]  # A、B和C; A和B
    events = tuple(e for e in map(_clean, listed) if e and not re.fullmatch(r"[\d年月日号初底末]+", e))
    if not 2 <= len(events) <= 5 or any(len(e) < _EVENT_CHARS for e in events):
        return None
    return Comparison(events, relation)


# "X当天，…": the question is about the day event X happened.
_SAME_DAY_AS = pattern("zh", "same_day_as")


def parse_same_day(question: str) -> tuple[str, str] | None:
    """The event and what is asked of its day (``梦天实验舱发射当天，湖北新增多少例？`` ->
    (梦天实验舱发射, 湖北新增多少例？)), or None."""
    found = _SAME_DAY_AS.match(question.strip())
    if found is None or parse_comparison(question) is not None:
        return None
    event = _clean(found.group("event"))
    if re.search(r"[是在于]$", event) or any(day[0] is not None and day[2] is not None for day in dates_in(event)):
        return None  # 2024年3月5日当天: the question gives the day itself
    return event, found.group("rest")


def said_when(written: str, reported: bool) -> str:
    """When an event happened, as the answer says it: on the day a sentence gives, or as of the
    day its article reported it (its dateline or publication day)."""
    return f"见于{written}的报道" if reported else f"在{written}"


def with_year(written: str, year: int | None) -> str:
    """A yearless date (7月23日) with its year before it."""
    return f"{year}年{written}"


def same_draft(same: bool, events: list[tuple[str, int]]) -> str:
    """Yes or no, then each event with when it happened and its passage's marker."""
    dates = "；".join(f"{said} [{marker}]" for said, marker in events)
    return f"{'是的' if same else '不是'}。{dates}。"


def order_draft(event: str, when: tuple[str, int], others: list[tuple[str, int]], earliest: bool, several: bool) -> str:
    """The event that came first (or last), when it happened, then when the others did."""
    word = ("最" if several else "更") + ("早" if earliest else "晚")
    rest = "".join(f"；另一件{said} [{marker}]" for said, marker in others)
    return f"{event}{word}：它{when[0]} [{when[1]}]{rest}。"
