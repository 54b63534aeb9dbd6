"""Language rules as data: each language package's ``rules.toml`` holds named tables, read by
this one loader.

A table lists ``alternatives`` (``kind = "words"``: literal words; ``kind = "patterns"``:
pieces of regular expressions), says what it is for (``doc``) and gives ``examples`` it must
match, which the tests run (``tests/test_language_rules.py``). ``pattern`` joins a table's
alternatives into one regular expression; a ``{name}`` inside a piece stands for text the
caller supplies (the units of figures inside the question words, say).
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Table:
    """One named table of a language."""

    name: str
    doc: str
    kind: str  # "words" or "patterns"
    alternatives: tuple[str, ...]
    examples: tuple[str, ...] = ()

    def pieces(self) -> tuple[str, ...]:
        """The alternatives as pieces of a regular expression (words escaped)."""
        return tuple(re.escape(a) for a in self.alternatives) if self.kind == "words" else self.alternatives


@functools.cache
def tables(language: str) -> dict[str, Table]:
    """Every table of a language (``rag/lang/<language>/rules.toml``)."""
    text = resources.files("rag.lang").joinpath(language, "rules.toml").read_text(encoding="utf-8")
    found = {}
    for name, raw in tomllib.loads(text).items():
        kind = raw.get("kind", "patterns")
        if kind not in ("words", "patterns"):
            raise ValueError(f"rag/lang/{language}/rules.toml [{name}]: kind must be words or patterns, not {kind!r}")
        found[name] = Table(name, raw.get("doc", ""), kind, tuple(raw["alternatives"]), tuple(raw.get("examples", ())))
    return found


def table(language: str, name: str) -> Table:
    """One table of a language."""
    return tables(language)[name]


def words(language: str, name: str) -> tuple[str, ...]:
    """A table's alternatives as they are written."""
    return table(language, name).alternatives


def alternation(language: str, name: str, **fill: str) -> str:
    """A table's pieces joined with ``|``, each ``{key}`` replaced by ``fill[key]``."""
    joined = "|".join(table(language, name).pieces())
    for key, value in fill.items():
        joined = joined.replace("{" + key + "}", value)
    return joined


def pattern(language: str, name: str, flags: int = 0, **fill: str) -> re.Pattern[str]:
    """A table compiled into one regular expression (see ``alternation``)."""
    return re.compile(alternation(language, name, **fill), flags)


def patterns(language: str, name: str, flags: int = 0, **fill: str) -> tuple[re.Pattern[str], ...]:
    """A table's pieces compiled one by one, for tables whose pieces name the same groups
    (``(?P<a>…)`` in each), which one expression cannot hold."""
    compiled = []
    for piece in table(language, name).pieces():
        for key, value in fill.items():
            piece = piece.replace("{" + key + "}", value)
        compiled.append(re.compile(piece, flags))
    return tuple(compiled)
