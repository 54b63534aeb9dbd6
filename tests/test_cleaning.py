from __future__ import annotations

import pytest

from rag.ingest.cleaning import clean_text, display_width, join_cjk_spaces, join_lines, split_blocks
from rag.ingest.loaders import parse_text


def test_spaces_between_cjk_characters_are_removed() -> None:
    assert join_cjk_spaces("围 绕 养 老 护 理 人 才") == "围绕养老护理人才"
    assert join_cjk_spaces("同时 ，针对") == "同时，针对"


def test_numbers_units_and_english_keep_their_spaces() -> None:
    assert join_cjk_spaces("累计支付工资 33.17 万元") == "累计支付工资 33.17 万元"
    assert join_cjk_spaces("关停污染企业 1700多家") == "关停污染企业 1700多家"
    assert join_cjk_spaces("为期 7 天的 2024 年") == "为期 7 天的 2024 年"
    assert join_cjk_spaces("The quick brown fox") == "The quick brown fox"


def test_wrapped_lines_join_without_space_in_chinese_and_with_space_in_english() -> None:
    assert join_lines("紧缺的新形势，郴州技师", "学院与郴州市") == "紧缺的新形势，郴州技师学院与郴州市"
    assert join_lines("a line that", "wraps here") == "a line that wraps here"
    assert join_lines("exam-", "ple") == "example"


def test_display_width_counts_wide_characters_twice() -> None:
    assert display_width("株洲") == 4
    assert display_width("ab 1") == 4


def test_seed_page_is_rejoined_into_paragraphs(seed_raw: str) -> None:
    text = clean_text(seed_raw)
    assert "围绕养老护理人才紧缺的新形势，郴州技师学院与郴州市第一人民医院康养中心合作推出" in text
    assert "为 386 名农民工追回拖欠工资 500 余万元。" in text
    assert "累计支付工资 33.17 万元" in text
    assert "累计关停污染企业 1700多家" in text
    assert "为期 7 天的 2024 年郴州市首期青年求职能力提升实训营" in text
    # A hard-wrapped paragraph becomes one line; the page keeps far fewer lines than it printed.
    assert len(text.splitlines()) < 100 < len([line for line in seed_raw.splitlines() if line.strip()])
    assert "  " not in text


def test_seed_page_headlines_are_their_own_blocks(seed_raw: str) -> None:
    headings = [b.text for b in split_blocks(seed_raw) if b.heading]
    assert "凤凰纪委为农民工解“薪”愁" in headings
    assert "资兴市掀起农耕文化“研学热”" in headings
    assert "李永亮" in headings
    assert not any("，" in h or "。" in h for h in headings)


def test_blank_line_paragraphs_are_kept_for_ordinary_text() -> None:
    raw = "Title line\n\nFirst paragraph wraps\nonto a second line.\n\nSecond paragraph."
    blocks = split_blocks(raw)
    assert [b.text for b in blocks] == [
        "Title line",
        "First paragraph wraps onto a second line.",
        "Second paragraph.",
    ]
    assert blocks[0].heading and not blocks[1].heading


@pytest.mark.parametrize(
    ("raw", "title", "first_line"),
    [
        # A headline typed right above its text is the title, not glued into the first sentence.
        ("城市更新让老街焕新颜\n今年以来，某市投入资金3亿元改造老街区，惠及居民1.2万户。",
         "城市更新让老街焕新颜", "城市更新让老街焕新颜"),
        ("Harbour city opens new ferry line\nThe city opened a ferry line on Monday. It carries 2,000 people a day.",
         "Harbour city opens new ferry line", "Harbour city opens new ferry line"),
        ("# 城市更新让老街焕新颜\n今年以来，某市投入资金3亿元改造老街区。",
         "城市更新让老街焕新颜", "城市更新让老街焕新颜"),
        ("## Notes\n\nThe ferry carries 2,000 people a day.", "Notes", "Notes"),
        # A first line whose sentence goes on below is no headline.
        ("See the full report at\nhttps://example.org/reports/2024/annual for details.",
         "my-notes", "See the full report at https://example.org/reports/2024/annual for details."),
        ("The ferry\nline opened on Monday and carries 2,400 people a day.",
         "my-notes", "The ferry line opened on Monday and carries 2,400 people a day."),
        # Only a document's first line: later paragraphs are joined as they were.
        ("The line opened on Monday.\n\nOfficials said\nthe line will reach the north shore next year.",
         "my-notes", "The line opened on Monday."),
        # A paragraph wrapped by hand has no headline: the file names the document.
        ("The city opened a ferry line on Monday and it will carry\nabout two thousand people a day, officials said.",
         "my-notes", "The city opened a ferry line on Monday and it will carry about two thousand people a day, "
         "officials said."),
    ],
)  # fmt: skip
def test_a_text_file_is_titled_by_its_headline(raw: str, title: str, first_line: str) -> None:
    document = parse_text(raw, "my-notes.txt", "my-notes.txt", "h")
    assert [a.title for a in document.articles] == [title]
    assert document.text.split("\n")[0] == first_line
    assert "Officials said\n" not in document.text
