"""Reading order and blocks of OCR'd pages (rag.ingest.layout), on the generated seed scan's own
record of what it printed where: no OCR model, so every failure here is the layout's."""

from __future__ import annotations

import random
from typing import Any

import pytest

from rag.ingest.articles import split_articles
from rag.ingest.layout import Line, locate, page_lines, scan_blocks
from rag.ingest.loaders import parse_bytes
from rag.types import TextBox
from tests.conftest import SEED


def _boxes(scan: Any, page: int) -> list[TextBox]:
    return [TextBox(line.text, *line.box, angle=line.angle) for line in scan.lines if line.page == page]


def _lines(scan: Any, shuffle: int | None = None) -> list[Line]:
    found: list[Line] = []
    for page in range(1, len(scan.pages) + 1):
        boxes = _boxes(scan, page)
        if shuffle is not None:
            random.Random(shuffle + page).shuffle(boxes)
        width, height = scan.pages[page - 1].size
        found += page_lines(boxes, page, width, height)
    return found


def _squeeze(text: str) -> str:
    return "".join(text.split())


def test_boxes_in_any_order_read_as_printed(seed_scan: Any) -> None:
    # Stories side by side, headlines over several columns, a centred author line, a photo
    # caption: the reading order is the order the lines were printed in.
    printed = [_squeeze(line.text) for line in seed_scan.lines]
    for shuffle in (None, 1, 2):
        assert [_squeeze(line.text) for line in _lines(seed_scan, shuffle)] == printed


def test_the_scan_splits_into_the_seed_pages_articles(seed_scan: Any) -> None:
    # The same cleaning and article splitting as the seed page's text: the same titles.
    seed = parse_bytes(SEED.read_bytes(), "seed", str(SEED))
    blocks = scan_blocks(_lines(seed_scan))
    titles = [a.title for a in split_articles(blocks, "scan")]
    assert titles == [a.title for a in seed.articles]


def test_headings_are_sized_against_the_body_type(seed_scan: Any) -> None:
    blocks = scan_blocks(_lines(seed_scan))
    headings = {b.text for b in blocks if b.heading and b.new_frame}
    frames = [b.text for b in blocks if b.new_frame]
    assert "凤凰纪委为农民工解“薪”愁" in headings  # a headline wrapped over two lines is one block
    section = next(b for b in blocks if b.text.startswith("齐抓共管“开门搞环保”"))  # a section heading in a story
    assert section.heading and not section.new_frame  # ... does not start an article
    assert {"凤凰纪委为农民工解“薪”愁", "征集项目着力推动"} <= set(frames)  # a kicker opens its story


def test_each_line_is_located_in_the_cleaned_text(seed_scan: Any) -> None:
    lines = _lines(seed_scan)
    text = "\n".join(b.text for b in scan_blocks(lines))
    regions = locate(text, lines)
    assert len(regions) == len(lines)
    for line, region in zip(lines, regions, strict=True):
        assert _squeeze(text[region.start : region.end]) == _squeeze(line.text)
        assert 0 <= region.box[0] < region.box[2] <= 1 and 0 <= region.box[1] < region.box[3] <= 1
    assert [r.start for r in regions] == sorted(r.start for r in regions)


def test_a_line_split_into_fragments_is_one_line() -> None:
    boxes = [
        TextBox("今年来，该县共办理拖欠农民工工资", 100, 100, 580, 130),
        TextBox("为 386 名农民工追回", 100, 146, 380, 176),
        TextBox("拖欠工资。", 395, 146, 545, 176),  # the detector cut the line at a gap
        TextBox("案件 32 起。", 100, 192, 300, 222),
    ]
    lines = page_lines(boxes, 1, 1000, 1000)
    assert [line.text for line in lines] == [
        "今年来，该县共办理拖欠农民工工资",
        "为 386 名农民工追回拖欠工资。",
        "案件 32 起。",
    ]


def test_columns_read_one_after_the_other_even_with_aligned_rows() -> None:
    # Two columns whose lines share baselines, under a headline that bridges the gutter.
    boxes = [TextBox("凤凰纪委为农民工解薪愁", 150, 40, 850, 100)]
    for row in range(6):
        y = 130 + 46 * row
        boxes += [TextBox(f"左栏第{row + 1}行的正文内容", 100, y, 460, y + 34)]
        boxes += [TextBox(f"右栏第{row + 1}行的正文内容", 520, y, 880, y + 34)]
    random.Random(3).shuffle(boxes)
    order = [line.text for line in page_lines(boxes, 1, 1000, 1000)]
    assert order[0] == "凤凰纪委为农民工解薪愁"
    assert order[1:7] == [f"左栏第{n}行的正文内容" for n in range(1, 7)]
    assert order[7:] == [f"右栏第{n}行的正文内容" for n in range(1, 7)]


@pytest.mark.parametrize("degrees", [1.5, -1.5])
def test_a_skewed_scan_still_reads_in_order(seed_raw: str, degrees: float) -> None:
    # Turned 1.5 degrees, the body lines of one column overlap the next column's rows and
    # the headline runs into the columns' first lines, unless the page is read straightened.
    from eval.scans import Style, scan_stories, stories_from_text

    scan = scan_stories(stories_from_text(seed_raw)[3:5], Style(skew_degrees=degrees))
    assert [_squeeze(line.text) for line in _lines(scan)] == [_squeeze(line.text) for line in scan.lines]


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_short_headlines_centred_over_stories_side_by_side(seed_raw: str, seed: int) -> None:
    # A two-character headline centred over three columns bridges none of their gutters,
    # and its neighbour's headline sits in the same row: each must still head its own story.
    from eval.scans import Part, Story, Style, scan_stories

    body = "".join(parse_bytes(SEED.read_bytes(), "seed", str(SEED)).text.split("\n"))[:5600]
    stories = [
        Story(title, (Part(body[n * 700 : (n + 1) * 700]),))
        for n, title in enumerate("于乐 尚恩 苏镜 徐晓 锣鼓 海宁 固始 沼鹿".split())
    ]
    scan = scan_stories(stories, Style(seed=seed))
    assert [_squeeze(line.text) for line in _lines(scan)] == [_squeeze(line.text) for line in scan.lines]
