"""Answers written as the question's language writes dates and counts (rag.answer.localise), and
an English question that the model answers in Chinese (issue 29)."""

from __future__ import annotations

import pytest

from rag.answer.grounding import Verifier
from rag.answer.localise import localise
from rag.answer.stream import verified
from rag.lang.en import dates as en_dates
from rag.lang.tables import table, tables
from rag.lang.zh.script import in_chinese
from tests.test_grounding import _request, _streamed

# (a verified unit, the question's language, how the answer writes it)
EXAMPLES = [
    ("2010年 9月 [1]", "en", "September 2010 [1]"),
    ("2022年9月27日 [1]", "en", "27 September 2022 [1]"),
    ("9月27日 [1]", "en", "27 September [1]"),
    ("2018年 [1]", "en", "2018 [1]"),
    ("386 名 [1]", "en", "386 [1]"),
    ("1700多家 [1]", "en", "more than 1700 [1]"),
    ("32 起 [1]", "en", "32 [1]"),
    ("It opened in 2010年9月. [1]", "en", "It opened in September 2010. [1]"),
    # What an English answer keeps: amounts with their scale, shares, names, counts inside Chinese.
    ("500 余万元 [1]", "en", "500 余万元 [1]"),
    ("56.68% [1]", "en", "56.68% [1]"),
    ("莫雄 [1]", "en", "莫雄 [1]"),
    # A Chinese answer writes an English date the Chinese way, and keeps its counts.
    ("该馆于Sep 27, 2022开馆[1]。", "zh", "该馆于2022年9月27日开馆[1]。"),
    ("Sept. 27th, 2022 [1]", "zh", "2022年9月27日 [1]"),
    ("September 2010 [1]", "zh", "2010年9月 [1]"),
    ("386 名 [1]", "zh", "386 名 [1]"),
    # "may" without a day or a year is not a month.
    ("它可能 may 开放 [1]", "zh", "它可能 may 开放 [1]"),
    # No date of its own: a part of a longer figure, the ends of a range, a verb, a clock time.
    ("Output rose 8% in 2023年1-9月 [1].", "en", "Output rose 8% in 2023年1-9月 [1]."),
    ("2012月 [1]", "en", "2012月 [1]"),
    ("3月至5月 [1]", "en", "3月至5月 [1]"),
    ("The troops march 20 km a day [1]", "zh", "The troops march 20 km a day [1]"),
    ("at 10:30 May 5 [1]", "zh", "at 10:30 5月5日 [1]"),
    ("March 3-5, 2024 [1]", "zh", "March 3-5, 2024 [1]"),
    ("Sep 31 [1]", "zh", "Sep 31 [1]"),
    # A Chinese sentence is written the Chinese way whatever the question's language.
    ("该馆于 2010年 9月开馆[1]。", "en", "该馆于 2010年 9月开馆[1]。"),
]


@pytest.mark.parametrize(("unit", "language", "written"), EXAMPLES)
def test_dates_and_counts_are_written_as_the_question_s_language_writes_them(
    unit: str, language: str, written: str
) -> None:
    assert localise(unit, language) == written


def test_a_chinese_sentence_is_told_from_an_english_one_naming_chinese_names() -> None:
    assert in_chinese("该馆于 2010年 9月开馆[1]。")
    assert not in_chinese("The Party secretary of Zhuzhou is 曹慧泉 [1].")
    assert not in_chinese("莫雄 [1]")
    assert not in_chinese("It was 凤凰县纪委监委 [2].")


def test_the_english_tables_examples_read_as_they_say() -> None:
    assert set(tables("en")) == {"months", "ordinals", "more_than", "year_words"}
    for example in table("en", "year_words").examples:  # the year alone is the date
        assert [m.group() for m in en_dates.year_matches(example)] == [example.split()[-1]]
    for example in table("en", "months").examples:  # each a date with its month
        ((when, _, _),) = en_dates.written_dates(example)
        assert when[1] is not None and en_dates.MONTHS[when[1] - 1] in example
    for example in table("en", "ordinals").examples:
        assert en_dates.written_dates(f"September {example}")[0][0] == (None, 9, int(example[:-2]))
    for example in table("en", "more_than").examples:
        assert localise(example.split()[-1] + "多家", "en") == example


def test_an_extractive_span_is_written_for_an_english_question() -> None:
    answer = verified(_request("How many workers did Fenghuang recover wages for?"), ["386 名 [2]"])
    assert answer.text == "386 [1]" and not answer.abstained
    # The evidence is still found by the figure as the passage writes it.
    assert "386 名农民工" in answer.evidence


def test_a_chinese_draft_to_an_english_question_is_replaced_by_the_span_before_anything_is_released() -> None:
    request = _request("How many workers did Fenghuang recover wages for?")
    verifier = Verifier(request, fallback="386 名 [2]")
    out = verifier.feed("凤凰县为386名农民工追回了拖欠工资[2]。") + verifier.feed("其余的话")
    assert verifier.stopped  # the model is stopped
    out += verifier.feed("。") + verifier.end()
    answer = verifier.answer()
    assert "".join(out) == answer.text == "386 [1]"
    assert answer.citations[0].doc_id == "凤凰"
    assert answer.warnings == ("the model answered in Chinese: the answer is the span the passages give",)


def test_without_a_span_the_model_s_chinese_sentence_is_kept_with_a_warning() -> None:
    out, verifier = _streamed(
        _request("How many workers did Fenghuang recover wages for?"), ["凤凰县为386名农民工追回了拖欠工资[2]。"]
    )
    answer = verifier.answer()
    assert "".join(out) == answer.text == "凤凰县为386名农民工追回了拖欠工资[1]。"
    assert answer.warnings == ("the model answered in Chinese, not in the question's language",)


def test_a_chinese_no_answer_to_an_english_question_stays_an_abstention() -> None:
    verifier = Verifier(_request("How many workers did Fenghuang recover wages for?"), fallback="386 名 [2]")
    out = verifier.feed("文中未提及凤凰县追回工资的人数。") + verifier.end()
    answer = verifier.answer()
    assert answer.abstained and "".join(out) == answer.text


def test_a_chinese_draft_with_an_invented_figure_is_withheld_not_replaced() -> None:
    verifier = Verifier(_request("How many workers did Fenghuang recover wages for?"), fallback="386 名 [2]")
    out = verifier.feed("凤凰县为999名农民工追回了拖欠工资[2]。") + verifier.end()
    assert verifier.answer().abstained and "999" not in "".join(out)
