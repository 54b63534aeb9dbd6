"""Generated newspaper scans: stories printed into multi-column pages, with what was printed where.

A real scan of the seed page cannot be had here, so this prints one: each article of a
document (or any stories) is set in Debian's fonts-noto-cjk, a serif body in columns under a
bold headline that spans them, laid out in bands of one or two stories, with rules between
them. The page is then aged like a scan: a paper tone, noise, a slight blur, a small skew
and JPEG compression. Every printed line is recorded with its page and box, in reading
order, so that OCR can be scored against it (``text()``) and a citation's box checked
against the line it should point at.

    python -m eval.scans seeds/hunan-daily-page.txt --out scan.pdf [--png page.png]
"""

from __future__ import annotations

import argparse
import io
import math
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from rag.ingest.articles import _AUTHOR_LINE
from rag.ingest.cleaning import is_byline_end, split_blocks
from rag.ingest.loaders import decode_text

Kind = Literal["headline", "subtitle", "subhead", "body", "caption"]
_FONT_DIRS = (Path("/usr/share/fonts/opentype/noto"), Path("/usr/share/fonts"))
# Index of the simplified-Chinese face in Noto's font collections.
_SC = 2
# Kinsoku: these never start a printed line; they stay at the end of the line before.
_NO_LINE_START = set("，。、；：？！）》」』”’…%．,.;:?!)")


class FontsMissing(RuntimeError):
    """fonts-noto-cjk is not installed."""


def font_file(name: str) -> Path:
    """A Noto CJK collection file (NotoSerifCJK-Regular.ttc, NotoSansCJK-Bold.ttc)."""
    for folder in _FONT_DIRS:
        found = next(iter(sorted(folder.rglob(name))), None) if folder.is_dir() else None
        if found is not None:
            return found
    raise FontsMissing(f"{name} not found: install Debian's fonts-noto-cjk (apt-get install fonts-noto-cjk)")


@dataclass(frozen=True)
class Part:
    """A piece of a story's body: a paragraph, a section heading or a photo with its caption."""

    text: str
    kind: Literal["paragraph", "subhead", "photo"] = "paragraph"


@dataclass(frozen=True)
class Story:
    """An article to print: headline (empty: none), subtitle, author line and body."""

    headline: str
    parts: tuple[Part, ...]
    subtitle: str = ""
    kicker: str = ""  # a line printed above the headline (引题)
    author: str = ""


@dataclass(frozen=True)
class PrintedLine:
    """One printed line: its page (1-based), text, box in pixels (x0, y0, x1, y1), story, kind
    and the slope of its baseline on the aged page (radians, y down)."""

    page: int
    text: str
    box: tuple[int, int, int, int]
    story: int
    kind: Kind
    angle: float = 0.0


@dataclass(frozen=True)
class Style:
    """Type sizes (pixels at ``dpi``) and page geometry; ``seed`` picks spans and ageing."""

    dpi: int = 300
    width: int = 2480  # A4 at 300 dpi
    height: int = 3508
    margin: int = 150
    columns: int = 4
    body: int = 30
    headline: float = 2.1  # times the body size
    subtitle: float = 1.35
    subhead: float = 1.2
    caption: float = 0.85
    leading: float = 1.55  # line pitch, times the type size
    skew_degrees: float = 0.25
    noise: float = 6.0
    blur: float = 0.5
    jpeg_quality: int = 80
    seed: int = 7


@dataclass
class Scan:
    """Pages printed from stories, and every line printed on them in reading order."""

    pages: list[Image.Image]
    lines: list[PrintedLine] = field(default_factory=list)

    def text(self, page: int | None = None) -> str:
        """What was printed, in reading order, one line per printed line."""
        return "\n".join(line.text for line in self.lines if page is None or line.page == page)

    def pdf_bytes(self, dpi: int = 300, quality: int = 80) -> bytes:
        """The pages as an image-only PDF (JPEG pages, no text layer): what a scanner writes."""
        out = io.BytesIO()
        first, *rest = [p.convert("RGB") for p in self.pages]
        # Fixed dates: the same pages make the same bytes (and the same content hash).
        stamp = time.gmtime(1_704_067_200)  # 2024-01-01, as Pillow writes a struct_time
        first.save(
            out, "PDF", save_all=True, append_images=rest, resolution=dpi, quality=quality,
            creationDate=stamp, modDate=stamp,
        )  # fmt: skip
        return out.getvalue()

    def image_bytes(self, page: int = 1, fmt: str = "PNG") -> bytes:
        """One page as an image file (PNG, JPEG or TIFF)."""
        out = io.BytesIO()
        self.pages[page - 1].save(out, fmt)
        return out.getvalue()


def check_fonts() -> None:
    """Raise FontsMissing, with how to install them, unless the fonts pages are set in are here."""
    font_file("NotoSerifCJK-Regular.ttc")
    font_file("NotoSansCJK-Bold.ttc")


class _Fonts:
    def __init__(self, style: Style) -> None:
        self.serif = font_file("NotoSerifCJK-Regular.ttc")
        self.sans = font_file("NotoSansCJK-Bold.ttc")
        self.style = style
        self._cache: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}

    def get(self, kind: Kind) -> ImageFont.FreeTypeFont:
        s = self.style
        scale = {"headline": s.headline, "subtitle": s.subtitle, "subhead": s.subhead, "caption": s.caption}
        size = round(s.body * scale.get(kind, 1.0))
        path = self.serif if kind in ("body", "caption") else self.sans
        key = (str(path), size)
        if key not in self._cache:
            self._cache[key] = ImageFont.truetype(str(path), size, index=_SC)
        return self._cache[key]


def _tokens(text: str) -> Iterator[str]:
    """Characters to wrap between: CJK one by one, Latin words and numbers whole."""
    word = ""
    for ch in text:
        if ch.isascii() and (ch.isalnum() or ch in ".%-+/"):
            word += ch
            continue
        if word:
            yield word
            word = ""
        yield ch
    if word:
        yield word


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int, indent: str = "") -> list[str]:
    """Lines of ``text`` that fit ``width`` pixels; punctuation never opens a line."""
    lines: list[str] = []
    line = indent
    for token in _tokens(text):
        candidate = line + token
        if font.getlength(candidate) <= width or not line.strip():
            line = candidate
            continue
        carried = ""
        if token[0] in _NO_LINE_START and len(line.strip()) > 2:
            # Punctuation may not open a line: the character before it goes down with it
            # (as typesetters do), so no line runs into the gutter.
            line, carried = line[:-1], line[-1]
            while line and line[-1] in _NO_LINE_START and len(line.strip()) > 2:
                line, carried = line[:-1], line[-1] + carried
        lines.append(line.rstrip())
        line = (carried + token).lstrip()
    if line.strip():
        lines.append(line.rstrip())
    return lines


@dataclass(frozen=True)
class _Set:
    """A line set in type, before it is placed: text, kind, indent in pixels, pitch."""

    text: str
    kind: Kind
    pitch: int
    centred: bool = False
    photo: int = 0  # the height of a photo printed in place of text


def _set_head(story: Story, fonts: _Fonts, width: int) -> list[_Set]:
    s = fonts.style
    out: list[_Set] = []
    for text, kind in ((story.kicker, "subtitle"), (story.headline, "headline"), (story.subtitle, "subtitle")):
        if text:
            font = fonts.get(kind)  # type: ignore[arg-type]
            pitch = round(font.size * 1.3)
            out += [_Set(t, kind, pitch, centred=True) for t in wrap(text, font, width)]  # type: ignore[arg-type]
    if story.author:
        out.append(_Set(story.author, "body", round(s.body * s.leading), centred=True))
    return out


def _set_body(story: Story, fonts: _Fonts, column: int) -> list[_Set]:
    s = fonts.style
    out: list[_Set] = []
    for part in story.parts:
        if part.kind == "photo":
            out.append(_Set("", "caption", 0, photo=round(column * 0.7)))
            font = fonts.get("caption")
            out += [_Set(t, "caption", round(font.size * s.leading)) for t in wrap(part.text, font, column)]
        elif part.kind == "subhead":
            font = fonts.get("subhead")
            out += [_Set(t, "subhead", round(font.size * s.leading)) for t in wrap(part.text, font, column)]
        else:
            font = fonts.get("body")
            out += [
                _Set(t, "body", round(font.size * s.leading)) for t in wrap(part.text, font, column, "\u3000\u3000")
            ]
    return out


def _height(lines: Sequence[_Set]) -> int:
    return sum(line.pitch + line.photo for line in lines)


def _balance(lines: list[_Set], columns: int) -> list[list[_Set]]:
    """Body lines flowed into ``columns`` columns of about equal height."""
    target = math.ceil(_height(lines) / columns)
    flowed: list[list[_Set]] = [[]]
    for line in lines:
        if flowed[-1] and _height(flowed[-1]) + line.pitch + line.photo > target and len(flowed) < columns:
            flowed.append([])
        flowed[-1].append(line)
    return flowed


@dataclass(frozen=True)
class _Block:
    story: int
    span: int  # grid columns
    head: list[_Set]
    columns: list[list[_Set]]

    @property
    def height(self) -> int:
        head = _height(self.head)
        return head + (head and 20) + max((_height(c) for c in self.columns), default=0)


def _block(n: int, story: Story, span: int, fonts: _Fonts, column: int, gutter: int) -> _Block:
    width = span * column + (span - 1) * gutter
    body = _set_body(story, fonts, column)
    # A photo keeps its caption under it: such a story is not spread over columns.
    columns = 1 if any(line.photo for line in body) else span
    return _Block(n, span, _set_head(story, fonts, width), _balance(body, columns))


def _spans(stories: Sequence[Story], style: Style, rng: random.Random) -> list[list[tuple[int, int]]]:
    """Bands of (story, grid columns): long stories get the page's width, short ones share a band."""
    bands: list[list[tuple[int, int]]] = []
    sizes = [sum(len(p.text) for p in s.parts) for s in stories]
    pending: list[int] = []
    for n, size in enumerate(sizes):
        if size > 1500 or style.columns < 2:
            if pending:
                bands.append([(pending.pop(), style.columns)])
            bands.append([(n, style.columns)])
            continue
        pending.append(n)
        if len(pending) == 2:
            left = rng.randint(1, style.columns - 1) if style.columns > 2 else 1
            bands.append([(pending[0], left), (pending[1], style.columns - left)])
            pending = []
    if pending:
        bands.append([(pending[0], style.columns)])
    return bands


def _draw_line(
    draw: ImageDraw.ImageDraw, fonts: _Fonts, line: _Set, x: int, y: int, width: int
) -> tuple[int, int, int, int]:
    font = fonts.get(line.kind)
    text = line.text
    lead = len(text) - len(text.lstrip("\u3000"))
    x += round(lead * font.size)
    shown = text.lstrip("\u3000")
    length = font.getlength(shown)
    if line.centred:
        x += max(0, round((width - length) / 2))
    top = y + round((line.pitch - font.size) / 2)
    draw.text((x, top), shown, font=font, fill=20)
    left, upper, right, lower = draw.textbbox((x, top), shown, font=font)
    return round(left), round(upper), round(right), round(lower)


def print_pages(stories: Sequence[Story], style: Style = Style()) -> Scan:
    """Print stories into pages (clean, before ageing); lines in reading order."""
    fonts = _Fonts(style)
    rng = random.Random(style.seed)
    gutter = round(style.body * 1.6)
    usable = style.width - 2 * style.margin
    column = (usable - (style.columns - 1) * gutter) // style.columns
    scan = Scan([])
    page: Image.Image | None = None
    draw: ImageDraw.ImageDraw | None = None
    y = 0
    bottom = style.height - style.margin
    band_gap = round(style.body * 1.8)

    def new_page() -> None:
        nonlocal page, draw, y
        page = Image.new("L", (style.width, style.height), 255)
        draw = ImageDraw.Draw(page)
        scan.pages.append(page)
        y = style.margin

    new_page()
    for band in _spans(stories, style, rng):
        blocks = [_block(n, stories[n], span, fonts, column, gutter) for n, span in band]
        height = max(b.height for b in blocks)
        if y + height > bottom and y > style.margin:
            new_page()
        elif y > style.margin:
            assert draw is not None
            draw.line(
                (style.margin, y - band_gap // 2, style.width - style.margin, y - band_gap // 2), fill=90, width=2
            )
        x = style.margin
        for b, block in enumerate(blocks):
            assert draw is not None
            width = block.span * column + (block.span - 1) * gutter
            if b:
                rule_x = x - gutter // 2
                draw.line((rule_x, y, rule_x, y + height), fill=120, width=2)
            top = y
            for line in block.head:
                box = _draw_line(draw, fonts, line, x, top, width)
                scan.lines.append(PrintedLine(len(scan.pages), line.text, box, block.story, line.kind))
                top += line.pitch
            top += 20 if block.head else 0
            for c, lines in enumerate(block.columns):
                cx, cy = x + c * (column + gutter), top
                for line in lines:
                    if cy + line.pitch + line.photo > bottom:  # a story taller than a page goes on
                        new_page()
                        cx, cy = style.margin, style.margin
                        assert draw is not None
                    if line.photo:
                        _photo(draw, cx, cy + 6, column, line.photo - 18, rng)
                        cy += line.photo
                        continue
                    box = _draw_line(draw, fonts, line, cx, cy, column)
                    kind: Kind = "body" if line.kind == "body" else line.kind
                    scan.lines.append(PrintedLine(len(scan.pages), line.text.strip("\u3000"), box, block.story, kind))
                    cy += line.pitch
            x += width + gutter
        y += height + band_gap
    return scan


def _photo(draw: ImageDraw.ImageDraw, x: int, y: int, width: int, height: int, rng: random.Random) -> None:
    """A half-tone stand-in for a news photo: soft bands of grey."""
    for row in range(height):
        shade = 110 + round(60 * math.sin(row / max(1, height) * math.pi * rng.uniform(1.5, 2.5)))
        draw.line((x, y + row, x + width, y + row), fill=max(60, min(200, shade)))


def age(scan: Scan, style: Style = Style()) -> Scan:
    """The pages as a scanner sees them: paper tone, noise, blur, skew, JPEG; boxes follow the skew."""
    rng = random.Random(style.seed)
    import numpy as np

    aged: list[Image.Image] = []
    for page in scan.pages:
        pixels = np.asarray(page, dtype=np.float32)
        pixels = 236 - (255 - pixels) * (216 / 255)  # paper tone, ink not quite black
        noise = np.random.default_rng(style.seed + len(aged)).normal(0, style.noise, pixels.shape)
        image = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "L")
        if style.blur:
            image = image.filter(ImageFilter.GaussianBlur(style.blur))
        image = image.rotate(style.skew_degrees, resample=Image.Resampling.BICUBIC, fillcolor=236)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=style.jpeg_quality)
        aged.append(Image.open(io.BytesIO(out.getvalue())).convert("L"))
        rng.random()
    angle = math.radians(style.skew_degrees)
    cx, cy = style.width / 2, style.height / 2

    def turn(x: float, y: float) -> tuple[float, float]:
        # PIL rotates counter-clockwise about the centre, in image coordinates (y down).
        dx, dy = x - cx, y - cy
        return cx + dx * math.cos(angle) + dy * math.sin(angle), cy - dx * math.sin(angle) + dy * math.cos(angle)

    lines = []
    for line in scan.lines:
        x0, y0, x1, y1 = line.box
        corners = [turn(x, y) for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        box = (round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys)))
        lines.append(PrintedLine(line.page, line.text, box, line.story, line.kind, -angle))
    return Scan(aged, lines)


def scan_stories(stories: Sequence[Story], style: Style = Style()) -> Scan:
    """Stories printed and aged: a generated scan."""
    return age(print_pages(stories, style), style)


def stories_from_text(raw: str) -> list[Story]:
    """The articles of a cleaned page (rag.ingest.cleaning, rag.ingest.articles) as stories to print.

    The seed page's headline blocks follow their article; here each goes on top, as print
    has it: the title's blocks become kicker, headline and subtitle (an author line under
    them), headings inside the body become section headings, and photo captions a photo.
    """
    from rag.ingest.articles import _spans as article_spans

    blocks = split_blocks(raw)
    stories: list[Story] = []
    for span in article_spans(blocks):
        title = [blocks[i].text for i in span.title_blocks]
        inside = [i for i in range(span.first, span.end) if i not in span.title_blocks]
        author = ""
        if inside and span.title_blocks and _AUTHOR_LINE.match(blocks[inside[-1]].text):
            author = blocks[inside.pop()].text
        parts: list[Part] = []
        heading: list[str] = []
        for i in inside:
            block = blocks[i]
            if block.heading and not is_byline_end(block.text):
                heading.append(block.text)
                continue
            if heading:
                parts += _subheads(heading)
                heading = []
            if "供图" in block.text or block.text.startswith("图为") or "。图为" in block.text:
                parts.append(Part(block.text, "photo"))
            else:
                parts.append(Part(block.text))
        if heading:
            parts += _subheads(heading)
        kicker, headline, subtitle = "", "", ""
        if len(title) == 1:
            headline = title[0]
        elif len(title) >= 2 and len(title[0]) < 0.5 * len(title[1]) and not title[1].startswith(("—", "-")):
            kicker, headline = title[0], title[1]  # a short line over the headline: its kicker
        elif len(title) >= 2:
            headline, subtitle = title[0], title[1]
        stories.append(Story(headline, tuple(parts), subtitle, kicker, author))
    return _photos_to_previous(stories)


def _subheads(texts: list[str]) -> list[Part]:
    """Wrapped section heading lines: the first line, then the rest joined (a dashed subtitle)."""
    if not texts:
        return []
    rest = "".join(texts[1:])
    return [Part(texts[0], "subhead")] + ([Part(rest, "subhead")] if rest else [])


def _photos_to_previous(stories: list[Story]) -> list[Story]:
    """A story of captions alone (the seed's last one) prints as a photo with its captions; its
    series tag goes with it."""
    out: list[Story] = []
    for story in stories:
        captions = [p for p in story.parts if p.kind == "photo"]
        if not story.headline and captions and len(captions) >= len(story.parts) - 1:
            text = "".join(p.text for p in story.parts if p.kind == "photo")
            out.append(Story("", (Part(text, "photo"),)))
            continue
        out.append(story)
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m eval.scans``: print a text page as a scan; a missing font is one line, not a traceback."""
    try:
        _print_scan(argv)
    except FontsMissing as exc:
        sys.exit(f"error: {exc}")


def _print_scan(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a text page to print (the seed page)")
    parser.add_argument("--out", type=Path, required=True, help="the scan as an image-only PDF")
    parser.add_argument("--png", type=Path, help="also write its first page as a PNG")
    parser.add_argument("--truth", type=Path, help="also write what was printed, one line per printed line")
    parser.add_argument("--columns", type=int, default=Style.columns)
    args = parser.parse_args(argv)
    style = Style(columns=args.columns)
    scan = scan_stories(stories_from_text(decode_text(args.source.read_bytes(), str(args.source))), style)
    args.out.write_bytes(scan.pdf_bytes(style.dpi, style.jpeg_quality))
    if args.png:
        args.png.write_bytes(scan.image_bytes(1))
    if args.truth:
        args.truth.write_text(scan.text() + "\n", encoding="utf-8")
    print(f"{args.out}: {len(scan.pages)} pages, {len(scan.lines)} printed lines")


if __name__ == "__main__":
    main()
