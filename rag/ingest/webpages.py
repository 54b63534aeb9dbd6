"""News web pages: the article's own text, headline and publication day (trafilatura).

A saved news page is mostly menus, breadcrumbs, related-links boxes, comments and footers.
trafilatura (Apache-2.0) finds the main text; its headline becomes the document's title
and its publication day comes from the page's metadata (htmldate over ``<meta>``, JSON-LD
and ``<time>``, not dates in the text). A page it finds no article in (a bare fragment,
a link list) is read whole, as before: every visible text, scripts and styles dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rag.ingest.cleaning import Block, normalise_line, split_blocks
from rag.lang.zh.dates import iso_day

_log = logging.getLogger(__name__)
_TEXT_TAGS = {"p", "quote", "head", "item", "row", "code"}
# trafilatura falls back to a cruder reading (paragraphs run together) below 250 characters
# of main text, an English measure: Chinese says as much in far fewer, and a news brief of a
# few sentences should keep its paragraphs.
_MIN_ARTICLE_CHARS = "50"


@dataclass(frozen=True)
class WebPage:
    """What a page holds: its text as blocks, and its publication day ("" when it has none)."""

    blocks: tuple[Block, ...]
    published: str = ""


def _cells(row: object) -> str:
    texts = [normalise_line(" ".join(cell.itertext())) for cell in row.iterfind("cell")]  # type: ignore[attr-defined]
    return " | ".join(t for t in texts if t)


def _main_text(html: str) -> WebPage | None:
    import trafilatura
    from trafilatura.settings import use_config

    config = use_config()
    config.set("DEFAULT", "MIN_EXTRACTED_SIZE", _MIN_ARTICLE_CHARS)
    try:
        found = trafilatura.bare_extraction(
            html,
            config=config,
            with_metadata=True,
            include_comments=False,
            include_tables=True,
            include_images=False,
            date_extraction_params={"extensive_search": False, "original_date": True},
        )
    except Exception as exc:  # a third-party parser on arbitrary input: any error is its own
        _log.warning("trafilatura could not read a page (%s); reading all of its text", exc.__class__.__name__)
        return None
    if found is None or isinstance(found, dict) or found.body is None:
        return None
    title = normalise_line(found.title or "")
    blocks: list[Block] = [Block(title, True, heading=True)] if title else []
    for element in found.body.iter():
        tag = element.tag
        if tag not in _TEXT_TAGS or any(parent.tag in _TEXT_TAGS for parent in element.iterancestors()):
            continue  # a paragraph inside a quote or a table row is read with it
        text = _cells(element) if tag == "row" else normalise_line(" ".join(element.itertext()))
        if not text or (tag == "head" and text == title):
            continue
        blocks.append(Block(text, not blocks, heading=tag == "head"))
    if not any(not b.heading for b in blocks):
        return None
    day = iso_day(found.date or "")
    return WebPage(tuple(blocks), day.isoformat() if day else "")


def _all_text(html: str) -> WebPage:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    body = soup.get_text("\n\n", strip=True)
    return WebPage(tuple(split_blocks(f"{title}\n\n{body}" if title else body)))


def read_page(html: str) -> WebPage:
    """A page's article (headline, paragraphs, section headings, tables as rows of cells), or
    all of its text when no article is found in it."""
    return _main_text(html) or _all_text(html)
