"""Names in a question (places, organisations, people), and whether a passage names them too.

A passage about Zhuzhou answers "how many good-air days did Changsha have?" with Zhuzhou's
figure: the numbers are in the passage, the place asked about is not. So the names a
question gives must appear in the passage (or its article title) that supports the
answer. An English question's names are the corpus words its capitalised words spell in
pinyin (``rag.index.lexicon``: Fenghuang -> 凤凰). Chinese names come from jieba's
part-of-speech tags, which are noisy, so only these count (``name_candidates``, ``bound_names``):

- places and organisations (``ns``, ``nt``) that jieba's dictionary knows, or that a
  retrieved passage contains (a name jieba made up from characters it could not place,
  such as 初华堡 out of 1990年代初华堡, is not one);
- people (``nr``) that jieba's dictionary knows well (frequency 10 or more) and that a
  retrieved passage contains: its guesses at unknown names cut real ones apart (沈元龙 ->
  沈, 元龙), and its dictionary tags many common words as people (荣誉, 文明);
- not generic words the dictionary mis-tags (城市, 东西, 籍贯, 长度), nor China itself,
  which Chinese news rarely names (中国外交部 is looked for as 外交部);
- only the names of the main clause: in "X举行当天，Y是什么？" X only dates the question;
  and none for a question comparing events ("A、B哪个更早"), which no one passage covers.

Measured on CMRC 2018 and on questions made from it by swapping a place for another, see
the README ("Entity binding").

A name is found in a text when the text holds it, or holds every word of it with a place
suffix dropped: 凤凰县纪委 is named by a passage titled 凤凰纪委… that says 县纪委.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rag.lang.tables import pattern, words
from rag.lang.zh.script import has_han
from rag.lang.zh.segment import segmenter
from rag.types import Chunk, NameCandidate

NAME_TAGS = frozenset({"ns", "nt", "nr"})
_PLACE_SUFFIXES = frozenset(words("zh", "place_suffixes"))
_REGION_SUFFIX = words("zh", "region_suffix")[0]  # 香港地区 is named by 香港
# jieba's dictionary frequency a person's name needs to be trusted as one.
_MIN_PERSON_FREQUENCY = 10
# Chinese news rarely says the country it is about: 外交部 is China's.
_IMPLICIT = frozenset(words("zh", "implicit_country"))
_IMPLICIT_PREFIXES = words("zh", "implicit_country_prefixes")
# "X举行当天，Y是什么？": the names before the comma date the question, the answer is about Y.
_ANCHOR_CLAUSE = pattern("zh", "anchor_clause")
# "A、B、C哪个最早发生？" asks about several events, which no one passage names together.
_COMPARISON = pattern("zh", "compares_events")
# Generic words jieba's dictionary tags as places or people.
_GENERIC = frozenset(words("zh", "generic_names"))


def _tagged(text: str) -> list[tuple[str, str]]:
    import jieba.posseg

    segmenter()
    return [(w.word, w.flag) for w in jieba.posseg.cut(text)]


def chinese_names(text: str) -> list[str]:
    """Places, organisations and people jieba tags in a text, in order, without repeats."""
    if not has_han(text):
        return []
    return list(dict.fromkeys(word for word, flag in _tagged(text) if flag in NAME_TAGS and len(word) >= 2))


def name_candidates(question: str) -> tuple[NameCandidate, ...]:
    """The places, organisations and people a Chinese question's main clause names, as jieba
    tags them, with how well its dictionary knows each (read by the question analysis once)."""
    if not has_han(question) or _COMPARISON.search(question):
        return ()
    import jieba

    segmenter()
    frequency = jieba.dt.FREQ
    found = []
    for word, flag in _tagged(_ANCHOR_CLAUSE.split(question)[-1]):
        name = _as_name(word)
        if flag in NAME_TAGS and name:
            found.append(NameCandidate(name, flag, frequency.get(name) or 0))
    return tuple(found)


def bound_names(candidates: Sequence[NameCandidate], passages: Sequence[str]) -> tuple[str, ...]:
    """The names an answer must be bound to (see the module doc): of the question's candidates,
    places and organisations the dictionary knows or a retrieved passage contains, and people the
    dictionary knows well that a retrieved passage contains; ``passages`` are their texts."""
    names = []
    for candidate in candidates:
        known = candidate.known >= _MIN_PERSON_FREQUENCY if candidate.tag == "nr" else candidate.known > 0
        seen = any(names_in(candidate.word, text) for text in passages)
        if (known and seen) if candidate.tag == "nr" else (known or seen):
            names.append(candidate.word)
    return tuple(dict.fromkeys(names))


def _as_name(word: str) -> str:
    """The word as a name to look for ('' when it is none): 香港地区 -> 香港, 中国外交部 -> 外交部."""
    for prefix in _IMPLICIT_PREFIXES:
        if word.startswith(prefix) and len(word) > len(prefix):
            word = word[len(prefix) :]
            break
    if word.endswith(_REGION_SUFFIX) and len(word) > len(_REGION_SUFFIX) + 1:
        word = word[: -len(_REGION_SUFFIX)]
    return "" if len(word) < 2 or word in _GENERIC or word in _IMPLICIT else word


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
