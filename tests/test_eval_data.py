"""The seed eval set is well-formed and every gold answer is in the cleaned seed text."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from eval.data import DatasetError, load_dataset, load_seed, load_shared, load_squad, withheld_gold
from eval.metrics import contains_answer
from rag.ingest.loaders import parse_bytes
from tests.conftest import SEED

ARTICLES = ("围绕养老护理人才", "制造名城澎湃", "韶山变民生", "资兴市掀起农耕文化", "凤凰纪委为农民工")


def test_seed_set_size_and_coverage() -> None:
    questions = load_seed().questions
    assert len(questions) >= 80
    assert len({q.qid for q in questions}) == len(questions)
    assert sum(q.lang == "en" and q.answerable for q in questions) >= 15
    assert sum(not q.answerable for q in questions) >= 10
    titles = Counter(next(a for a in ARTICLES if a in q.gold_titles[0]) for q in questions if q.answerable)
    assert set(titles) == set(ARTICLES)
    assert {"number", "percent", "money", "date", "person", "place", "organisation", "unanswerable"} <= {
        q.category for q in questions
    }
    # One scheme: a category is the answer's type; the question's language is its own field.
    assert {q.category for q in questions} <= {
        "number", "percent", "money", "date", "person", "place", "organisation", "other", "unanswerable"
    }  # fmt: skip


def test_every_gold_answer_appears_in_the_cleaned_seed_text() -> None:
    document = parse_bytes(SEED.read_bytes(), "seed", str(SEED))
    titles = {a.title for a in document.articles}
    for question in load_seed().questions:
        for group in question.answer_groups:
            for gold in group:
                assert contains_answer(document.text, gold), (question.qid, gold)
        for title in question.gold_titles:
            assert any(title in t for t in titles), (question.qid, title)


def test_shared_format_loads(tmp_path: Path) -> None:
    (tmp_path / "passages.jsonl").write_text(
        json.dumps({"pid": "p1", "text": "凤凰县为 386 名农民工追回工资。", "title": "凤凰"}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    (tmp_path / "qa.jsonl").write_text(
        json.dumps({"qid": "q1", "question": "多少名？", "answer_groups": [["386"]], "gold_pids": ["p1"], "meta": {}})
        + "\n",
        encoding="utf-8",
    )
    data = load_shared(tmp_path)
    assert data.passages[0].pid == "p1" and data.passages[0].title == "凤凰"
    (question,) = data.questions
    assert question.answer_groups == (("386",),) and question.gold_pids == ("p1",)
    assert load_dataset(str(tmp_path)).name == tmp_path.name


def test_squad_style_json_loads(tmp_path: Path) -> None:
    squad = {
        "data": [
            {
                "title": "凤凰",
                "paragraphs": [
                    {
                        "id": "para-1",
                        "context": "凤凰县为 386 名农民工追回工资。",
                        "qas": [
                            {"id": "a", "question": "多少名？", "answers": [{"text": "386"}, {"text": "386 名"}]},
                            {"id": "b", "question": "县长是谁？", "answers": [], "is_impossible": True},
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    data = load_squad(path)
    assert [p.pid for p in data.passages] == ["para-1"]
    assert data.questions[0].answer_groups == (("386", "386 名"),)
    assert not data.questions[1].answerable and data.questions[1].gold_pids == ("para-1",)


def test_bad_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown data set"):
        load_dataset(str(tmp_path / "nope.csv"))
    with pytest.raises(DatasetError, match=r"passages\.jsonl"):
        load_dataset(str(tmp_path))
    (tmp_path / "passages.jsonl").write_text("{broken\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_shared(tmp_path)


def test_chronoqa_meta_gives_each_question_its_types(tmp_path: Path) -> None:
    (tmp_path / "passages.jsonl").write_text(json.dumps({"pid": "c1", "text": "x"}) + "\n", encoding="utf-8")
    meta = {"question_date": "2023-10-30", "answer_type": "numerical", "temporal_type": "relative",
            "reference_document_count": "single"}  # fmt: skip
    row = {"qid": "q1", "question": "去年销量多少？", "answer_groups": [["3万"]], "gold_pids": ["c1"], "meta": meta}
    (tmp_path / "qa.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    (question,) = load_shared(tmp_path).questions
    assert question.category == "numerical, single" and question.temporal_type == "relative"
    assert question.as_of is None and question.documents == "single"
    (asked,) = load_shared(tmp_path, as_of_field="meta.question_date").questions
    assert asked.as_of == date(2023, 10, 30)


def test_a_sample_is_the_same_every_time_and_keeps_the_order() -> None:
    from eval.cli import chosen_questions

    questions = load_seed().questions
    first, again = chosen_questions(questions, sample=20), chosen_questions(questions, sample=20)
    assert len(first) == 20 and first == again
    order = [questions.index(q) for q in first]
    assert order == sorted(order) and order != list(range(20))
    assert chosen_questions(questions, limit=10) == questions[:10]
    assert chosen_questions(questions, sample=10_000) == questions


def test_a_question_withheld_from_its_gold_passage_is_unanswerable_only_when_no_other_passage_answers(
    tmp_path: Path,
) -> None:
    passages = [
        {"pid": "p1", "text": "凤凰县为 386 名农民工追回工资。", "title": "凤凰"},
        {"pid": "p2", "text": "株洲关停 1800 家企业。", "title": "株洲"},
        {"pid": "p3", "text": "另一篇报道也说株洲关停 1800 家企业。", "title": "株洲二"},
    ]
    questions = [
        {"qid": "q1", "question": "凤凰县为多少名农民工追回工资？", "answer_groups": [["386"]], "gold_pids": ["p1"]},
        {"qid": "q2", "question": "株洲关停多少家企业？", "answer_groups": [["1800"]], "gold_pids": ["p2"]},
    ]
    (tmp_path / "passages.jsonl").write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in passages))
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions))
    data = load_shared(tmp_path)
    (withheld,) = withheld_gold(data, data.questions)  # q2's answer is in p3 too: it stays answerable
    assert withheld.qid == "q1-withheld" and withheld.withheld == ("p1",)
    assert not withheld.answerable and withheld.question == "凤凰县为多少名农民工追回工资？"
