from __future__ import annotations

from itertools import pairwise

from rag.ingest.articles import compose_title, first_sentence_title, split_articles
from rag.ingest.chunking import chunk_document
from rag.ingest.cleaning import split_blocks
from rag.ingest.loaders import parse_bytes
from tests.conftest import SEED


def test_seed_page_splits_into_its_articles(seed_raw: str) -> None:
    articles = split_articles(split_blocks(seed_raw), fallback_title="seed")
    titles = [a.title for a in articles]
    assert "凤凰纪委为农民工解“薪”愁" in titles
    assert any(t.startswith("制造名城澎湃“绿动力”") for t in titles)
    assert any("韶山变民生“实事清单”为群众“幸福账单”" in t for t in titles)
    assert any(t.startswith("资兴市掀起农耕文化“研学热”") for t in titles)
    # The Chenzhou article has no headline on this page: it is named by its first words.
    assert titles[0].startswith("围绕养老护理人才紧缺的新形势")
    spans = [(a.start, a.end) for a in articles]
    assert spans == sorted(spans)
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(spans))


def test_fenghuang_chunk_belongs_to_the_fenghuang_article() -> None:
    doc = parse_bytes(SEED.read_bytes(), "seeds/page.txt", str(SEED))
    chunks = chunk_document(doc, chunk_size=300, chunk_overlap=60)
    holding = [c for c in chunks if "为 386 名农民工追回拖欠工资" in c.text]
    assert holding
    assert {c.title for c in holding} == {"凤凰纪委为农民工解“薪”愁"}
    zixing = [c for c in chunks if "五岭农耕文明博物馆坐落于" in c.text]
    assert zixing and zixing[0].title.startswith("资兴市掀起农耕文化")


def test_titles_compose_headline_and_subtitle() -> None:
    assert compose_title(["制造名城", "——解读株洲样本"]) == "制造名城——解读株洲样本"
    assert compose_title(["征集项目", "韶山变民生"]) == "征集项目 韶山变民生"


def test_untitled_article_gets_its_first_words() -> None:
    assert first_sentence_title("短句。后面") == "短句"
    long = "围绕养老护理人才紧缺的新形势，郴州技师学院与郴州市第一人民医院康养中心合作推出"
    assert first_sentence_title(long).endswith("…")
    assert len(first_sentence_title(long)) <= 25


def test_plain_document_is_one_article_with_fallback_title() -> None:
    blocks = split_blocks("Some text without any headline.\n\nAnother paragraph here.")
    articles = split_articles(blocks, fallback_title="notes")
    assert [a.title for a in articles] == ["notes"]
