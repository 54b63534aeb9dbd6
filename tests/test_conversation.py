"""Follow-up questions made standalone from the conversation."""

from __future__ import annotations

import pytest

from rag.answer.conversation import ChatFunction, Turn, standalone_question
from rag.errors import GeneratorError

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
        ("What about Zhuzhou?", FIRST_EN, "How many workers did Zhuzhou recover wages for?"),
        ("And how about it?", FIRST_EN, "And how about it? (Fenghuang)"),
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


def _model(reply: str, seen: list[list[dict[str, str]]] | None = None) -> ChatFunction:
    def chat(messages: list[dict[str, str]]) -> str:
        if seen is not None:
            seen.append(messages)
        return reply

    return chat


def test_a_language_model_rewrites_the_follow_up_when_there_is_one() -> None:
    seen: list[list[dict[str, str]]] = []
    rewritten = standalone_question(
        "And how much money was that?", FIRST_EN, _model("How much money did Fenghuang recover in wages?", seen)
    )
    assert rewritten == "How much money did Fenghuang recover in wages?"
    prompt = seen[0][1]["content"]
    assert "User: How many workers did Fenghuang recover wages for?" in prompt and "Assistant: 386" in prompt
    assert prompt.rstrip().endswith("Last question: And how much money was that?\n\nStandalone question:")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Standalone question: “株洲为多少名农民工追回了拖欠工资？”\n", "株洲为多少名农民工追回了拖欠工资？"),
        ("独立问题：株洲为多少名农民工追回了拖欠工资？", "株洲为多少名农民工追回了拖欠工资？"),
        # Rejected: another language, empty, NOT_FOUND, far longer than the conversation.
        ("How many workers did Zhuzhou recover wages for?", "株洲为多少名农民工追回了拖欠工资？"),
        ("", "株洲为多少名农民工追回了拖欠工资？"),
        ("NOT_FOUND", "株洲为多少名农民工追回了拖欠工资？"),
        ("株洲" * 80, "株洲为多少名农民工追回了拖欠工资？"),
    ],
)
def test_the_model_rewrite_is_checked_and_the_rules_take_over(reply: str, expected: str) -> None:
    assert standalone_question("那株洲呢？", FIRST_ZH, _model(reply)) == expected


def test_a_rewrite_must_keep_the_follow_ups_names_and_change_something() -> None:
    # The model repeated the earlier question and dropped Zhuzhou; then echoed a follow-up.
    zhuzhou = standalone_question("What about Zhuzhou?", FIRST_EN, _model(FIRST_EN[0].content))
    assert zhuzhou == "How many workers did Zhuzhou recover wages for?"
    assert standalone_question("追回了多少钱？", FIRST_ZH, _model("追回了多少钱？")) == "凤凰县 追回了多少钱？"


def test_an_english_rewrite_may_name_a_chinese_place_but_must_stay_english() -> None:
    question = "And how much money was that?"
    kept = standalone_question(question, FIRST_EN, _model("How much money did 凤凰县 recover?"))
    assert kept == "How much money did 凤凰县 recover?"
    assert standalone_question(question, FIRST_EN, _model("凤凰县追回了多少钱？")) == f"{question} (Fenghuang)"


def test_a_failing_model_leaves_the_rules_and_no_history_asks_no_model() -> None:
    def broken(_: list[dict[str, str]]) -> str:
        raise GeneratorError("cannot reach the server")

    assert standalone_question("那株洲呢？", FIRST_ZH, broken) == "株洲为多少名农民工追回了拖欠工资？"
    seen: list[list[dict[str, str]]] = []
    assert standalone_question("那株洲呢？", [], _model("anything", seen)) == "那株洲呢？" and not seen


def test_over_long_questions_and_rewrites_are_not_rewritten() -> None:
    seen: list[list[dict[str, str]]] = []
    long = "那株洲呢？" * 500
    assert standalone_question(long, FIRST_ZH, _model("x", seen), max_chars=2000) == long and not seen
    rewritten = standalone_question("那株洲呢？", FIRST_ZH, _model("株洲" * 30), max_chars=40)
    assert rewritten == "株洲为多少名农民工追回了拖欠工资？"
