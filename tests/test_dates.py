"""Dates in questions and passages (rag.lang.zh.dates)."""

from __future__ import annotations

from datetime import date

import pytest

from rag.ingest.loaders import parse_bytes
from rag.lang.zh.dates import date_agreement, dated_first, dates_in, published_date, question_date, written_dates


def test_dates_are_read_with_what_they_give() -> None:
    assert dates_in("2023年4月12日，A；4月13日，B；2022年，C。") == [(2023, 4, 12), (None, 4, 13), (2022, None, None)]
    assert dates_in("共有13个项目") == []  # a bare number is no date
    assert question_date("2024年1月社会融资规模的增量是多少？") == (2024, 1, None)
    assert question_date("4月12日发生了什么？") is None  # no year: not an absolute date


@pytest.mark.parametrize(
    ("text", "agreement"),
    [
        ("2023年4月12日，国际米兰2比0获胜。", 1.0),
        ("4月12日，国际米兰2比0获胜。", 2 / 3),  # the year is not given, nor contradicted
        ("2023年1月15日，国际米兰1比0获胜。", 0.0),  # another day of the same year
        ("国际米兰获胜。", 0.0),
    ],
)
def test_a_passage_agrees_with_the_asked_date_as_far_as_it_gives_one(text: str, agreement: float) -> None:
    assert date_agreement((2023, 4, 12), text) == pytest.approx(agreement)


def test_an_articles_relative_words_are_dated_from_its_publication_day() -> None:
    text = "去年10月，该县追回工资386万元；今年3月又追回57万元。"
    assert written_dates(text, "2023-06-01")[-2:] == [(2022, 10, None), (2023, 3, None)]
    assert written_dates(text) == [(None, 10, None), (None, 3, None)]  # undated: 去年 means nothing
    assert date_agreement((2022, 10, None), text, "2023-06-01") == 1.0
    assert date_agreement((2022, 10, None), text) == 0.5  # the month only


def test_passages_of_the_asked_date_come_first_in_their_order() -> None:
    rows = [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)]
    assert dated_first(rows, [0.0, 1.0, 0.5, 1.0]) == [(2, 0.8), (4, 0.6), (1, 0.9), (3, 0.7)]


@pytest.mark.parametrize(
    ("question", "resolved"),
    [
        ("去年4月18日的促销价是多少？", (2023, 4, 18)),
        ("今年6月利率下调至多少？", (2024, 6, None)),
        ("三年前四月哪个编队经过海峡？", (2021, 4, None)),
        ("大约五年前罚金上限提高到了多少？", (2019, None, None)),
        ("半年前被判赔偿多少？", (2023, 9, None)),
        ("前天新增了多少例？", (2024, 3, 13)),
        ("上个月的出口额是多少？", (2024, 2, None)),
        ("三天前谁赢得了首轮比赛？", (2024, 3, 12)),
        ("截至上周，股价连续多少日涨停？", (2024, 3, None)),
        ("两个星期前，哪两个型号通过了认证？", (2024, 3, None)),
        ("前一天美国新增多少确诊病例？", (2024, 3, 14)),
        ("比赛前一天他说了什么？", None),  # the day before the match, not before today
        ("2022年1月的出口额是多少？", (2022, 1, None)),  # an absolute date wins
        ("出口额是多少？", None),
    ],
)
def test_relative_dates_are_counted_from_the_day_asked(question: str, resolved: tuple[int, ...] | None) -> None:
    assert question_date(question, date(2024, 3, 15)) == resolved


@pytest.mark.parametrize(
    ("text", "name", "published"),
    [
        ("正文没有日期。", "2023-04-12-bridge.txt", "2023-04-12"),
        ("正文没有日期。", "bridge_20230412.md", "2023-04-12"),
        ("2019年7月23日，某公司推出了一款音箱。", "a.txt", "2019-07-23"),
        # a date deep in the text is an event it reports, not its dateline
        ("某县今年新建了 3 座桥。" * 10 + "2020年1月1日通车。", "a.txt", ""),
        ("正文没有日期。", "a.txt", ""),
    ],
)
def test_the_publication_day_comes_from_the_name_or_dateline(text: str, name: str, published: str) -> None:
    assert published_date(text, name) == published


@pytest.mark.parametrize(
    ("head", "published"),
    [
        ('<meta property="article:published_time" content="2022-05-01T08:00:00+08:00">', "2022-05-01"),
        ('<meta content="2021/03/04" name="pubdate">', "2021-03-04"),
        ("", "2019-07-23"),  # no metadata: its dateline
    ],
)
def test_a_web_page_is_dated_by_its_metadata_before_its_text(head: str, published: str) -> None:
    page = f"<html><head>{head}</head><body><p>2019年7月23日，某县新建了 3 座桥，全长 1.2 公里。</p></body></html>"
    document = parse_bytes(page.encode(), "a.html", "a.html")
    assert document.published == published
