"""Follow-up questions made standalone from the conversation."""

from __future__ import annotations

import pytest

from rag.conversation import Turn, standalone_question

FIRST_ZH = [Turn("user", "凤凰县为多少名农民工追回了拖欠工资？"), Turn("assistant", "386 名")]
FIRST_EN = [Turn("user", "How many workers did Fenghuang recover wages for?"), Turn("assistant", "386")]


@pytest.mark.parametrize(
    ("question", "history", "expected"),
    [
        ("那株洲呢？", FIRST_ZH, "株洲为多少名农民工追回了拖欠工资？"),
        ("资兴市的呢", FIRST_ZH, "资兴市为多少名农民工追回了拖欠工资？"),
        ("追回了多少钱？", FIRST_ZH, "凤凰县 追回了多少钱？"),
        ("这些钱是怎么追回的？", FIRST_ZH, "凤凰县 这些钱是怎么追回的？"),
        ("And how much money was that?", FIRST_EN, "And how much money was that? (Fenghuang)"),
        ("How much?", [Turn("user", "how many workers were paid?")], "How much? (how many workers were paid?)"),
    ],
)
def test_follow_ups_take_the_earlier_topic(question: str, history: list[Turn], expected: str) -> None:
    assert standalone_question(question, history) == expected


@pytest.mark.parametrize(
    ("question", "history"),
    [
        ("株洲市委书记是谁？", FIRST_ZH),
        ("Who is the Party secretary of Zhuzhou, the manufacturing city?", FIRST_EN),
        ("那株洲呢？", []),
        ("那株洲呢？", [Turn("assistant", "你好")]),
        ("", FIRST_ZH),
    ],
)
def test_standalone_questions_are_left_alone(question: str, history: list[Turn]) -> None:
    assert standalone_question(question, history) == question.strip()
