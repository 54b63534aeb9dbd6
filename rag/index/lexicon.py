"""Cross-lingual keywords: the Chinese words of the corpus that an English question means.

multilingual-e5-small places an English question and a Chinese passage close, but
not close enough to tell apart two Chinese sentences about the same story (``57 名农民工``
versus ``为 386 名农民工追回拖欠工资``). We bridge the gap with a lexicon built from the
corpus itself: every Chinese word of the indexed documents (jieba, accurate mode) is
embedded once at index time. At question time each English content word is embedded
and mapped to its nearest corpus words; capitalised names are matched by pinyin
(``Fenghuang`` -> ``凤凰``). The Chinese keywords are appended to the question before
retrieval and count as shared words when the extractive answer picks its sentence.

A capitalised word that reads as pinyin but names nothing in the corpus (``Huawei``)
marks a question about something the documents never mention.
"""

from __future__ import annotations

import functools
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from rag.index.embedding import Embedder, Vectors
from rag.lang.en.words import STOPWORDS
from rag.lang.tables import words
from rag.lang.zh.script import HAN_COMMON
from rag.lang.zh.segment import segmenter
from rag.types import QuestionInfo

_CJK_WORD = re.compile(rf"[{HAN_COMMON}]{{2,6}}")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
# A word and a corpus word must be at least this similar to count as a translation.
_MIN_SIMILARITY = 0.87
_PLACE_SUFFIXES = frozenset(words("zh", "place_suffixes"))
# Candidate translations kept per English word or phrase.
_TRANSLATIONS = 3
# English words and phrases whose translations a translator remembers.
_PHRASE_CACHE = 20_000
_MAX_SYLLABLES = 5
# English names that happen to read as pinyin ("chi-na"), never a romanised Chinese name.
_ENGLISH_NAMES = frozenset({"china", "asia", "ma", "anna", "diana", "tina", "nina", "lena", "hanna", "ana"})


@dataclass(frozen=True)
class Lexicon:
    """The corpus's Chinese words and their embeddings, row-aligned."""

    words: tuple[str, ...]
    vectors: Vectors


def empty_lexicon(dimension: int) -> Lexicon:
    """A lexicon with no words."""
    return Lexicon((), np.zeros((0, dimension), dtype=np.float32))


def corpus_words(texts: Iterable[str]) -> Counter[str]:
    """Chinese words (two to six characters) of the texts, with their counts."""
    jieba = segmenter()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w in jieba.cut(text) if _CJK_WORD.fullmatch(w))  # type: ignore[attr-defined]
    return counts


READING_WORDS = "reading new words for the lexicon"
EMBEDDING_WORDS = "embedding new words for the lexicon"
_WORD_GROUP = 1024  # words embedded between two progress reports


def extend_lexicon(
    old: Lexicon,
    texts: Sequence[str],
    embedder: Embedder,
    max_words: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Lexicon, int]:
    """Add the new words of ``texts`` (most frequent first, up to ``max_words`` in all).

    Returns the lexicon and how many words were embedded. Words of deleted documents
    stay: a stale word can only suggest a keyword that then matches nothing. ``progress``
    hears the documents read and the words embedded (minutes at 20,000 articles).
    """
    room = max_words - len(old.words)
    if room <= 0 or not texts:
        return old, 0
    known = set(old.words)
    counts: Counter[str] = Counter()
    for start in range(0, len(texts), 100):
        counts.update(corpus_words(texts[start : start + 100]))
        if progress is not None:
            progress(READING_WORDS, min(start + 100, len(texts)), len(texts))
    new = [w for w, _ in counts.most_common() if w not in known][:room]
    if not new:
        return old, 0
    parts = []
    for start in range(0, len(new), _WORD_GROUP):
        parts.append(embedder.embed_terms(new[start : start + _WORD_GROUP]))
        if progress is not None:
            progress(EMBEDDING_WORDS, min(start + _WORD_GROUP, len(new)), len(new))
    vectors = np.vstack(parts)
    return Lexicon(old.words + tuple(new), np.vstack([old.vectors, vectors]).astype(np.float32)), len(new)


def english_words(question: str) -> list[str]:
    """The content words of a question's Latin-script part, in order."""
    return [w for w in _LATIN_WORD.findall(question) if w.lower() not in STOPWORDS and len(w) > 1]


@functools.cache
def _syllables() -> frozenset[str]:
    from pypinyin import lazy_pinyin

    chars = "".join(chr(cp) for cp in range(0x4E00, 0x9FA6))
    return frozenset(s for s in lazy_pinyin(chars) if s.isascii() and s.isalpha())


def pinyin_syllables(word: str) -> list[str] | None:
    """Split a romanised name into pinyin syllables, or None if it is not pinyin."""
    word = word.lower().replace("-", "").replace("'", "")
    syllables = _syllables()
    best: list[list[str] | None] = [None] * (len(word) + 1)
    best[0] = []
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - 6), end):
            prefix = best[start]
            if (
                prefix is not None
                and word[start:end] in syllables
                and (best[end] is None or len(prefix) + 1 < len(best[end] or []))
            ):
                best[end] = [*prefix, word[start:end]]
    found = best[len(word)]
    return found if found and len(found) <= _MAX_SYLLABLES else None


class KeywordTranslator:
    """Maps an English question to Chinese keywords of the corpus."""

    def __init__(self, lexicon: Lexicon, embedder: Embedder, min_similarity: float = _MIN_SIMILARITY) -> None:
        self._lexicon = lexicon
        self._embedder = embedder
        self._min_similarity = min_similarity
        # English word or phrase -> its corpus words. The lexicon is fixed for this
        # translator, so a phrase always maps the same way; questions reuse most words.
        self._groups: dict[str, tuple[str, ...]] = {}
        self._groups_lock = threading.Lock()

    def _translate_phrases(self, phrases: list[str]) -> list[tuple[str, ...]]:
        """The corpus words each phrase may mean (best first), embedding only phrases not seen before."""
        known = {p: g for p in phrases if (g := self._groups.get(p)) is not None}
        new = [p for p in dict.fromkeys(phrases) if p not in known]
        if new:
            sims = self._embedder.embed_terms(new) @ self._lexicon.vectors.T
            count = min(_TRANSLATIONS, sims.shape[1])
            for phrase, row in zip(new, sims, strict=True):
                top = np.argpartition(-row, count - 1)[:count]
                best = top[np.argsort(-row[top], kind="stable")]
                known[phrase] = tuple(self._lexicon.words[int(i)] for i in best if row[i] >= self._min_similarity)
            with self._groups_lock:
                for phrase in new:
                    if len(self._groups) >= _PHRASE_CACHE:
                        self._groups.pop(next(iter(self._groups)))
                    self._groups[phrase] = known[phrase]
        return [known[p] for p in phrases]

    @functools.cached_property
    def _by_pinyin(self) -> dict[str, str]:
        from pypinyin import lazy_pinyin

        table: dict[str, str] = {}
        for word in self._lexicon.words:  # most frequent first: keep the commonest reading
            table.setdefault("".join(lazy_pinyin(word)), word)
            if len(word) > 2 and word[-1] in _PLACE_SUFFIXES:
                # "Fenghuang" names 凤凰县 as well as 凤凰.
                table.setdefault("".join(lazy_pinyin(word[:-1])), word[:-1])
        return table

    def warm_up(self) -> None:
        """Build the pinyin tables and load jieba now rather than on the first question."""
        _ = self._by_pinyin
        _syllables()

    def _name(self, word: str) -> str | None:
        """The corpus word a capitalised name spells in pinyin, if any."""
        if not word[0].isupper():
            return None
        return self._by_pinyin.get(word.lower().replace("-", "").replace("'", ""))

    def translate(self, info: QuestionInfo) -> Translation:
        """Chinese keyword groups for the question's English words, and names the corpus lacks."""
        words = info.english_words
        if not words or not self._lexicon.words or info.language == "zh":
            # A Chinese question needs no translation; its Latin terms are checked as they are.
            return Translation((), ())
        names = {w: self._name(w) for w in words}
        spelled = tuple(dict.fromkeys(name for name in names.values() if name))
        groups: list[tuple[str, ...]] = [(name,) for name in spelled]
        unknown = tuple(w for w, name in names.items() if name is None and is_unknown_name(w))
        plain = [w.lower() for w, name in names.items() if name is None]
        phrases = plain + [f"{a} {b}" for a, b in pairwise(plain)]
        groups.extend(group for group in self._translate_phrases(phrases) if group)
        return Translation(tuple(groups), unknown, spelled)


@dataclass(frozen=True)
class Translation:
    """What an English question means in the corpus's Chinese words.

    ``groups`` hold the candidate Chinese words of one English word or phrase each
    (a name spelled in pinyin is a group of one); ``unknown_names`` are pinyin names
    that nothing in the corpus spells; ``names`` the corpus words its names spell.
    """

    groups: tuple[tuple[str, ...], ...]
    unknown_names: tuple[str, ...]
    names: tuple[str, ...] = ()

    def query_terms(self) -> tuple[str, ...]:
        """The best word of each group, to append to the question before retrieval."""
        return tuple(dict.fromkeys(group[0] for group in self.groups))


def is_unknown_name(word: str) -> bool:
    """A capitalised word of two or more pinyin syllables: a Chinese name (not an English one)."""
    if not word[:1].isupper() or word.lower() in _ENGLISH_NAMES:
        return False
    syllables = pinyin_syllables(word)
    return syllables is not None and len(syllables) >= 2
