"""Chinese script: the characters of Chinese text, its character pairs, where its sentences end.

Chinese has no spaces between words, so text is matched by pairs of adjacent characters
(``cjk_bigrams``) and cut into sentences at its full-width stops (``split_sentences``).
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
from itertools import pairwise
from typing import Any

from rag.types import Chunk

# Han characters, the common ones and Extension A: what makes a text Chinese.
HAN = "\u3400-\u9fff"
# The common (unified) ideographs alone, and the compatibility ideographs.
HAN_COMMON = "\u4e00-\u9fff"
HAN_COMPATIBILITY = "\uf900-\ufaff"
# Han characters with the punctuation, kana, bopomofo and full-width forms that sit between
# them in Chinese text: no space belongs between two of these.
CJK_TEXT = (
    "\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\u2018-\u201f\u2014\u2026\u00b7\u2460-\u24ff"
)
IDEOGRAPHIC_SPACE = "\u3000"
# Word's built-in paragraph styles as a Chinese Word names them.
WORD_STYLES = {"title": "标题", "subtitle": "副标题", "heading": "标题"}
# A reporter's byline closing a paragraph (（张弦）); a photo credit (供图) is not one.
BYLINE_END = rf"[（(][{HAN_COMMON}\u00b7 ]{{2,24}}[）)]$"
PHOTO_CREDIT = "供图"
# An author's name on a line of its own (李永亮), and the tag that numbers an article of a
# series (⑥, 之三).
AUTHOR_LINE = rf"^[{HAN_COMMON}]{{2,4}}$"
SERIES_TAG = r"[\u2460-\u2473\u2776-\u277f]$|之[一二三四五六七八九十\d]+$"
_HAN = re.compile(f"[{HAN}]")
_NOT_CJK = re.compile(r"[^\u4e00-\u9fff]")
_NOT_CJK_OR_LATIN = re.compile(r"[^\u4e00-\u9fffA-Za-z0-9]")
# Full-width marks that end a sentence, and those that end a clause.
SENTENCE_MARKS = "。！？；"
CLAUSE_MARKS = "，"
_SENTENCE_END = "。！？!?…；;."
_CLOSERS = "”’」』）)》"


# A sentence with at least this many Han characters, and more than twice as many as Latin
# letters, is Chinese (a Chinese name or two in an English sentence are not).
_CHINESE_SENTENCE_HAN = 6
_LATIN = re.compile(r"[A-Za-z]")


def in_chinese(text: str) -> bool:
    """Is the sentence written in Chinese (not an English one naming a Chinese name or body)?"""
    han = len(_HAN.findall(text))
    return han >= _CHINESE_SENTENCE_HAN and han > 2 * len(_LATIN.findall(text))


def has_han(text: str) -> bool:
    """Does the text hold a Han character (is it, or part of it, Chinese)?"""
    return _HAN.search(text) is not None


def cjk_bigrams(text: str, latin: bool = False) -> set[str]:
    """Pairs of adjacent CJK characters (with ``latin``, letters and digits too): a cheap
    lexical signal for Chinese text, which has no spaces between words."""
    runs = (_NOT_CJK_OR_LATIN if latin else _NOT_CJK).sub(" ", text)
    return {a + b for word in runs.split() for a, b in pairwise(word)}


def ends_sentence(text: str) -> bool:
    """True when text ends with sentence punctuation (closing quotes allowed)."""
    stripped = text.rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in _SENTENCE_END


@functools.cache
def _jionlp() -> Any:
    """JioNLP, imported once, without the banner it prints on import (it would reach a client
    that reads standard output, such as ``rag ask --json``)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import jionlp
    return jionlp


def split_sentences(chunk: Chunk) -> list[tuple[int, int]]:
    """Sentence spans of a chunk, in document offsets (sentences of two or more characters),
    cut by JioNLP's ``split_sentence`` (coarse). A line of the chunk's own headline is not one:
    the title goes with every chunk of its article already, and as evidence it only repeats
    what the question names.

    JioNLP replaced our own sentence pattern after measuring both on the tuning halves
    (``python -m eval.swaps sentences``): CMRC 2018 1,525 -> 1,538 of 2,122 correct, ChronoQA
    1,694 -> 1,695 of 2,568, the seed set unchanged (96 of 108)."""
    spans, at = [], 0
    for piece in _jionlp().split_sentence(chunk.text, criterion="coarse"):
        start = chunk.text.find(piece, at)
        if start < 0:
            continue
        at = start + len(piece)
        body = piece.strip()
        if len(body) >= 2 and not (body in chunk.title and not ends_sentence(body)):
            begin = chunk.start + start + len(piece) - len(piece.lstrip())
            spans.append((begin, begin + len(body)))
    return spans
