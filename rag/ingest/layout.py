"""Reading order of OCR'd newspaper pages, and a scan's text as blocks with located lines.

An OCR engine returns the printed lines of a page as boxes, in no useful order. A page is
read by cutting it along its white space, recursively (an XY cut):

1. a wide horizontal gap across the whole region (wider than a line of body type: between
   bands of stories, or under a headline) is cut first, top part before bottom part;
2. otherwise the vertical gaps that run through the whole region (the gutters between
   columns) cut it into columns, read left to right;
3. otherwise the narrow horizontal gaps between lines cut a column into its lines.

A headline over several columns bridges their gutters, so it is cut off above them before
they are split; the columns then read in order, and the next story's headline comes after
them. Fragments of one printed line (an engine may split a line at a wide space) are joined.

The lines are then sized against the page's body type (the median line height): a run of
lines clearly larger than the body is a heading, and one that holds a line far larger (a
headline) opens a new text frame, which is how rag.ingest.articles sees a new article. Body lines
go through the same paragraph repair as extracted text (rag.ingest.cleaning.printed_blocks): they
are printed lines, and a short one ends a paragraph. Every printed line keeps its page and
box, located in the cleaned text (``locate``), so a citation can point at it on the page.
"""

from __future__ import annotations

import itertools
import math
import statistics
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rag.ingest.cleaning import Block, has_clause_punctuation, join_lines, normalise_line, printed_blocks
from rag.types import Region, TextBox

# Gaps and sizes, in multiples of the page's body line height.
_BAND_GAP = 0.8  # a horizontal gap this wide separates stories, or a headline from its body
_GUTTER = 0.8  # a vertical gap this wide, through a whole region, separates columns
_LINE_GAP = 0.1  # the gap between two printed lines of a column
_BRIDGE_ROWS = 4  # at most this many lines over (or under) columns may bridge their gutters
_JOIN_GAP = 1.0  # fragments of one line closer than this are one line
_HEADING = 1.14  # a line this much larger than the body is a heading (body lines read 0.96-1.12)
_HEADLINE = 1.6  # a heading run with a line this large is an article's headline
_CLOSING = set("。，、；：！？”’）》」』")
_OPENING = set("“‘（《「『")
_HALF_EMPTY = 1.2  # of such a character's two half-widths, about this much is blank
_SHORT = 10  # a line narrower than five wide characters is sized by its height
_WIDTH_SUSPECT = 1.3  # a line sized this much larger by width than by height lost characters
_STRAIGHT = math.radians(0.05)  # a page skewed less than this is read as it is
_SAME_SIZE = 0.12  # lines of one heading whose sizes differ by less than this share a block


@dataclass(frozen=True)
class Line:
    """A printed line of a scan, in reading order: its text, page, box in pixels and its
    size relative to the page's body type; ``width``/``height`` are the page's size."""

    text: str
    page: int
    box: tuple[float, float, float, float]
    size: float
    width: int
    height: int
    short: bool = False  # a few characters: its size is a rougher guess

    def region(self, start: int, end: int) -> Region:
        """Where this line prints the text ``start``..``end``, as fractions of its page."""
        x0, y0, x1, y1 = self.box
        w, h = max(1, self.width), max(1, self.height)
        box = (max(0.0, x0 / w), max(0.0, y0 / h), min(1.0, x1 / w), min(1.0, y1 / h))
        return Region(start, end, self.page, tuple(round(v, 5) for v in box))  # type: ignore[arg-type]


def _wide(text: str) -> int:
    """Printed width in half-width units; quotation marks and the like are "ambiguous"
    width, which is wide in Chinese type."""
    return sum(1 if unicodedata.east_asian_width(ch) in "NaH" else 2 for ch in text.strip())


def _type_size(box: TextBox) -> float:
    """The type size of a line of at least a few characters: its width per wide character
    (CJK characters are square, digits and Latin letters about half as wide). Box heights
    say less: detectors pad them by about the same few pixels at every size. A box ends at
    the ink, and the ink of 。 or ” fills less than half its square."""
    text = box.text.strip()
    wide = _wide(text) - _HALF_EMPTY * (text[-1:] in _CLOSING) - _HALF_EMPTY * (text[:1] in _OPENING)
    return (box.x1 - box.x0) / (max(1.0, wide) / 2)


@dataclass(frozen=True)
class Scale:
    """A page's body type: its size (pixels a wide character) and its lines' box height."""

    body: float
    box: float

    def size(self, box: TextBox) -> float:
        """A line's type size relative to the body. A line of a few characters says little
        by its width (punctuation, padding), so its box height against the body's decides."""
        # Detectors pad a box by about the same pixels at every size: what the body's boxes
        # are taller than its type is padding.
        tall = (box.height - (self.box - self.body)) / self.body if self.body else 1.0
        if _wide(box.text) < _SHORT:
            return tall
        wide = _type_size(box) / self.body if self.body else 1.0
        # A line OCR read characters short of what was printed (a word in a script it does
        # not know) looks wide for its text: then its height, not its width, says its size.
        return tall if wide > _WIDTH_SUSPECT * tall else wide


def page_scale(boxes: Sequence[TextBox]) -> Scale:
    """The body type of a page: medians over its lines of a few characters or more, each
    line counted once per character (a page has far more body text than headlines)."""
    long = [b for b in boxes if _wide(b.text) >= _SHORT] or list(boxes)
    sizes = [_type_size(b) for b in long for _ in range(len(b.text))]
    heights = [b.height for b in long for _ in range(len(b.text))]
    if not sizes:
        return Scale(0.0, 0.0)
    return Scale(float(statistics.median(sizes)), float(statistics.median(heights)))


def _gaps(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The uncovered stretches between intervals (start, end) of a sorted union."""
    gaps: list[tuple[float, float]] = []
    ordered = sorted(spans)
    reach = ordered[0][1]
    for start, end in ordered[1:]:
        if start > reach:
            gaps.append((reach, start))
        reach = max(reach, end)
    return gaps


def _split_at(boxes: list[TextBox], cuts: list[float], vertical: bool) -> list[list[TextBox]]:
    parts: list[list[TextBox]] = [[] for _ in range(len(cuts) + 1)]
    for box in boxes:
        centre = (box.x0 + box.x1) / 2 if vertical else (box.y0 + box.y1) / 2
        parts[sum(1 for cut in cuts if centre > cut)].append(box)
    return [p for p in parts if p]


def _cut(boxes: list[TextBox], scale: Scale) -> list[list[TextBox]]:
    """The page's boxes in reading order, grouped into printed lines (each left to right)."""
    out: list[list[TextBox]] = []
    stack = [boxes]
    while stack:
        region = stack.pop()
        parts = _cuts(region, scale)
        if parts is None:
            out.append(sorted(region, key=lambda b: b.x0))
        else:
            stack.extend(reversed(parts))
    return out


def _cuts(region: list[TextBox], scale: Scale) -> list[list[TextBox]] | None:
    """One XY cut of a region (None: it is one printed line)."""
    body = scale.body
    if len(region) < 2:
        return None
    rows = _gaps([(b.y0, b.y1) for b in region])
    cuts = [(a + b) / 2 for a, b in rows if b - a >= _LINE_GAP * body]
    gutters = _gutters(region, body)
    wide = [g for g in rows if g[1] - g[0] >= _BAND_GAP * body]
    top = _around(region, cuts[0])[0] if cuts else []
    if cuts and gutters and all(g[0] < cuts[0] for g in wide):
        # Stories side by side, each under its headline: a headline centred (or set left) over
        # its columns need not bridge their gutters, so the gutters between the stories are
        # found from where the headlines stand, and only those are cut first (before the
        # white space under the headlines, which would read them one after the other; bands
        # of stories below are cut apart first).
        if len(top) > 1 and not _within(top, gutters) and all(_heading(b.text, scale.size(b)) for b in top):
            between = _between_stories(top, region, gutters, body)
            if between:
                return _split_at(region, between, vertical=True)
    if wide:
        widest = max(wide, key=lambda g: g[1] - g[0])
        return _split_at(region, [(widest[0] + widest[1]) / 2], vertical=False)
    if cuts:
        # A heading on top of a region heads what is under it: it reads first.
        if _within(top, gutters) and all(_heading(b.text, scale.size(b)) for b in top):
            return _split_at(region, [cuts[0]], vertical=False)
        # So do the lines on top that bridge the gutters of the columns under them (a
        # headline, a centred author line); lines that bridge them from below (a caption)
        # read after them. Not when such lines lie across a gutter of the whole region:
        # then they are the tops of stories side by side.
        for cut in cuts[:_BRIDGE_ROWS]:
            above, below = _around(region, cut)
            if _within(above, gutters) and _bridged(region, below, body):
                return _split_at(region, [cut], vertical=False)
        for cut in reversed(cuts[-_BRIDGE_ROWS:]):
            above, below = _around(region, cut)
            if _within(below, gutters) and _bridged(region, above, body):
                return _split_at(region, [cut], vertical=False)
    if gutters:
        return _split_at(region, gutters, vertical=True)
    if not cuts:
        return _same_line_clusters(region, body)
    return _split_at(region, cuts, vertical=False)


def _around(region: list[TextBox], cut: float) -> tuple[list[TextBox], list[TextBox]]:
    """The boxes above a horizontal cut through a gap between rows, and those below it."""
    above = [b for b in region if (b.y0 + b.y1) / 2 < cut]
    return above, [b for b in region if (b.y0 + b.y1) / 2 > cut]


def _between_stories(heads: list[TextBox], region: list[TextBox], gutters: list[float], body: float) -> list[float]:
    """The gutters that part the stories under a row of headlines: of the ways to give each
    headline a run of the columns (none crossing a gutter it is given), the one where each
    headline is best centred on its columns, or best aligned with their left edge."""
    heads = sorted(heads, key=lambda b: b.x0)
    edges = [min(b.x0 for b in region), *gutters, max(b.x1 for b in region)]
    best: tuple[float, list[float]] | None = None
    for chosen in itertools.combinations(range(1, len(edges) - 1), len(heads) - 1):
        bounds = [0, *chosen, len(edges) - 1]
        cost = 0.0
        for head, (a, b) in zip(heads, itertools.pairwise(bounds), strict=True):
            left, right = edges[a], edges[b]
            if head.x0 < left - body or head.x1 > right + body:
                break  # the headline would reach over a neighbour's columns
            centre = abs((head.x0 + head.x1) / 2 - (left + right) / 2)
            cost += min(centre, abs(head.x0 - left))
        else:
            if best is None or cost < best[0]:
                best = (cost, [edges[n] for n in chosen])
    return best[1] if best else []


def _within(row: list[TextBox], gutters: list[float]) -> bool:
    """Whether a row of boxes lies between two neighbouring gutters (no gutter runs through it)."""
    left, right = min(b.x0 for b in row), max(b.x1 for b in row)
    return not any(left < gutter < right for gutter in gutters)


def _bridged(region: list[TextBox], rest: list[TextBox], body: float) -> bool:
    """Whether ``rest`` (the region but a few lines) has a gutter that those lines bridge."""
    gaps = _gaps([(b.x0, b.x1) for b in region]) if len(region) > 1 else []
    return any(not any(a <= gutter <= b for a, b in gaps) for gutter in _gutters(rest, body))


def _gutters(region: list[TextBox], body: float) -> list[float]:
    """The middles of the vertical gaps that run through the whole region (column gutters)."""
    if len(region) < 2:
        return []
    return [(a + b) / 2 for a, b in _gaps([(b.x0, b.x1) for b in region]) if b - a >= _GUTTER * body]


def _same_line_clusters(region: list[TextBox], body: float) -> list[list[TextBox]] | None:
    """Boxes whose rows overlap (a skewed column, overlapping detections): grouped by the
    centre of each box, top to bottom."""
    ordered = sorted(region, key=lambda b: (b.y0 + b.y1) / 2)
    groups: list[list[TextBox]] = [[ordered[0]]]
    for box in ordered[1:]:
        last = groups[-1][-1]
        if (box.y0 + box.y1) / 2 - (last.y0 + last.y1) / 2 > 0.5 * body:
            groups.append([])
        groups[-1].append(box)
    return groups if len(groups) > 1 else None


def _joined(fragments: list[TextBox]) -> TextBox:
    text = ""
    for box in fragments:
        text = join_lines(text, normalise_line(box.text))
    return TextBox(
        text,
        min(b.x0 for b in fragments),
        min(b.y0 for b in fragments),
        max(b.x1 for b in fragments),
        max(b.y1 for b in fragments),
        min(b.score for b in fragments),
    )


def _same_row(a: TextBox, b: TextBox, body: float) -> bool:
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    return overlap >= 0.5 * min(a.height, b.height) and 0 <= b.x0 - a.x1 <= _JOIN_GAP * body


def page_skew(boxes: Sequence[TextBox]) -> float:
    """The page's skew (radians): the median baseline slope of its long lines."""
    slopes = [b.angle for b in boxes if b.x1 - b.x0 >= 3 * (b.y1 - b.y0)]
    return float(statistics.median(slopes)) if slopes else 0.0


def _deskewed(box: TextBox, skew: float, cx: float, cy: float) -> TextBox:
    """The box as it would lie on the page turned straight: its centre turned back by the
    skew, its size that of the unturned line (solved from its bounds)."""
    a = abs(skew)
    cos, sin = math.cos(a), math.sin(a)
    w, h = box.x1 - box.x0, box.y1 - box.y0
    det = cos * cos - sin * sin
    length = max(1.0, (w * cos - h * sin) / det)
    tall = max(1.0, (h * cos - w * sin) / det)
    x, y = (box.x0 + box.x1) / 2 - cx, (box.y0 + box.y1) / 2 - cy
    c, s = math.cos(-skew), math.sin(-skew)
    x, y = cx + x * c - y * s, cy + x * s + y * c
    return replace(box, x0=x - length / 2, y0=y - tall / 2, x1=x + length / 2, y1=y + tall / 2, angle=0.0)


def page_lines(boxes: Sequence[TextBox], page: int, width: int, height: int) -> list[Line]:
    """A page's OCR boxes as printed lines in reading order. A skewed page is read as if
    turned straight (rows and gutters stay straight); the lines keep their boxes on the page."""
    usable = [b for b in boxes if b.text.strip() and b.x1 > b.x0 and b.y1 > b.y0]
    if not usable:
        return []
    skew = page_skew(usable)
    straight = [_deskewed(b, skew, width / 2, height / 2) for b in usable] if abs(skew) > _STRAIGHT else usable
    on_page = {id(s): b for s, b in zip(straight, usable, strict=True)}
    scale = page_scale(straight)
    body = scale.body
    merged: list[tuple[TextBox, TextBox]] = []  # (straightened, as printed)
    for group in _cut(straight, scale):
        line = (_joined(group), _joined([on_page[id(b)] for b in group]))
        if merged and _same_row(merged[-1][0], line[0], body):
            last = merged.pop()
            line = (_joined([last[0], line[0]]), _joined([last[1], line[1]]))
        merged.append(line)
    return [
        Line(b.text, page, (b.x0, b.y0, b.x1, b.y1), scale.size(s), width, height, _wide(b.text) < _SHORT)
        for s, b in merged
        if b.text
    ]


def _heading(text: str, size: float) -> bool:
    """Whether a line is a heading: far larger than the body (a headline), or larger and
    without the clause punctuation of running text (a subtitle, a section heading). A line
    OCR read a few characters short of what was printed looks larger than it is."""
    return size >= _HEADLINE or (size >= _HEADING and not has_clause_punctuation(text))


def _runs(lines: Sequence[Line]) -> list[tuple[bool, list[Line]]]:
    """Consecutive lines of one kind, headings (True) or body (captions read as body: small
    type is too close to body type to tell apart by size)."""

    def kind(line: Line) -> int:
        return 1 if _heading(line.text, line.size) else 0

    kinds = [kind(line) for line in lines]
    # A line of a few characters (a paragraph's last, 次。) between lines of one kind is of
    # that kind: its size is a rough guess. Elsewhere (an author line under a headline) it
    # stands by its own size.
    sure = [n for n, line in enumerate(lines) if not line.short]
    for n, line in enumerate(lines):
        if line.short and line.size < _HEADLINE:
            before = next((kinds[m] for m in reversed(sure) if m < n), None)
            after = next((kinds[m] for m in sure if m > n), None)
            if before is not None and before == after:
                kinds[n] = before
    runs: list[tuple[bool, list[Line]]] = []
    for n, line in enumerate(lines):
        if runs and kinds[n] == kinds[n - 1]:
            runs[-1][1].append(line)
        else:
            runs.append((kinds[n] == 1, [line]))
    return runs


def scan_blocks(lines: Sequence[Line]) -> list[Block]:
    """The blocks (rag.ingest.cleaning) of a scan's lines in reading order: headings by type size,
    a headline run opening a text frame, body paragraphs rebuilt from the printed lines."""
    blocks: list[Block] = []
    for heading, run in _runs(lines):
        first = not blocks
        if not heading:
            blocks.extend(printed_blocks([(line.text, False) for line in run], first))
            continue
        frame = first or max(line.size for line in run) >= _HEADLINE
        text, size = "", 0.0
        for line in run:
            if text and not line.short and abs(line.size - size) > _SAME_SIZE * max(line.size, size):
                blocks.append(Block(text, frame, heading=True))
                text, frame = "", False
            text, size = join_lines(text, normalise_line(line.text)), line.size
        if text:
            blocks.append(Block(text, frame, heading=True))
    return blocks


def locate(text: str, lines: Sequence[Line], start: int = 0) -> tuple[Region, ...]:
    """Where each line's characters landed in the cleaned ``text``, whose part from ``start``
    on was built from the lines in this order: one region per line that kept any character."""
    regions: list[Region] = []
    at = start
    for line in lines:
        first = last = -1
        for ch in normalise_line(line.text):
            if ch.isspace():
                continue
            probe = at
            while probe < len(text) and text[probe].isspace():
                probe += 1
            if probe < len(text) and text[probe] == ch:
                first = probe if first < 0 else first
                last, at = probe, probe + 1
            # else: the cleaning dropped this character (a hyphen at a line's end)
        if first >= 0:
            regions.append(line.region(first, last + 1))
    return tuple(regions)
