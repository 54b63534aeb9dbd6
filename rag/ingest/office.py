"""Word documents (.docx, python-docx): paragraphs, headings as titles, tables as text.

Body paragraphs become blocks in document order, tables among them (each row one line,
its cells joined by `` | ``, each cell under a header row with its column's heading:
``候车亭 | 数量：126 座``; a merged cell is written once). Paragraphs styled Title or
Heading N are headings; those of the top level the document uses open a new text frame,
so a file holding several articles, each under its own top heading, splits into them and
each takes its heading as its title (rag.ingest.articles). Headers and footers are page furniture
and are left out. Documents without heading styles are one article, titled by the
document's Title property or its file name.
"""

from __future__ import annotations

import io
import re
import zipfile

from rag.errors import LoaderError
from rag.ingest.cleaning import Block, normalise_line
from rag.lang.zh.script import WORD_STYLES

_HEADING = re.compile(rf"^(?:Heading|{WORD_STYLES['heading']})\s*(\d)$", re.I)


def _level(style_name: str) -> int | None:
    """0 for Title, N for Heading N (English or Chinese style names), None for body text."""
    if style_name.lower() in ("title", WORD_STYLES["title"]):
        return 0
    if style_name.lower() in ("subtitle", WORD_STYLES["subtitle"]):
        return 1
    found = _HEADING.match(style_name.strip())
    return int(found.group(1)) if found else None


def _check_archive(data: bytes, name: str, max_unpacked: int) -> None:
    """A .docx is a zip: refuse one that is not, or that unpacks to more than ``max_unpacked``."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise LoaderError(f"{name}: not a Word .docx file (not a zip archive); is it damaged, or an old .doc?") from exc
    if "word/document.xml" not in names:
        raise LoaderError(f"{name}: not a Word .docx file (no word/document.xml); is it damaged?")
    if unpacked > max_unpacked:
        raise LoaderError(f"{name}: unpacks to {unpacked:,} bytes, over {max_unpacked:,}; is it a zip bomb?")


def read_docx(data: bytes, name: str, max_unpacked: int) -> tuple[list[Block], str]:
    """A .docx file's blocks, and its Title property ("" when it has none)."""
    _check_archive(data, name, max_unpacked)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        items: list[tuple[str, int | None]] = []
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                items.extend((row, None) for row in _rows(item))
                continue
            text = normalise_line(item.text)
            style = item.style.name if item.style is not None and item.style.name else ""
            if text:
                items.append((text, _level(style)))
        title = normalise_line(document.core_properties.title or "")
    except (KeyError, ValueError, AttributeError, zipfile.BadZipFile) as exc:
        raise LoaderError(f"{name}: cannot read this Word file ({exc.__class__.__name__}); is it damaged?") from exc
    except Exception as exc:  # lxml's XMLSyntaxError and python-docx's own errors share no base
        if exc.__class__.__module__.startswith(("lxml", "docx")):
            raise LoaderError(f"{name}: cannot read this Word file ({exc.__class__.__name__}); is it damaged?") from exc
        raise
    levels = [level for _, level in items if level is not None]
    top = min(levels, default=None)
    blocks = [
        Block(text, n == 0 or (level is not None and level == top), heading=level is not None)
        for n, (text, level) in enumerate(items)
    ]
    return blocks, title


def _rows(table: object) -> list[str]:
    """The table's rows as lines. A table of two rows or more whose first row is a header
    (text in two columns or more) writes every later cell after the first column with its
    column's heading (地区 | 增速：6.4%), so a figure is read, found and cited by its row and
    column; the header row is kept as it is."""
    from docx.table import Table

    assert isinstance(table, Table)
    grid = [_cells(row) for row in table.rows]
    header = grid[0] if len(grid) >= 2 else []
    headed = sum(1 for _, text in header if text) >= 2
    rows = []
    for n, cells in enumerate(grid):
        names = dict(header) if headed and n > 0 else {}
        parts = [
            f"{names[column]}：{text}" if column > 0 and names.get(column) and names[column] != text else text
            for column, text in cells
            if text
        ]
        if parts:
            rows.append(" | ".join(parts))
    return rows


def _cells(row: object) -> list[tuple[int, str]]:
    """(column, text) of a row's cells; a merged cell repeats in every column it spans and is
    taken once, at its first column."""
    cells: list[tuple[int, str]] = []
    seen: list[object] = []
    for column, cell in enumerate(row.cells):  # type: ignore[attr-defined]
        if any(cell._tc is other for other in seen):
            continue
        seen.append(cell._tc)
        cells.append((column, normalise_line(" ".join(p.text for p in cell.paragraphs))))
    return cells
