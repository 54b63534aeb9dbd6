"""The settings table of docs/settings.md, generated from ``Settings``: ``python -m rag.settings_doc``
prints it, ``--write`` puts it between the page's markers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rag.config import Settings

BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"
SETTINGS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
_MIB = 2**20


def _default(name: str, value: object) -> str:
    """A default as a reader would set it: empty and unset said in words, paths under home with ~."""
    if value is None:
        return "(unset)"
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        home = Path.home()
        text = f"~/{value.relative_to(home).as_posix()}" if value.is_relative_to(home) else value.as_posix()
        return f"`{text}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, int) and name.endswith("_bytes") and value % _MIB == 0:
        return f"`{value}` ({value // _MIB} MiB)"
    return f"`{value}`"


def _cell(text: str) -> str:
    """A description on one line, with the characters Markdown would read as markup escaped."""
    text = " ".join(text.split())
    for char in "\\|<*":
        text = text.replace(char, "\\" + char)
    return text


def settings_table() -> str:
    """The Markdown table of every setting, in class order: variable, default, meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        value = field.get_default(call_default_factory=True)
        rows.append(f"| `RAG_{name.upper()}` | {_default(name, value)} | {_cell(field.description or '')} |")
    return "\n".join(rows) + "\n"


def settings_block(page: str) -> str:
    """What lies between the markers of ``page`` (the text of docs/settings.md)."""
    start = page.index(BEGIN) + len(BEGIN) + 1
    return page[start : page.index(END, start)]


def with_table(page: str, table: str) -> str:
    """``page`` with the block between its markers replaced by ``table``."""
    start = page.index(BEGIN) + len(BEGIN)
    end = page.index(END, start)
    return f"{page[:start]}\n{table}{page[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table, or with ``--write`` rewrite it in docs/settings.md."""
    parser = argparse.ArgumentParser(prog="python -m rag.settings_doc", description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the table between the page's markers")
    parser.add_argument("--page", type=Path, default=SETTINGS_PAGE, help="the page (default: docs/settings.md)")
    args = parser.parse_args(argv)
    if not args.write:
        sys.stdout.write(settings_table())
        return 0
    page = args.page.read_text(encoding="utf-8")
    if BEGIN not in page or END not in page:
        parser.error(f"{args.page} has no {BEGIN} ... {END} markers")
    args.page.write_text(with_table(page, settings_table()), encoding="utf-8")
    print(f"wrote the settings table to {args.page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
