"""Checks on text that comes from outside (questions, earlier turns, uploaded text, names and ids)."""

from __future__ import annotations

import re

# A lone UTF-16 surrogate (``"\ud800"`` in JSON) is a valid Python string that no encoder,
# tokenizer or file accepts: it must be refused where it arrives, not deep in a model call.
_SURROGATE = re.compile("[\ud800-\udfff]")


def invalid_character(text: str) -> int:
    """The position of the first character that is not encodable text, or -1."""
    found = _SURROGATE.search(text)
    return found.start() if found else -1


# What must not be in a name or an id: control characters (C0, DEL, C1), the bidirectional
# overrides and isolates that make a name read otherwise than it is (``txt.exe`` shown as
# ``exe.txt``), and zero-width characters that make two names look the same.
_UNSAFE_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")


def unsafe_in_name(text: str) -> int:
    """The position of the first character a name or id may not hold, or -1."""
    found = _UNSAFE_IN_NAMES.search(text)
    return found.start() if found else -1


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``), for one log line."""
    return _CONTROL_CHARACTER.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
