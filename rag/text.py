"""Checks on text that comes from outside (questions, earlier turns, uploaded text), and the
character pairs that Chinese text is matched by."""

from __future__ import annotations

import re
from itertools import pairwise

# A lone UTF-16 surrogate (``"\ud800"`` in JSON) is a valid Python string that no encoder,
# tokenizer or file accepts: it must be refused where it arrives, not deep in a model call.
_SURROGATE = re.compile("[\ud800-\udfff]")


def invalid_character(text: str) -> int:
    """The position of the first character that is not encodable text, or -1."""
    found = _SURROGATE.search(text)
    return found.start() if found else -1


_NOT_CJK = re.compile(r"[^\u4e00-\u9fff]")
_NOT_CJK_OR_LATIN = re.compile(r"[^\u4e00-\u9fffA-Za-z0-9]")


def cjk_bigrams(text: str, latin: bool = False) -> set[str]:
    """Pairs of adjacent CJK characters (with ``latin``, letters and digits too): a cheap
    lexical signal for Chinese text, which has no spaces between words."""
    runs = (_NOT_CJK_OR_LATIN if latin else _NOT_CJK).sub(" ", text)
    return {a + b for word in runs.split() for a, b in pairwise(word)}
