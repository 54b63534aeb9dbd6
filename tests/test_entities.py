"""Names a question gives, and whether a passage names them (rag.answer.entities)."""

from __future__ import annotations

import pytest

from rag.answer.analysis import read_question
from rag.answer.entities import bound_names, missing_names, names_in


def question_names(question: str, passages: list[str]) -> tuple[str, ...]:
    """The names the analysis finds in the question, bound to the passages."""
    return bound_names(read_question(question).name_candidates, passages)


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("长沙市今年空气质量优良天数是多少？", ("长沙市",)),
        ("株洲市委书记是谁？", ("株洲",)),
        # A region suffix is dropped; a person counts only once a passage names them (below).
        ("香港地区的哪个女演员主演了《武则天》？", ("香港",)),
        # jieba's guesses at unknown names are not names (沈元龙 -> 沈, 元龙; 初华堡).
        ("2011年1月沈元龙以什么形式加入杭州绿城？", ("杭州",)),
        ("1990年代初华堡如何包装？", ()),
        # Generic words the dictionary tags as places or people.
        ("刘节的籍贯是哪里?", ()),
        ("《温哥华太阳报》发行于哪个城市？", ()),
        # China is implied by Chinese news; its ministries are looked for by their own names.
        ("2019年1月29日中国外交部发言人对哪项请求表示强烈不满？", ("外交部",)),
        # The clause before 当天 only dates the question; comparisons name several events.
        ("杭州亚运会延期举办当天，中国女排对谁输掉了比赛？", ("女排",)),
        ("山东青岛报告3例境外输入无症状感染者和阿森纳0-2负于西汉姆联，哪个事件发生得更早？", ()),
        ("How many workers did Fenghuang recover wages for?", ()),
    ],
)
def test_question_names(question: str, names: tuple[str, ...]) -> None:
    assert question_names(question, []) == names


def test_a_person_counts_once_a_passage_names_them() -> None:
    passage = "《武则天》多次翻拍，香港演员冯宝宝主演。"
    assert question_names("香港地区的哪个女演员主演了《武则天》？", [passage]) == ("香港", "武则天")


def test_an_unknown_place_counts_once_a_passage_names_it() -> None:
    assert question_names("锦地罗的全长是多少厘米？", []) == ()  # a place jieba guessed, not in its dictionary
    assert question_names("锦地罗的全长是多少厘米？", ["锦地罗是一种茅膏菜。"]) == ("锦地罗",)


def test_a_name_is_found_by_its_core_or_its_words() -> None:
    assert names_in("长沙市", "来自长沙、衡阳")
    assert names_in("凤凰县纪委", "凤凰纪委为农民工解“薪”愁\n县纪委")
    assert not names_in("长沙市", "株洲市空气质量")
    assert missing_names(["长沙市", "株洲"], ["株洲市空气质量"]) == ["长沙市"]
