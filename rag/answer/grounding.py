"""The grounding contract: a draft is released to a client only as units that have been verified.

Every generator writes a draft with ``[n]`` markers that point at the request's passages.
The ``Verifier`` cuts it into units (a sentence, with the markers that follow it) as it
streams, and checks each complete unit against the passages the model was shown:

- a unit saying ``NOT_FOUND`` (the prompt's phrase), or only that the passages do not
  say ("not mentioned", 未提及), means the model found no answer;
- every number and acronym of the unit must appear in the shown passages or the days
  their documents were published, which citations show (small models
  invent figures and names when the passages lack them), and in a passage that names the
  places, organisations and people the question names (``rag.answer.entities``);
- its markers are mapped to the passages that hold its numbers (small models often cite
  the wrong passage) and renumbered so that ``[n]`` is the n-th citation of the answer;
  a unit with figures but no marker gets one;
- English "N million" that the passages write with 万 or 亿 is put right (``fix_scales``);
- it is written as the question's language writes dates and counts (``rag.answer.localise``:
  ``2010年 9月`` is ``September 2010`` to an English question), values unchanged; and when a
  model answers an English question in Chinese before anything was released, the gate's span
  is verified and released instead and the model is stopped (``fallback``), with a warning.

A unit that passes is released and never changes afterwards, so the pieces a client
streams join to the final answer, and every marker already streamed keeps pointing at the
same citation (citations are only ever appended). When the first unit fails, the answer
is an abstention and its text is ``ABSTAIN_TEXT`` alone: the withheld draft reaches no
client. When a later unit fails, the answer is the units already released, with a
warning, and the generation is stopped.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

from rag.answer.entities import missing_in
from rag.answer.localise import localise
from rag.lang import ABSTAIN_CHINESE, ABSTAIN_TEXT
from rag.lang.en import drafts as en_drafts
from rag.lang.zh import drafts as zh_drafts
from rag.lang.zh.dates import iso_day, written_day
from rag.lang.zh.script import CLAUSE_MARKS, SENTENCE_MARKS, in_chinese
from rag.lang.zh.units import APPROXIMATELY, MYRIADS, SCALES
from rag.types import Answer, Chunk, Citation, GenerationRequest, ScoredSentence, passage_text

logger = logging.getLogger(__name__)

NOT_FOUND = "NOT_FOUND"
_MARKER = re.compile(r"\[(\d{1,2})\]")
_SPACED_MARKER = re.compile(r"\s*\[(\d{1,2})\]")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]+\b")
# A unit ends at a sentence end: 。！？； and their ASCII forms (a full stop only before a
# space or a line end, not inside 9.4), or a line break. Markers right after it belong to it.
_UNIT_END = re.compile(rf"[{SENTENCE_MARKS}!?;]|\.(?=\s)|\n")
_TRAILING_MARKERS = re.compile(r"(?:[ \t]*\[\d{1,2}\])*")
_PARTIAL_MARKER = re.compile(r"\[\d{0,2}$")
_TAIL_PUNCTUATION = re.compile(rf"[\s{SENTENCE_MARKS}!?;.{CLAUSE_MARKS},]*$")
# A draft that only says the passages do not tell, in other words than NOT_FOUND.
_NO_ANSWER = re.compile(f"{en_drafts.NO_ANSWER}|{zh_drafts.NO_ANSWER}", re.I)
_SCALED = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*(million|billion)\b", re.I)
# In normalised passage text (no spaces or commas): "33.17万", "500余万", "2.5亿", "3万亿".
_SCALE_VALUE = {**SCALES, **en_drafts.SCALES}
_SCALED_SOURCE = re.compile(rf"(?<![\d.])(\d+(?:\.\d+)?){APPROXIMATELY}?({'|'.join(_SCALE_VALUE)})", re.I)


def cited_ranks(text: str, passages: int) -> list[int]:
    """Passage ranks (from 0) the text cites with [n], in order of first mention."""
    ranks = [int(m) - 1 for m in _MARKER.findall(text)]
    return list(dict.fromkeys(r for r in ranks if 0 <= r < passages))


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().replace(" ", "").replace(",", "")


def ungrounded_terms(answer: str, evidence: str) -> list[str]:
    """Numbers and Latin words of the answer (markers aside) that the evidence lacks."""
    body = _MARKER.sub(" ", answer)
    source = _normal(evidence)
    numbers = [n for n in _NUMBER.findall(_normal(body)) if n not in source]
    # Of Latin text only acronyms are checked (``GDP``, ``PPP``): an English answer about
    # Chinese passages is all English words ("The Party secretary of Zhuzhou is 曹慧泉"),
    # checked by its numbers.
    terms = [w for w in _ACRONYM.findall(body) if _normal(w) not in source]
    return numbers + terms


def shown_text(chunk: Chunk) -> str:
    """A passage as a client sees it cited: its title and text, then the day its document was
    published (every citation carries it), so a date taken from that day is grounded too."""
    text = passage_text(chunk)
    if (day := iso_day(chunk.published)) is None:
        return text
    return f"{text}\n{chunk.published} {written_day(day.year, day.month, day.day)}"


def _with_marker(text: str, n: int) -> str:
    """``[n]`` put before the text's closing punctuation (with a space after Latin text)."""
    tail = _TAIL_PUNCTUATION.search(text)
    cut = tail.start() if tail else len(text)
    space = " " if cut and text[cut - 1].isascii() and text[cut - 1].isalnum() else ""
    return f"{text[:cut]}{space}[{n}]{text[cut:]}"


def _figures(terms: list[str]) -> str:
    """How many unsupported figures or terms, without quoting them."""
    return "1 figure" if len(terms) == 1 else f"{len(terms)} figures"


def _claims(unit: str) -> bool:
    """Does the unit state figures or acronyms (which need a citation)?"""
    body = _MARKER.sub(" ", unit)
    return bool(_NUMBER.search(body) or _ACRONYM.search(body))


def _amounts(source: str) -> list[tuple[str, str, float]]:
    """(number, scale, value) of every amount the normalised passages write with a scale."""
    found = []
    for match in _SCALED_SOURCE.finditer(source):
        number, scale = match.group(1), match.group(2)
        found.append((number, scale, float(number) * _SCALE_VALUE.get(scale, 1)))
    return found


def _plain(value: float) -> str:
    """A value as an English amount: 331,700; 250 million; 1.25 billion; 3 trillion."""
    for size, word in ((10**12, "trillion"), (10**9, "billion"), (10**6, "million")):
        if value >= size:
            return f"{value / size:,.4f}".rstrip("0").rstrip(".") + f" {word}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def fix_scales(answer: str, evidence: str) -> str:
    """English scale words put right where the passages count in 万 or 亿.

    A small model turns "33.17 万元" into "33.17 million yuan"; it is 331,700 yuan. An
    "N million" (or billion) is rewritten to the passages' value when the passages write
    N with 万, 亿 or 万亿 and no amount of theirs equals what the answer says.
    """
    amounts = _amounts(_normal(evidence))

    def fixed(match: re.Match[str]) -> str:
        number, word = match.group(1).replace(",", ""), match.group(2).lower()
        stated = float(number) * (10**6 if word == "million" else 10**9)
        if any(abs(value - stated) <= stated * 1e-9 for _, _, value in amounts):
            return match.group()
        chinese = [value for n, scale, value in amounts if n == number and scale in MYRIADS]
        return _plain(chinese[0]) if chinese else match.group()

    return _SCALED.sub(fixed, answer)


def split_units(buffer: str, final: bool) -> tuple[list[str], str]:
    """The complete units at the start of ``buffer``, and what is left to wait for.

    A sentence end completes a unit only once what follows it shows it cannot be a marker
    of that sentence (``386 workers. [1]``); at the end of the draft (``final``) the rest
    is a unit too.
    """
    units: list[str] = []
    start = 0
    while match := _UNIT_END.search(buffer, start):
        end = _TRAILING_MARKERS.match(buffer, match.end())
        stop = end.end() if end else match.end()
        rest = buffer[stop:]
        if not final and (not rest.strip() or _PARTIAL_MARKER.fullmatch(rest.lstrip(" \t"))):
            break
        units.append(buffer[start:stop])
        start = stop
    rest = buffer[start:]
    if final and rest:
        units.append(rest)
        rest = ""
    return units, rest


@dataclass(frozen=True)
class _Verdict:
    """A unit as it may be released (with the passages it cites), or why it is withheld."""

    text: str
    ranks: tuple[int, ...]
    reason: str = ""


class Verifier:
    """Releases a draft unit by unit, each checked against the shown passages (see the module doc).

    ``feed`` takes draft pieces and returns the text that may be released now; ``end``
    flushes the last unit; ``stopped`` says the draft failed and generation should stop;
    ``answer`` is the final answer, whose text is exactly what was released.
    """

    def __init__(self, request: GenerationRequest, shown: int | None = None, fallback: str = "") -> None:
        self._request = request
        # What to answer instead when the model writes Chinese to an English question (the
        # gate's span, which ``localise`` writes in English); "" keeps the model's sentence.
        self._fallback = fallback
        self._replaced = False
        self._other_language = False
        self._shown = min(shown or len(request.passages), len(request.passages))
        self._texts = [shown_text(request.passages[r].chunk) for r in range(self._shown)]
        # Passages that name what the question names: the only ones an answer may come from.
        self._bound = [r for r in range(self._shown) if not missing_in(request.names, request.passages[r].chunk)]
        evidence = request.evidence
        self._focus = evidence.sentence if evidence is not None else None
        self._buffer = ""
        self._space = ""  # blank units, joined to the next unit
        self._held: list[str] = []  # verified units that cite nothing, before the first that does
        self._released: list[str] = []
        self._citations: list[int] = []  # passage ranks, in the order the answer first cites them
        self._as_verified: list[str] = []  # verified units before ``localise`` rewrote their dates and counts
        self._reason = ""
        self._withheld = ""
        self._finished = False

    @property
    def stopped(self) -> bool:
        """The draft failed a check, or was replaced: nothing more of it will be released."""
        return self._finished or self._replaced

    @property
    def released(self) -> str:
        return "".join(self._released)

    def abstain(self, reason: str) -> list[str]:
        """Abstain without a draft (the gate found no evidence): release the abstention text."""
        return self._fail(reason)

    def feed(self, piece: str) -> list[str]:
        """Take a piece of the draft; return the verified text to release now."""
        if self._finished or self._replaced:
            return []
        self._buffer += piece
        units, self._buffer = split_units(self._buffer, final=False)
        return self._release(units)

    def end(self) -> list[str]:
        """The draft is complete: verify and release what is left."""
        if self._finished:
            return []
        units, self._buffer = split_units(self._buffer, final=True)
        out = self._release([] if self._replaced else units)
        if self._finished:
            return out
        self._finished = True
        if not self._released and not self._held:
            return self._fail("the model found no answer")
        if self._held:
            held = "".join(self._held)
            self._held = []
            if not self._citations:
                # No unit cited anything (an answer without figures or markers): it rests on
                # the evidence the gate chose.
                self._citations.append(self._preferred(self._bound or [0]))
                held = _with_marker(held, 1)
            out.append(self._emit(held))
        return out

    def _fail(self, reason: str) -> list[str]:
        self._finished = True
        self._held = []
        if self._released:
            self._withheld = reason
            return []
        self._reason = reason
        return [self._emit(ABSTAIN_TEXT)]

    def _emit(self, text: str) -> str:
        self._released.append(text)
        return text

    def _release(self, units: list[str]) -> list[str]:
        """Verify complete units. Units that cite nothing are held back until one that does (or
        the end of the draft), so a draft that opens with "According to the passages," and then
        finds nothing releases nothing; blank units join the next one."""
        out: list[str] = []
        for raw in units:
            unit = raw.lstrip() if not (self._released or self._held) else raw
            if not unit.strip():
                self._space += unit
                continue
            unit, self._space = self._space + unit, ""
            verdict = self._verify(unit)
            if verdict.reason:
                logger.debug("withheld draft unit %r: %s", unit, verdict.reason)
                out.extend(self._fail(verdict.reason))
                return out
            if self._request.info.language == "en" and in_chinese(_MARKER.sub("", unit)):
                if self._fallback and not (self._released or self._held):
                    return out + self._replace()
                self._other_language = True
            if not self._released and not verdict.ranks:
                self._held.append(verdict.text)
                continue
            out.append(self._emit("".join(self._held) + verdict.text))
            self._held = []
        return out

    def _replace(self) -> list[str]:
        """The model answered an English question in Chinese before releasing anything: release
        the fallback instead, verified the same way, and stop the model."""
        units, _ = split_units(self._fallback, final=True)
        self._fallback, self._replaced, self._buffer = "", True, ""
        self._citations, self._as_verified = [], []  # those of the verified Chinese unit, not released
        return self._release(units)

    def _preferred(self, ranks: list[int]) -> int:
        """Of the candidate passages, the one holding the gate's evidence sentence, else the best."""
        if self._focus is not None and self._focus.passage_rank in ranks:
            return self._focus.passage_rank
        return ranks[0]

    def _verify(self, unit: str) -> _Verdict:
        """A unit checked and its markers renumbered, or why it is withheld.

        Reasons never quote the draft: a client that shows them would show what was withheld.
        """
        if NOT_FOUND in unit or ABSTAIN_CHINESE in unit or (_NO_ANSWER.search(unit) and not _claims(unit)):
            return _Verdict("", (), "the model found no answer")
        missing = ungrounded_terms(unit, "\n".join(self._texts))
        if missing:
            verb = "appears" if len(missing) == 1 else "appear"
            return _Verdict("", (), f"the model's answer has {_figures(missing)} that {verb} in none of the passages")
        names = self._request.names
        unbound = ungrounded_terms(unit, "\n".join(self._texts[r] for r in self._bound)) if names else []
        if unbound:
            reason = f"the model's answer has {_figures(unbound)} from passages that do not name {', '.join(names)}"
            return _Verdict("", (), reason)
        cited = cited_ranks(unit, self._shown)
        holding = [r for r in self._bound if not ungrounded_terms(unit, self._texts[r])]
        ranks: list[int] = []
        if cited or _claims(unit):
            ranks = [r for r in cited if r in holding] or (
                [self._preferred(holding)] if holding else [r for r in cited if r in self._bound]
            )
            ranks = ranks or [self._preferred(self._bound or [0])]
        text = self._renumber(unit, ranks)
        if ranks and not _MARKER.search(text):
            text = _with_marker(text, self._citations.index(ranks[0]) + 1)
        if ranks:
            text = fix_scales(text, "\n".join(self._texts[r] for r in ranks))
        self._as_verified.append(text)  # the evidence sentence is found by the numbers as the passages write them
        return _Verdict(localise(text, self._request.info.language), tuple(ranks))

    def _renumber(self, unit: str, ranks: list[int]) -> str:
        """Markers renumbered to the answer's citations (new passages appended to them).

        A marker that points at a passage not among ``ranks`` (the model cited the wrong
        one) becomes the unit's first citation when the unit has no right marker; other
        wrong markers are dropped.
        """
        for rank in ranks:
            if rank not in self._citations:
                self._citations.append(rank)
        keep_first_wrong = not any(int(n) - 1 in ranks for n in _MARKER.findall(unit))

        def marker(match: re.Match[str]) -> str:
            nonlocal keep_first_wrong
            rank = int(match.group(1)) - 1
            if rank in ranks:
                return f"{match.group(0)[: -len(match.group(1)) - 2]}[{self._citations.index(rank) + 1}]"
            if keep_first_wrong and ranks:
                keep_first_wrong = False
                return f"{match.group(0)[: -len(match.group(1)) - 2]}[{self._citations.index(ranks[0]) + 1}]"
            return ""

        return _SPACED_MARKER.sub(marker, unit)

    def answer(self) -> Answer:
        """The final answer: exactly the released text, with its citations, or the abstention."""
        text = self.released
        if self._reason or not self._citations:
            return Answer(
                text=text or ABSTAIN_TEXT,
                abstained=True,
                citations=(),
                abstain_reason=self._reason or "the model found no answer",
            )
        citations = []
        evidence = ""
        for rank in self._citations:
            passage = self._request.passages[rank]
            chunk = passage.chunk
            sentence = self._evidence(rank, "".join(self._as_verified) or text)
            start, end = (sentence.start, sentence.end) if sentence else (chunk.start, chunk.end)
            evidence = evidence or (sentence.text if sentence else chunk.text)
            citations.append(
                Citation(
                    chunk.doc_id,
                    chunk.title,
                    chunk.chunk_id,
                    chunk.text,
                    passage.score,
                    chunk.start,
                    chunk.end,
                    start,
                    end,
                    chunk.published,
                    chunk.regions,
                )
            )
        warnings: tuple[str, ...] = (
            (f"the rest of the model's answer was withheld: {self._withheld}",) if self._withheld else ()
        )
        if self._replaced:
            warnings += ("the model answered in Chinese: the answer is the span the passages give",)
        elif self._other_language:
            warnings += ("the model answered in Chinese, not in the question's language",)
        return Answer(text=text, abstained=False, citations=tuple(citations), evidence=evidence, warnings=warnings)

    def _evidence(self, rank: int, answer: str) -> ScoredSentence | None:
        """The sentence of a cited passage that supports the answer: the gate's evidence when it
        is in this passage and holds the answer's numbers, else one that does, else the best scored."""
        sentences = [s for s in self._request.sentences if s.passage_rank == rank]
        numbers = set(_NUMBER.findall(_normal(_MARKER.sub(" ", answer))))

        def holds(sentence: ScoredSentence) -> bool:
            return not numbers or bool(numbers & set(_NUMBER.findall(_normal(sentence.text))))

        focus = self._focus
        if focus is not None and focus.passage_rank == rank and holds(focus):
            return focus
        holding = [s for s in sentences if holds(s)]
        return (holding or sentences)[0] if sentences else None
