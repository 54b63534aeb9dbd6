"""Names in a question (places, organisations, people), and whether a passage names them too.

A passage about Zhuzhou answers "how many good-air days did Changsha have?" with Zhuzhou's
figure: the numbers are in the passage, the place asked about is not. So the names a
question gives must appear in the passage (or its article title) that supports the
answer. Chinese names come from jieba's part-of-speech tags (``ns`` place, ``nt``
organisation, ``nr`` person); an English question's names are the corpus words its
capitalised words spell in pinyin (``rag.lexicon``: Fenghuang -> 凤凰).

A name is found in a text when the text holds it, or holds every word of it with a place
suffix dropped: 凤凰县纪委 is named by a passage titled 凤凰纪委… that says 县纪委.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from rag.lexicon import segmenter
from rag.types import Chunk

NAME_TAGS = frozenset({"ns", "nt", "nr"})
_PLACE_SUFFIXES = frozenset("省市县区镇乡村州")
_CJK = re.compile(r"[\u3400-\u9fff]")


def _tagged(text: str) -> list[tuple[str, str]]:
    import jieba.posseg

    segmenter()
    return [(w.word, w.flag) for w in jieba.posseg.cut(text)]


def chinese_names(text: str) -> list[str]:
    """Places, organisations and people jieba tags in a text, in order, without repeats."""
    if not _CJK.search(text):
        return []
    return list(dict.fromkeys(word for word, flag in _tagged(text) if flag in NAME_TAGS and len(word) >= 2))


def _core(word: str) -> str:
    """A place name without its administrative suffix (长沙市 -> 长沙), other words unchanged."""
    return word[:-1] if len(word) > 2 and word[-1] in _PLACE_SUFFIXES else word


def _parts(name: str) -> list[str]:
    """The words a name is made of, each without a place suffix (凤凰县纪委 -> 凤凰, 纪委)."""
    import jieba

    segmenter()
    return [_core(w) for w in jieba.cut(name) if w.strip()]


def names_in(name: str, text: str) -> bool:
    """Does the text name ``name``: the whole name, its core, or every one of its words?"""
    if name in text or _core(name) in text:
        return True
    parts = _parts(name)
    return len(parts) > 1 and all(part in text for part in parts)


def missing_names(names: Sequence[str], texts: Iterable[str]) -> list[str]:
    """The names none of the texts mention (the texts of one passage: its title and its chunk)."""
    joined = "\n".join(texts)
    return [name for name in names if not names_in(name, joined)]


def missing_in(names: Sequence[str], chunk: Chunk) -> list[str]:
    """The names a passage (its article title and its text) does not mention."""
    return missing_names(names, (chunk.title, chunk.text)) if names else []
