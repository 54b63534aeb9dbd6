"""A user's own documents, not the seed page: one file is a whole corpus, the figure asked for
is the one answered, and what no document says is abstained on (issue 26).

The article below is ours, written for these tests. It holds two figures of the same kind
(a period's total and a single day's highest) and a growth rate beside an amount, the
confusions a new user met first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.index.embedding import Embedder

ARTICLE = """橘子洲音乐节吸引八方游客

本报5月6日讯 2024年5月1日，长沙橘子洲景区举办草莓音乐节。音乐节开幕当天，景区共接待游客3.2万人次。\
五一假期期间，橘子洲景区累计接待游客15.6万人次，同比增长12.5%，其中5月2日单日接待游客4.5万人次，创下单日最高纪录。\
景区实现旅游收入2860万元。
景区负责人介绍，为保障游客安全，景区增派了200名志愿者，并开通了8条摆渡车线路。
"""


@contextlib.contextmanager
def _served(folder: Path, model_cache: Path, embedder: Embedder) -> Iterator[TestClient]:
    """The files of ``folder``/docs indexed into ``folder``/index, served (extractive by default)."""
    from rag.library import index_paths
    from rag.service import open_pipeline

    settings = Settings(index_dir=folder / "index", cache_dir=model_cache, generator="extractive")
    index_paths(settings, [folder / "docs"], embedder)
    with TestClient(create_app(settings, open_pipeline(settings, embedder)), base_url="http://localhost") as client:
        yield client


@pytest.fixture(scope="module")
def one_file(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path, real_embedder: Embedder
) -> Iterator[TestClient]:
    """An index of one text file of ours, served."""
    folder = tmp_path_factory.mktemp("own")
    (folder / "docs").mkdir()
    (folder / "docs" / "juzizhou.txt").write_text(ARTICLE, encoding="utf-8")
    with _served(folder, model_cache, real_embedder) as client:
        yield client


def _ask(client: TestClient, question: str) -> dict[str, object]:
    response = client.post("/api/ask", json={"question": question, "generator": "extractive"})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize(
    ("question", "figure"),
    [
        ("橘子洲景区单日最高接待游客多少人次？", "4.5万"),  # the single day's highest, not the period's total
        ("What was the highest number of visitors on a single day?", "4.5万"),
        ("五一假期橘子洲累计接待游客多少人次？", "15.6万"),
        ("橘子洲景区增派了多少名志愿者？", "200"),
        ("音乐节开幕当天，景区接待了多少游客？", "3.2万"),  # 当天 without an event to date
    ],
)
def test_a_one_document_index_answers_its_own_questions(one_file: TestClient, question: str, figure: str) -> None:
    body = _ask(one_file, question)
    assert not body["abstained"], body.get("abstain_reason")
    assert figure in str(body["answer"])
    assert body["citations"] and body["citations"][0]["title"] == "橘子洲音乐节吸引八方游客"  # type: ignore[index]


@pytest.mark.parametrize(
    "question",
    [
        "长沙市的人口是多少？",  # a place the article names, a figure it does not give
        "What is the population of Changsha?",
        "法国的首都是哪里？",
        "橘子洲景区的门票价格是多少元？",
    ],
)
def test_a_one_document_index_abstains_on_what_it_does_not_say(one_file: TestClient, question: str) -> None:
    body = _ask(one_file, question)
    assert body["abstained"], body["answer"]
    assert body["abstain_reason"] and not body["citations"]


def economy_docx(path: Path) -> None:
    """A Word file of ours holding a table: figures by city, an amount and a rate."""
    import docx

    document = docx.Document()
    document.add_heading("前三季度全省各市州经济运行情况", level=1)
    document.add_paragraph("前三季度，全省经济运行总体平稳、稳中有进。各市州主要指标如下表。")
    rows = [("市州", "地区生产总值（亿元）", "增速"), ("长沙", "10827.6", "4.6%"), ("株洲", "2711.3", "6.4%")]
    table = document.add_table(rows=len(rows), cols=3)
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    document.save(str(path))


@pytest.fixture(scope="module")
def table_file(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path, real_embedder: Embedder
) -> Iterator[TestClient]:
    """An index of one Word file of ours holding a table: figures by city, an amount and a rate."""
    folder = tmp_path_factory.mktemp("own-table")
    (folder / "docs").mkdir()
    economy_docx(folder / "docs" / "economy.docx")
    with _served(folder, model_cache, real_embedder) as client:
        yield client


@pytest.mark.parametrize(
    ("question", "cell"),
    [
        ("株洲前三季度地区生产总值增速是多少？", "6.4%"),
        ("长沙的增速是多少？", "4.6%"),
        ("株洲前三季度地区生产总值是多少？", "2711.3"),
    ],
)
def test_a_table_cell_is_answered_by_its_row_and_column(table_file: TestClient, question: str, cell: str) -> None:
    body = _ask(table_file, question)
    assert not body["abstained"], body.get("abstain_reason")
    assert str(body["answer"]).split(" [")[0] == cell
