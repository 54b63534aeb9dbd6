from __future__ import annotations

import math

import pytest

from eval.metrics import (
    abstention_scores,
    answer_found,
    char_f1,
    contains_answer,
    exact_match,
    first_relevant_rank,
    judgement_found,
    normalise,
    percentile,
    polarity,
    recall_at_k,
    reciprocal_rank,
    shortest_gold,
)


def test_normalise_folds_width_case_and_spaces() -> None:
    assert normalise("ＡＢＣ　１２３ Km") == "abc123km"
    assert normalise("500 余万元") == normalise("500余万元")


@pytest.mark.parametrize(
    ("response", "gold", "found"),
    [
        ("为 386 名农民工追回工资", "386", True),
        ("为 386 名农民工追回工资", "8", False),
        ("18 名市领导", "8", False),
        ("8 个村民小组", "8", True),
        ("追回拖欠工资 500 余万元", "500余万元", True),
        ("优良率为 89.6%", "89.6%", True),
        ("优良率为 89.6%", "89", False),
        ("增长 9.9%", "9.9%", True),
        ("累计 1700多家", "1700", True),
        ("The answer is MO XIONG", "mo xiong", True),
        ("", "386", False),
        ("戈尔巴乔夫逝世更早：它在2022年8月30日 [1]", "戈尔巴乔夫逝世。", True),
        ("戈尔巴乔夫逝世", "戈尔巴乔夫逝世。", True),
        ("戈尔巴乔夫", "戈尔巴乔夫逝世。", False),
    ],
)
def test_whole_number_matching(response: str, gold: str, found: bool) -> None:
    assert contains_answer(response, gold) is found


def test_every_group_must_match() -> None:
    groups = (("386", "三百八十六"), ("500 余万元",))
    assert answer_found("386 名，500余万元", groups)
    assert not answer_found("386 名", groups)
    assert not answer_found("anything", ())


def test_character_f1_and_exact_match_work_on_chinese() -> None:
    assert char_f1("莫雄", "莫雄") == 1.0
    assert char_f1("局长莫雄", "莫雄") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert char_f1("曹慧泉", "莫雄") == 0.0
    assert exact_match(" 386 ", "386") and not exact_match("386 名", "386")
    assert shortest_gold((("10 余万人次", "10余万"),)) == "10余万"


def test_retrieval_metrics() -> None:
    rank = first_relevant_rank([False, False, True, True])
    assert rank == 3
    assert recall_at_k(rank, 1) == 0.0 and recall_at_k(rank, 3) == 1.0
    assert reciprocal_rank(rank) == pytest.approx(1 / 3)
    assert first_relevant_rank([False]) is None and reciprocal_rank(None) == 0.0


def test_abstention_precision_and_recall() -> None:
    abstained = [True, True, False, False, True]
    answerable = [False, True, False, True, False]
    precision, recall = abstention_scores(abstained, answerable)
    assert precision == pytest.approx(2 / 3)
    assert recall == pytest.approx(2 / 3)
    assert math.isnan(abstention_scores([False], [True])[0])


def test_percentiles() -> None:
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([5], 95) == 5
    assert math.isnan(percentile([], 50))


def test_citation_markers_are_not_part_of_the_answer() -> None:
    from eval.metrics import without_markers

    assert without_markers("386 名 [1]") == "386 名"
    assert without_markers("为386名农民工追回工资[1]，另有 57 名[2]。") == "为386名农民工追回工资，另有 57 名。"
    # A gold "1" is not found in a bare marker.
    assert not contains_answer(without_markers("386 名 [1]"), "1")


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ("是的，两件事发生在同一年[1]。", True),
        ("不是。前者早一年。", False),
        ("No, the second one came first.", False),
        ("Yes [1].", True),
        ("2019年3月", None),
        ("两件事是同一年发生的", True),
    ],
)
def test_yes_or_no_is_read_from_the_first_clause(answer: str, said: bool | None) -> None:
    assert polarity(answer) is said


def test_a_judgement_is_right_only_with_the_gold_yes_or_no() -> None:
    assert judgement_found("是的，同一年。", [["是的"]])
    assert not judgement_found("不是，晚了一年。", [["是的"]])
    assert judgement_found("不是。", [["不是"]])
    assert judgement_found("不是。前者在2023年3月 [1]", [["否"]])
    assert not judgement_found("是否同一个月，文中没有说。", [["是的"]])
    # A judgement question whose gold is no yes or no is scored by containment.
    assert judgement_found("广西无新增确诊病例 [1]", [["无新增确诊病例"]])
    assert not judgement_found("广西新增2例 [1]", [["无新增确诊病例"]])
    # A quoted sentence that never says yes or no is not an answer to a yes/no question.
    assert not judgement_found("2019年3月，该项目开工。", [["是的"]])
