"""Maintained libraries in place of our own Chinese rules, measured: ``python -m eval.swaps SWAP
[rag eval options]`` runs ``rag eval`` with one of our rules replaced (needs ``pip install
jionlp``, which the project does not depend on). Measure on a dev set's tuning half
(``--half tune``); a swap whose figures are no better is not made (docs/architecture.md).

- ``dates``: the date a question is about from JioNLP's time extractor (``ner.extract_time``, relative
  words resolved on the day the question is asked) instead of ``rag.lang.zh.dates.question_date``;
- ``dates-fallback``: ours, and JioNLP's only where ours finds no date;
- ``sentences-pattern``: the sentences the gate scores cut by the pattern we used before JioNLP's
  ``split_sentence`` (coarse), which ``rag.lang.zh.script.split_sentences`` uses now (index time:
  give ``--indexes`` a folder of its own). Measured with JioNLP the other way round, on the
  tuning halves: CMRC 2018 1,525 -> 1,538 of 2,122 correct, ChronoQA 1,694 -> 1,695 of 2,568.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from rag.types import Chunk, Ymd


def _whole_unit(start: str, end: str) -> Ymd | None:
    """A span JioNLP gives as the finest whole unit it covers: a year, a month or a day (None for
    an open span, 至今: it writes inf)."""
    try:
        a, b = datetime.fromisoformat(start), datetime.fromisoformat(end)
    except ValueError:
        return None
    if a.year == b.year and (a.month, a.day, b.month, b.day) == (1, 1, 12, 31):
        return (a.year, None, None)
    if (a.year, a.month) == (b.year, b.month) and a.day == 1 and b.day >= 28:
        return (a.year, a.month, None)
    if a.date() == b.date():
        return (a.year, a.month, a.day)
    return None


def jionlp_date(text: str, as_of: date | None = None) -> Ymd | None:
    """The first date JioNLP's time extractor reads in the text that is a whole year, month or day
    (五年前, which it calls blurred, is the whole year five years back)."""
    import jionlp

    base = as_of or date.today()
    try:
        found: list[dict[str, Any]] = jionlp.ner.extract_time(
            text, time_base={"year": base.year, "month": base.month, "day": base.day}, with_parsing=True
        )
    except ValueError:  # it raises on some text (周四天工作): no date, as our rules would say
        return None
    for item in found:
        detail = item.get("detail") or {}
        times = detail.get("time")
        if detail.get("type") in ("time_point", "time_span") and detail.get("definition") in ("accurate", "blur"):
            if isinstance(times, list) and len(times) == 2 and all(isinstance(t, str) for t in times):
                if (when := _whole_unit(times[0], times[1])) is not None:
                    return when
    return None


# The sentence pattern rag.lang.zh.script used before JioNLP: up to an end mark (。！？；, their
# ASCII forms), with the closing quotes after it.
_SENTENCE = re.compile(r"[^。！？!?；;\n]+(?:[。！？!?；;]+[”’」』）)]*)?")


def pattern_sentences(chunk: Chunk) -> list[tuple[int, int]]:
    """Sentence spans of a chunk (document offsets) cut by our former pattern, with the same filters."""
    from rag.lang.zh.script import ends_sentence

    spans = []
    for match in _SENTENCE.finditer(chunk.text):
        text = match.group()
        lead = len(text) - len(text.lstrip())
        body = text.strip()
        if len(body) >= 2 and not (body in chunk.title and not ends_sentence(body)):
            start = chunk.start + match.start() + lead
            spans.append((start, start + len(body)))
    return spans


def _swap(name: str) -> None:
    """Replace one of our rules where the answer path calls it (for this process only)."""
    import rag.answer.analysis
    import rag.answer.timeline
    import rag.index.build

    ours = getattr(rag.answer.analysis, "question_date")  # noqa: B009

    def with_fallback(text: str, as_of: date | None = None) -> Ymd | None:
        found: Ymd | None = ours(text, as_of)
        return found or jionlp_date(text, as_of)

    if name == "dates":
        setattr(rag.answer.analysis, "question_date", jionlp_date)  # noqa: B010
    elif name == "dates-fallback":
        setattr(rag.answer.analysis, "question_date", with_fallback)  # noqa: B010
    elif name == "sentences-pattern":
        setattr(rag.index.build, "split_sentences", pattern_sentences)  # noqa: B010
        setattr(rag.answer.timeline, "split_sentences", pattern_sentences)  # noqa: B010
    else:
        raise SystemExit(f"unknown swap {name!r}; choose dates, dates-fallback or sentences-pattern")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise SystemExit(__doc__)
    _swap(args[0])
    from eval.cli import main as eval_main

    return eval_main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
