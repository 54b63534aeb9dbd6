"""What an LLM generator is asked, and how its reply becomes a cited, checked answer.

Shared by every LLM backend (local llama.cpp, any OpenAI-compatible server):

- the prompt numbers the passages with their article titles, asks for an answer in the
  question's language, short for factual questions, with ``[n]`` markers, and for a
  fixed phrase when the passages do not hold the answer;
- the citations are the passages the reply actually cites, and its ``[n]`` markers are
  renumbered so that ``[n]`` is the n-th citation;
- a grounding check refuses a reply whose numbers or Latin terms appear in none of the
  cited passages (small models invent figures and names when the passages lack them).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rag.generators.base import GenerationRequest, ScoredSentence
from rag.generators.extractive import ABSTAIN_TEXT
from rag.types import Answer, Citation, passage_text

NOT_FOUND = "NOT_FOUND"
_CJK = re.compile(r"[\u3400-\u9fff]")
_MARKER = re.compile(r"\[(\d{1,2})\]")
_SPACED_MARKER = re.compile(r"\s*\[(\d{1,2})\]")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]+\b")
_SCALED = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*(million|billion)\b", re.I)
# In normalised passage text (no spaces or commas): "33.17万", "500余万", "2.5亿", "3万亿".
_SCALED_SOURCE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)余?(万亿|百万|千万|万|亿|million|billion)", re.I)
_SCALE_VALUE = {
    "万亿": 10**12,
    "百万": 10**6,
    "千万": 10**7,
    "万": 10**4,
    "亿": 10**8,
    "million": 10**6,
    "billion": 10**9,
}


def is_chinese(text: str) -> bool:
    """Whether a question is written in Chinese (any CJK character)."""
    return bool(_CJK.search(text))


def system_prompt(question: str) -> str:
    """The instructions, ending with the language the answer must be in."""
    language = (
        "请用中文回答。" if is_chinese(question) else "Answer in English, even though the passages are in Chinese."
    )
    return (
        "You answer questions about news articles using only the numbered passages the user gives. "
        "Give the answer in one short sentence: for a question about a number, date, person or place, "
        "state it directly. After each fact, cite the passage it comes from as [1], [2], ... "
        f"If the passages do not contain the answer, reply with exactly {NOT_FOUND} and nothing else. "
        f"{language}"
    )


@dataclass(frozen=True)
class PromptShape:
    """How much of the retrieved text the model reads.

    A small model on two CPU cores reads about 40 to 50 prompt tokens a second, so whole
    chunks of five passages (about 1,500 tokens) cost 25 s before the first word. The
    prompt therefore holds, for each of the best ``passages``, its ``sentences`` most
    similar sentences in text order (0: the whole chunk).
    """

    passages: int = 3
    sentences: int = 2


def passage_excerpt(request: GenerationRequest, rank: int, sentences: int, focus: ScoredSentence | None = None) -> str:
    """The part of a passage the model reads: its best sentences in text order (the focus sentence
    among them), or the whole chunk."""
    chunk = request.passages[rank].chunk
    if sentences <= 0:
        return chunk.text
    own = [s for s in request.sentences if s.passage_rank == rank]
    first = [focus] if focus is not None and focus.passage_rank == rank else []
    best = (first + [s for s in own if s != focus])[:sentences]
    if not best:
        return chunk.text
    return "……".join(s.text for s in sorted(best, key=lambda s: s.start))


def user_prompt(request: GenerationRequest, shape: PromptShape, focus: ScoredSentence | None = None) -> str:
    """The numbered passages (titles and excerpts), the sentence most likely to answer, then the question."""
    blocks = []
    for rank in range(min(shape.passages, len(request.passages))):
        title = request.passages[rank].chunk.title
        excerpt = passage_excerpt(request, rank, shape.sentences, focus)
        blocks.append(f"[{rank + 1}] {title}\n{excerpt}" if title else f"[{rank + 1}] {excerpt}")
    hint = ""
    if focus is not None and focus.passage_rank < shape.passages:
        hint = f"\n\nMost relevant sentence (passage [{focus.passage_rank + 1}]): {focus.text}"
    keywords = ", ".join(dict.fromkeys(group[0] for group in request.keywords if group))
    if keywords:
        # An English question's words in the passages' language (rag.lexicon): the small
        # model matches "recover wages" to 追回 ... 工资 far better with them.
        hint += f"\n\nThe question's key words in Chinese: {keywords}"
    return "Passages:\n\n" + "\n\n".join(blocks) + hint + f"\n\nQuestion: {request.question}"


def messages(
    request: GenerationRequest, shape: PromptShape | None = None, focus: ScoredSentence | None = None
) -> list[dict[str, str]]:
    """Chat messages for the request; ``focus`` is the evidence sentence retrieval scored best."""
    return [
        {"role": "system", "content": system_prompt(request.question)},
        {"role": "user", "content": user_prompt(request, shape or PromptShape(), focus)},
    ]


def cited_ranks(text: str, passages: int) -> list[int]:
    """Passage ranks (from 0) the reply cites with [n], in order of first mention."""
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


def _evidence(request: GenerationRequest, rank: int, answer: str) -> tuple[int, int, str]:
    """The sentence of a cited passage that best supports the answer: one with its numbers, else the best scored."""
    sentences = [s for s in request.sentences if s.passage_rank == rank]
    numbers = set(_NUMBER.findall(_normal(answer)))
    holding = [s for s in sentences if numbers & set(_NUMBER.findall(_normal(s.text)))]
    best = (holding or sentences)[:1]
    if best:
        return best[0].start, best[0].end, best[0].text
    chunk = request.passages[rank].chunk
    return chunk.start, chunk.end, chunk.text


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
        chinese = [value for n, scale, value in amounts if n == number and scale in ("万", "亿", "万亿")]
        return _plain(chinese[0]) if chinese else match.group()

    return _SCALED.sub(fixed, answer)


def finish(request: GenerationRequest, text: str, gate: str | None, shown: int | None = None) -> Answer:
    """The reply as an answer: abstention (gate, NOT_FOUND, ungrounded), else the cited passages.

    ``shown`` passages were in the prompt (default: all). The answer's numbers and terms
    must appear in them. Small models often cite the wrong number, so a cited passage
    that lacks the answer's numbers gives way to the shown passages that hold them.
    """
    if gate is not None:
        return Answer(text=text, abstained=True, citations=(), abstain_reason=gate)
    stripped = text.strip()
    if not stripped or NOT_FOUND in stripped or stripped == ABSTAIN_TEXT:
        return Answer(text=ABSTAIN_TEXT, abstained=True, citations=(), abstain_reason="the model found no answer")
    count = min(shown or len(request.passages), len(request.passages))
    missing = ungrounded_terms(stripped, "\n".join(passage_text(request.passages[r].chunk) for r in range(count)))
    if missing:
        return Answer(
            text=stripped,
            abstained=True,
            citations=(),
            abstain_reason=f"the answer's {', '.join(missing)} appear in none of the passages",
        )
    cited = cited_ranks(stripped, count)
    holding = [r for r in range(count) if not ungrounded_terms(stripped, passage_text(request.passages[r].chunk))]
    ranks = [r for r in cited if r in holding] or holding[:1] or cited[:1] or [0]
    stripped = _SPACED_MARKER.sub(lambda m: m.group() if int(m.group(1)) - 1 in ranks else "", stripped)
    if not cited_ranks(stripped, count):
        stripped = f"{stripped} [{ranks[0] + 1}]"
    citations = []
    for rank in ranks:
        passage = request.passages[rank]
        chunk = passage.chunk
        start, end, _ = _evidence(request, rank, stripped)
        citations.append(
            Citation(
                chunk.doc_id, chunk.title, chunk.chunk_id, chunk.text, passage.score, chunk.start, chunk.end, start, end
            )
        )
    best = _evidence(request, ranks[0], stripped)[2]
    # Units are put right last: the evidence is found by the answer's own numbers.
    text = fix_scales(renumber(stripped, ranks), "\n".join(passage_text(request.passages[r].chunk) for r in ranks))
    return Answer(text=text, abstained=False, citations=tuple(citations), evidence=best)


def renumber(text: str, ranks: list[int]) -> str:
    """Markers renumbered to the citations' order: ``[n]`` is the n-th citation; others dropped."""

    def marker(match: re.Match[str]) -> str:
        rank = int(match.group(1)) - 1
        return f"[{ranks.index(rank) + 1}]" if rank in ranks else ""

    return _MARKER.sub(marker, text)
