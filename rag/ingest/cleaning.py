"""Text repair for PDF-extracted (newspaper) text: CJK spacing and hard-wrapped lines.

PDF extraction of a Chinese newspaper page gives one short line per printed line,
often with a space between every character (``围 绕 养 老``) and with blank lines
between printed lines. We rebuild paragraphs ("blocks") from the line widths:

* a space between two CJK characters (or CJK punctuation) is an artefact and goes;
  a space next to a Latin letter or digit stays (``为 386 名``, ``33.17 万元``);
* a printed line that is clearly shorter than the lines around it did not reach the
  column edge, so it ends a block (a paragraph, a headline, a byline);
* a line indented in the source starts a new text frame (usually a new article);
* a line ending in a byline such as ``（张 弦）`` ends a block.

Text that is not hard-wrapped (ordinary paragraphs separated by blank lines) keeps its
paragraphs; lines inside a paragraph are joined with a space unless CJK meets CJK.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from dataclasses import dataclass

from rag.lang.en.words import STOPWORDS
from rag.lang.zh.script import BYLINE_END, CJK_TEXT, IDEOGRAPHIC_SPACE, PHOTO_CREDIT, ends_sentence

_CJK = CJK_TEXT
_CJK_CHAR = re.compile(f"[{_CJK}]")
_SPACE_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}])[ \t{IDEOGRAPHIC_SPACE}\u00a0]+(?=[{_CJK}])")
_BYLINE_END = re.compile(BYLINE_END)
# A line narrower than this share of its neighbours' typical width is a short line.
_SHORT_LINE_RATIO = 0.8
_NEIGHBOURS = 4
# A first line is indented two wide characters (4 columns); allow a little more.
_INDENT_SLACK = 4
_CLAUSE_PUNCT = set("，。、；：！？,;:!?")
_MAX_HEADING_CHARS = 60
# "# Title" to "###### Title": a heading in Markdown (and in many .txt files).
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+")
# A headline line in the body column is much narrower than the body lines around it.
_HEADLINE_RATIO = 0.75
# Headline, subtitle (possibly wrapped) and author: at most this many lines in a run.
_MAX_HEADLINE_LINES = 3


@dataclass(frozen=True)
class Block:
    """A rebuilt paragraph.

    ``new_frame`` marks an indented start in the source; ``heading`` a display line
    (headline, subtitle, author) rather than body text.
    """

    text: str
    new_frame: bool
    heading: bool = False


def display_width(text: str) -> int:
    """Printed width: wide (CJK) characters count two, others one."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def join_cjk_spaces(line: str) -> str:
    """Drop spaces between CJK characters; keep them next to Latin text and digits."""
    return _SPACE_BETWEEN_CJK.sub("", line)


def normalise_line(line: str) -> str:
    """Normalise one source line: NFC, no control characters, CJK spacing fixed."""
    line = unicodedata.normalize("NFC", line).replace("\u00ad", "")
    line = "".join(ch for ch in line if ch in "\t" or unicodedata.category(ch)[0] != "C")
    return re.sub(r"[ \t\u00a0]{2,}", " ", join_cjk_spaces(line.strip()))


def join_lines(left: str, right: str) -> str:
    """Join two wrapped lines: no space where CJK meets CJK, a space between words."""
    if not left:
        return right
    if left.endswith("-") and len(left) > 1 and left[-2].isalpha() and right[:1].islower():
        return left[:-1] + right
    if _CJK_CHAR.match(left[-1]) or _CJK_CHAR.match(right[0]):
        return left + right
    return f"{left} {right}"


def is_byline_end(text: str) -> bool:
    """True when a block ends with a reporter byline such as ``（张弦）``."""
    return bool(_BYLINE_END.search(text)) and PHOTO_CREDIT not in text


def _is_double_spaced(lines: list[str]) -> bool:
    """PDF extractors often put a blank line after every printed line."""
    non_empty = [i for i, line in enumerate(lines) if line.strip()]
    if len(non_empty) < 4:
        return False
    followed_by_blank = sum(1 for i in non_empty if i + 1 < len(lines) and not lines[i + 1].strip())
    return followed_by_blank >= 0.8 * len(non_empty)


def _groups(raw: str) -> tuple[list[list[tuple[str, bool]]], bool]:
    """Split raw text into groups of (line, indented) that blank lines separate.

    Also says whether the text is double-spaced printed lines (then blanks mean nothing).
    """
    lines = raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ignore_blanks = _is_double_spaced(lines)
    groups: list[list[tuple[str, bool]]] = [[]]
    for line in lines:
        if not line.strip():
            if not ignore_blanks and groups[-1]:
                groups.append([])
            continue
        indented = line[:1] in (" ", "\t", IDEOGRAPHIC_SPACE)
        groups[-1].append((line, indented))
    return [g for g in groups if g], ignore_blanks


def _local_width(widths: list[int], i: int) -> float | None:
    """Typical printed width of the lines around line i (None with too few lines)."""
    around = widths[max(0, i - _NEIGHBOURS) : i] + widths[i + 1 : i + 1 + _NEIGHBOURS]
    return float(statistics.median(around)) if len(around) >= 2 else None


def _is_short(widths: list[int], i: int, first: bool) -> bool:
    """Did line i stop clearly before the column edge?

    A paragraph's first line is indented by two wide characters, so it only counts as
    short when it falls well below that indent.
    """
    width = _local_width(widths, i)
    if width is None:
        return False
    if first:
        return widths[i] < width - _INDENT_SLACK
    return widths[i] < _SHORT_LINE_RATIO * width


def _is_stub(widths: list[int], i: int) -> bool:
    """A line under half the column: a caption, credit or signature, never mid-paragraph."""
    width = _local_width(widths, i)
    return width is not None and widths[i] < 0.5 * width


def has_clause_punctuation(text: str) -> bool:
    """True when text holds sentence or clause punctuation (body text, not a headline)."""
    return any(ch in _CLAUSE_PUNCT for ch in text)


def printed_blocks(group: list[tuple[str, bool]], first_is_frame: bool) -> list[Block]:
    """Rebuild paragraphs and headlines from printed lines (``(line, indented)``), as PDF
    extraction or OCR (rag.ingest.layout) gives them."""
    texts = [normalise_line(line) for line, _ in group]
    widths = [display_width(t) for t in texts]
    blocks: list[Block] = []
    current = ""
    frame = first_is_frame
    # How many more lines may continue the current headline run without looking narrow.
    headline_budget = 0

    def flush(heading: bool = False) -> None:
        nonlocal current, frame
        if current:
            blocks.append(Block(current, frame, heading))
            current, frame = "", False

    for i, text in enumerate(texts):
        if not text:
            continue
        if current and group[i][1]:
            flush()
            frame = True
        first = not current
        width = _local_width(widths, i)
        after_sentence = bool(blocks) and (first or ends_sentence(current))
        # Narrower than the body by more than a paragraph indent could explain.
        narrow = width is not None and widths[i] < min(_HEADLINE_RATIO * width, width - 2 * _INDENT_SLACK)
        if not has_clause_punctuation(text) and (headline_budget > 0 or (after_sentence and narrow)):
            flush()
            current = text
            flush(heading=True)
            headline_budget = headline_budget - 1 if headline_budget > 0 else _MAX_HEADLINE_LINES - 1
            continue
        headline_budget = 0
        current = join_lines(current, text)
        if is_byline_end(text):
            flush()
            headline_budget = _MAX_HEADLINE_LINES  # the article's headline follows its byline
        elif _is_short(widths, i, first) and (ends_sentence(text) or _is_stub(widths, i)):
            # Paragraphs end at sentence ends; a short line that stops mid-sentence is
            # usually an indented first line, unless it is a stub such as a photo credit.
            flush()
    flush()
    return blocks


def _opens_with_headline(lines: list[str]) -> bool:
    """Does a document's first line stand alone as a headline typed right above its text (no
    blank line between)? A Markdown heading does; so does a short line without clause
    punctuation that ends no sentence, well narrower than the longest line under it, whose
    sentence the next line does not go on with (lower case, or a last word such as "the").
    A prose paragraph wrapped by hand has a first line as wide as the rest."""
    first, rest = lines[0], lines[1:]
    if not rest:
        return False
    if _MARKDOWN_HEADING.match(first):
        return True
    last_word = first.rsplit(maxsplit=1)[-1].lower()
    return (
        len(first) <= _MAX_HEADING_CHARS
        and not has_clause_punctuation(first)
        and not ends_sentence(first)
        and display_width(first) <= _HEADLINE_RATIO * max(display_width(line) for line in rest)
        and not rest[0][:1].islower()
        and last_word not in STOPWORDS
    )


def _prose_blocks(group: list[tuple[str, bool]], first_is_frame: bool, opening: bool = False) -> list[Block]:
    """Paragraphs of ordinary text: lines of one paragraph are joined. In the ``opening``
    paragraph of a document, a headline typed on the line above the text is a block of its
    own (the document's title)."""
    lines = [text for text in (normalise_line(line) for line, _ in group) if text]
    if not lines:
        return []
    blocks: list[Block] = []
    if opening and _opens_with_headline(lines):
        blocks.append(Block(_MARKDOWN_HEADING.sub("", lines[0]), first_is_frame, True))
        lines, first_is_frame = lines[1:], False
    text = ""
    for line in lines:
        text = join_lines(text, line)
    heading = len(lines) == 1 and len(text) <= _MAX_HEADING_CHARS and not ends_sentence(text)
    if _MARKDOWN_HEADING.match(text) and len(lines) == 1:
        text, heading = _MARKDOWN_HEADING.sub("", text), True
    return blocks + ([Block(text, first_is_frame, heading)] if text else [])


def split_blocks(raw: str) -> list[Block]:
    """Rebuild the paragraphs of a raw extracted text."""
    groups, printed_lines = _groups(raw)
    blocks: list[Block] = []
    for n, group in enumerate(groups):
        if printed_lines:
            blocks.extend(printed_blocks(group, n == 0 or group[0][1]))
        else:
            blocks.extend(_prose_blocks(group, n == 0 or group[0][1], opening=n == 0))
    return blocks


def clean_text(raw: str) -> str:
    """The cleaned text of a document: its rebuilt paragraphs, one per line."""
    return "\n".join(block.text for block in split_blocks(raw))
