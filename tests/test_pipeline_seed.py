"""End to end on the seed page with the real embedded model and the extractive generator."""

from __future__ import annotations

import re

import pytest

from rag.answer.generators import Generators
from rag.answer.retrieval import Pipeline
from rag.answer.stream import Answerer, Query
from rag.config import Settings
from rag.errors import IndexMismatch, InvalidQuestion
from rag.library import index_paths
from rag.service import open_pipeline
from rag.types import Answer
from tests.conftest import SEED

FENGHUANG = "凤凰纪委为农民工解“薪”愁"


def _ask(pipeline: Pipeline, question: str) -> Answer:
    settings = Settings(generator="extractive")
    return Answerer(pipeline, Generators(settings), settings).ask(Query(question))


def test_english_fenghuang_question_answers_386_citing_fenghuang(seed_pipeline: Pipeline) -> None:
    answer = _ask(seed_pipeline, "How many workers did Fenghuang recover wages for?")
    assert not answer.abstained
    assert re.search(r"(?<!\d)386(?!\d)", answer.text)
    first = answer.citations[0]
    assert first.title == FENGHUANG
    document = seed_pipeline.snapshot.documents[first.doc_id]
    assert document.text[first.start : first.end] == first.text
    assert "386" in document.text[first.evidence_start : first.evidence_end]
    assert {"embed_ms", "search_ms", "generate_ms", "total_ms"} <= set(answer.timings_ms)


@pytest.mark.parametrize(
    ("question", "expected", "title"),
    [
        ("凤凰县为多少名农民工追回了拖欠工资？", "386", FENGHUANG),
        ("去年株洲市空气质量优良天数达到多少天？", "326", "制造名城澎湃“绿动力”"),
        ("五岭农耕文明博物馆是什么时候开馆的？", "2010", "资兴市掀起农耕文化“研学热”"),
        ("郴州市人社局局长是谁？", "莫雄", "围绕养老护理人才紧缺的新形势"),
        ("韶山市财政局盘活了多少惠农补贴结转结余资金？", "311.78", "征集项目着力推动"),
    ],
)
def test_chinese_questions_get_chinese_spans_from_the_right_article(
    seed_pipeline: Pipeline, question: str, expected: str, title: str
) -> None:
    answer = _ask(seed_pipeline, question)
    assert not answer.abstained
    assert expected in answer.text
    assert answer.citations[0].title.startswith(title)


@pytest.mark.parametrize(
    "question",
    [
        "凤凰县县长是谁？",
        "北京的人口是多少？",
        "What is the capital of France?",
        "How many employees does Huawei have?",
    ],
)
def test_questions_the_page_cannot_answer_abstain(seed_pipeline: Pipeline, question: str) -> None:
    answer = _ask(seed_pipeline, question)
    assert answer.abstained
    assert answer.citations == ()


@pytest.mark.parametrize("question", ["", "   \n", "问" * 2001])
def test_empty_or_huge_questions_are_refused(seed_pipeline: Pipeline, question: str) -> None:
    with pytest.raises(InvalidQuestion):
        _ask(seed_pipeline, question)


def test_reindexing_unchanged_seeds_embeds_nothing(seed_settings: Settings, real_embedder) -> None:  # type: ignore[no-untyped-def]
    result = index_paths(seed_settings, [SEED.parent], real_embedder)
    assert result.stats.embedded_texts == 0
    assert result.stats.unchanged == ("seeds/hunan-daily-page.txt",)
    assert result.version is None


def test_index_built_with_another_model_is_refused(seed_settings: Settings, seed_pipeline: Pipeline) -> None:
    other = seed_settings.model_copy(update={"embedding_model": "intfloat/multilingual-e5-base"})
    with pytest.raises(IndexMismatch, match="rebuild"):
        open_pipeline(other)
