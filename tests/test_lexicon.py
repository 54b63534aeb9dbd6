from __future__ import annotations

import numpy as np
import pytest

from rag.answer.analysis import read_question
from rag.index.embedding import HashEmbedder, SentenceTransformerEmbedder
from rag.index.lexicon import (
    KeywordTranslator,
    corpus_words,
    empty_lexicon,
    english_words,
    extend_lexicon,
    is_unknown_name,
    pinyin_syllables,
)


def test_corpus_words_are_chinese_words_of_two_or_more_characters() -> None:
    words = corpus_words(["凤凰县为 386 名农民工追回拖欠工资。"])
    assert "农民工" in words and "追回" in words
    assert all(len(w) >= 2 for w in words)
    assert "386" not in words


def test_english_content_words_drop_question_words() -> None:
    assert english_words("How many workers did Fenghuang recover wages for?") == [
        "workers",
        "Fenghuang",
        "recover",
        "wages",
    ]


def test_pinyin_names() -> None:
    assert pinyin_syllables("Fenghuang") == ["feng", "huang"]
    assert pinyin_syllables("Zhuzhou") == ["zhu", "zhou"]
    assert pinyin_syllables("France") is None
    assert is_unknown_name("Huawei")
    assert not is_unknown_name("China")
    assert not is_unknown_name("Party")


def test_lexicon_grows_only_with_new_words(hash_embedder: HashEmbedder) -> None:
    lexicon, added = extend_lexicon(empty_lexicon(64), ["凤凰县追回拖欠工资。"], hash_embedder, 1000)
    assert added == len(lexicon.words) > 0
    again, added_again = extend_lexicon(lexicon, ["凤凰县追回拖欠工资。"], hash_embedder, 1000)
    assert added_again == 0 and again.words == lexicon.words
    capped, _ = extend_lexicon(empty_lexicon(64), ["凤凰县追回拖欠工资。株洲空气质量优良。"], hash_embedder, 2)
    assert len(capped.words) == 2 == len(capped.vectors)


def test_extending_the_lexicon_reports_documents_read_and_words_embedded(
    hash_embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Minutes at 20,000 articles: the stage shows counts, not a silent line."""
    import rag.index.lexicon

    monkeypatch.setattr(rag.index.lexicon, "_WORD_GROUP", 2)
    texts = [f"第{n}篇：凤凰县追回拖欠工资，株洲空气质量优良。" for n in range(250)]
    seen: list[tuple[str, int, int]] = []
    lexicon, added = extend_lexicon(empty_lexicon(64), texts, hash_embedder, 1000, lambda *a: seen.append(a))
    reading = [(done, total) for stage, done, total in seen if stage == rag.index.lexicon.READING_WORDS]
    embedding = [(done, total) for stage, done, total in seen if stage == rag.index.lexicon.EMBEDDING_WORDS]
    assert reading == [(100, 250), (200, 250), (250, 250)]
    assert len(embedding) == (added + 1) // 2 and embedding[-1] == (added, added) and added == len(lexicon.words) > 2


def test_translation_finds_names_by_pinyin_and_words_by_meaning(real_embedder: SentenceTransformerEmbedder) -> None:
    text = "凤凰县为 386 名农民工追回拖欠工资 500 余万元。株洲市空气质量优良天数达到 326 天。"
    lexicon, _ = extend_lexicon(empty_lexicon(real_embedder.dimension), [text], real_embedder, 1000)
    translator = KeywordTranslator(lexicon, real_embedder)
    result = translator.translate(read_question("How many workers did Fenghuang recover wages for?"))
    flat = {w for group in result.groups for w in group}
    assert "凤凰" in flat
    assert "追回" in flat or "工资" in flat
    assert result.unknown_names == ()
    assert translator.translate(read_question("How many employees does Huawei have?")).unknown_names == ("Huawei",)
    assert translator.translate(read_question("凤凰县为多少名农民工追回了拖欠工资？")).groups == ()
    assert np.isclose(np.linalg.norm(lexicon.vectors, axis=1), 1.0, atol=1e-4).all()


@pytest.mark.parametrize("question", ["", "   ", "12345"])
def test_no_english_words_means_no_translation(hash_embedder: HashEmbedder, question: str) -> None:
    lexicon, _ = extend_lexicon(empty_lexicon(64), ["凤凰县追回拖欠工资。"], hash_embedder, 100)
    assert KeywordTranslator(lexicon, hash_embedder).translate(read_question(question)).groups == ()


class _CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__(64)
        self.terms: list[str] = []

    def embed_terms(self, texts: list[str]) -> np.ndarray:  # type: ignore[override]
        self.terms.extend(texts)
        return super().embed_terms(texts)


def test_translations_are_remembered_per_phrase() -> None:
    embedder = _CountingEmbedder()
    lexicon, _ = extend_lexicon(empty_lexicon(64), ["凤凰县追回拖欠工资。株洲空气质量优良。"], embedder, 100)
    translator = KeywordTranslator(lexicon, embedder, min_similarity=-1.0)
    embedder.terms.clear()
    first = translator.translate(read_question("How much wages did workers recover?"))
    assert embedder.terms == ["wages", "workers", "recover", "wages workers", "workers recover"]
    embedder.terms.clear()
    assert translator.translate(read_question("How much wages did workers recover?")) == first
    assert embedder.terms == []
    translator.translate(read_question("Did workers strike?"))
    assert embedder.terms == ["strike", "workers strike"]
    assert all(len(group) == 3 for group in first.groups)
