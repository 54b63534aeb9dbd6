"""Checks on text that comes from outside (questions, earlier turns, uploaded text)."""

from __future__ import annotations

import re

# A lone UTF-16 surrogate (``"\ud800"`` in JSON) is a valid Python string that no encoder,
# tokenizer or file accepts: it must be refused where it arrives, not deep in a model call.
_SURROGATE = re.compile("[\ud800-\udfff]")


def invalid_character(text: str) -> int:
    """The position of the first character that is not encodable text, or -1."""
    found = _SURROGATE.search(text)
    return found.start() if found else -1
