"""Split a cleaned page into articles and find each article's headline.

On the extracted newspaper page a headline comes *after* its article's body, so we
read the blocks from :func:`rag.ingest.cleaning.split_blocks` in order and close an article
when one of these layout signs appears:

1. a byline block ending in ``（张弦）``: the article ends there, and the headline
   blocks right after it (up to two: headline and subtitle; a series tag such as
   ``高质量发展看资兴⑥`` stops the headline) are its title;
2. a run of headline blocks that ends with an author line (two to four CJK characters,
   such as ``李永亮``): the run is the headline of the body above it;
3. a block indented in the source starts a new text frame, so the article before it
   ends, even without a headline (it then gets a title from its first sentence).

Where print has it the other way round, a frame that opens with headline blocks (a scan
read by OCR, rag.ingest.layout; a DOCX heading) takes them as its title, and a byline never
takes the next frame's headline.

Headline runs that satisfy none of these are section headings inside an article and
stay in its text. Blocks after the last article (photo captions, a series tag) form a
last article of their own. A document without any of these signs is one article,
titled by its first heading or, failing that, by the caller's fallback title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.ingest.cleaning import Block, is_byline_end
from rag.lang.zh.script import AUTHOR_LINE, SERIES_TAG
from rag.types import Article

_AUTHOR_LINE = re.compile(AUTHOR_LINE)
_SERIES_TAG = re.compile(SERIES_TAG)
_MAX_TITLE_BLOCKS = 2
_UNTITLED_CHARS = 24


@dataclass(frozen=True)
class _Span:
    first: int  # first block of the article
    end: int  # one past its last block
    title_blocks: tuple[int, ...]


def block_offsets(blocks: list[Block]) -> list[tuple[int, int]]:
    """Character span of each block in ``"\\n".join(block texts)``."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for block in blocks:
        spans.append((pos, pos + len(block.text)))
        pos += len(block.text) + 1
    return spans


def compose_title(parts: list[str]) -> str:
    """Headline and subtitle as one line; a subtitle starting with a dash joins directly."""
    title = ""
    for part in parts:
        part = part.strip()
        if not part:
            continue
        title = title + part if not title or part.startswith(("—", "-")) else f"{title} {part}"
    return title


def first_sentence_title(text: str) -> str:
    """A stand-in headline: the opening words of the article's first sentence."""
    sentence = re.split(r"[。！？!?；;\n]", text.strip(), maxsplit=1)[0].strip()
    if len(sentence) <= _UNTITLED_CHARS:
        return sentence
    return sentence[:_UNTITLED_CHARS].rstrip("，,、 ") + "…"


def _headline_after(blocks: list[Block], start: int) -> tuple[int, ...]:
    """The headline blocks that directly follow a byline at ``start - 1``."""
    found: list[int] = []
    i = start
    while i < len(blocks) and blocks[i].heading and len(found) < _MAX_TITLE_BLOCKS:
        if _SERIES_TAG.search(blocks[i].text) or blocks[i].new_frame:
            break
        found.append(i)
        i += 1
    return tuple(found)


def _leading_title(blocks: list[Block], span: _Span) -> tuple[int, ...]:
    """The headline blocks a frame opens with (author lines left out), when it opens with one."""
    if not (blocks[span.first].heading and blocks[span.first].new_frame):
        return ()
    found: list[int] = []
    for i in range(span.first, _heading_run(blocks, span.first)):
        if _SERIES_TAG.search(blocks[i].text) or len(found) == _MAX_TITLE_BLOCKS:
            break
        if not (found and _AUTHOR_LINE.match(blocks[i].text)):
            found.append(i)
    return tuple(found)


def _heading_run(blocks: list[Block], start: int) -> int:
    """One past the last heading block of the run starting at ``start``."""
    end = start
    while end < len(blocks) and blocks[end].heading:
        end += 1
    return end


def _spans(blocks: list[Block]) -> list[_Span]:
    spans: list[_Span] = []
    first = 0
    i = 0
    while i < len(blocks):
        block = blocks[i]
        if block.new_frame and i > first:
            spans.append(_Span(first, i, ()))
            first = i
        if is_byline_end(block.text):
            title = _headline_after(blocks, i + 1)
            end = (title[-1] if title else i) + 1
            spans.append(_Span(first, end, title))
            first = i = end
            continue
        if block.heading:
            run_end = _heading_run(blocks, i)
            authored = run_end - i >= 2 and _AUTHOR_LINE.match(blocks[run_end - 1].text)
            if authored and i > first:
                title = tuple(range(i, min(run_end - 1, i + _MAX_TITLE_BLOCKS)))
                spans.append(_Span(first, run_end, title))
                first = run_end
            i = run_end
            continue
        i += 1
    if first < len(blocks):
        spans.append(_Span(first, len(blocks), ()))
    return spans


def _untitled(blocks: list[Block], span: _Span) -> str:
    for i in range(span.first, span.end):
        if not blocks[i].heading:
            return first_sentence_title(blocks[i].text)
    return compose_title([blocks[span.first].text])


def split_articles(blocks: list[Block], fallback_title: str) -> list[Article]:
    """Articles of a document, as spans of its cleaned text with their headlines."""
    if not blocks:
        return []
    offsets = block_offsets(blocks)
    spans = _spans(blocks)
    articles: list[Article] = []
    for span in spans:
        leading = () if span.title_blocks else _leading_title(blocks, span)
        if span.title_blocks or leading:
            title = compose_title([blocks[i].text for i in span.title_blocks or leading])
        elif len(spans) == 1:
            title = blocks[0].text.lstrip("# ").strip() if blocks[0].heading else fallback_title
        else:
            title = _untitled(blocks, span)
        articles.append(Article(title=title, start=offsets[span.first][0], end=offsets[span.end - 1][1]))
    return articles
