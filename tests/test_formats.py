"""Word files and saved news pages: read, split into articles, indexed and answerable."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from rag.config import Settings
from rag.errors import LoaderError
from rag.ingest.loaders import parse_bytes

BUS = "株洲市今年新建公交候车亭 126 座，更换新能源公交车 85 台。"
BRIDGE = "醴陵市渌江大桥于 10 月 8 日通车，全长 1.2 公里，总投资 4.6 亿元。"


def _docx() -> bytes:
    """Two articles under Heading 1, a subtitle, body paragraphs and a table."""
    import docx

    document = docx.Document()
    document.core_properties.title = "株洲要闻"
    document.add_heading("株洲公交提质升级", level=1)
    document.add_heading("候车更舒适 出行更绿色", level=2)
    document.add_paragraph(BUS)
    document.add_paragraph("市交通运输局表示，明年将继续优化线路。")
    table = document.add_table(rows=3, cols=2)
    for row, (name, count) in enumerate([("项目", "数量"), ("候车亭", "126 座"), ("新能源公交车", "85 台")]):
        table.cell(row, 0).text, table.cell(row, 1).text = name, count
    merged = document.add_table(rows=1, cols=3)
    merged.cell(0, 0).merge(merged.cell(0, 1)).text = "合并的单元格"
    merged.cell(0, 2).text = "右侧"
    document.add_heading("渌江大桥建成通车", level=1)
    document.add_paragraph(BRIDGE)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


NEWS_PAGE = f"""<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">
<title>渌江大桥建成通车_湖南日报网</title>
<meta property="og:title" content="渌江大桥建成通车">
<meta property="article:published_time" content="2024-10-09T07:30:00+08:00">
</head><body>
<header><nav><a href="/">首页</a> | <a href="/news">要闻</a> | <a href="/video">视频</a>
 | <a href="/login">登录</a></nav></header>
<div class="breadcrumb"><a href="/">首页</a> &gt; <a href="/hn">湖南</a> &gt; 正文</div>
<article>
<h1>渌江大桥建成通车</h1>
<p>{BRIDGE}</p>
<p>大桥为双向六车道，设计时速 60 公里。通车后，两岸通行时间由 40 分钟缩短到 5 分钟。</p>
<p>当地居民表示，上下班再也不用绕行老桥了。</p>
</article>
<aside class="related"><h3>相关新闻</h3><ul>
<li><a href="/a1">浏阳河大桥维修 300 天后恢复通行</a></li><li><a href="/a2">湘江新增 7 座跨江大桥</a></li></ul></aside>
<footer><p>版权所有 湖南日报社 湘ICP备 12345678 号</p><p>联系我们 | 广告服务 | 网站地图</p></footer>
</body></html>"""


def test_a_docx_splits_into_its_articles_with_headings_as_titles() -> None:
    doc = parse_bytes(_docx(), "docs/news.docx", "news.docx")
    assert [a.title for a in doc.articles] == ["株洲公交提质升级 候车更舒适出行更绿色", "渌江大桥建成通车"]
    assert BUS.replace(" ", "") in doc.text.replace(" ", "")
    # A cell under a header row is written with its column's heading, the header row as it is.
    assert "项目 | 数量" in doc.text
    assert "候车亭 | 数量：126 座" in doc.text and "新能源公交车 | 数量：85 台" in doc.text
    assert "合并的单元格 | 右侧" in doc.text  # a merged cell is written once
    first = doc.articles[0]
    assert "候车亭 | 数量：126 座" in doc.text[first.start : first.end]


def test_a_docx_without_headings_is_titled_by_its_title_property() -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "渌江大桥建成通车"
    document.add_paragraph(BRIDGE)
    out = io.BytesIO()
    document.save(out)
    assert [a.title for a in parse_bytes(out.getvalue(), "a.docx", "a.docx").articles] == ["渌江大桥建成通车"]


def test_broken_word_files_are_clear_errors() -> None:
    good = _docx()
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"<" + b" " * 50_000_000)
    cases = [
        (b"\xd0\xcf\x11\xe0 an old binary .doc", "old.docx", "not a Word .docx file"),
        (good[: len(good) // 2], "cut.docx", "not a Word .docx file"),
        (bomb.getvalue(), "bomb.docx", "zip bomb"),
    ]
    broken_xml = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(broken_xml, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, b"<w:document><not-closed" if item.filename == "word/document.xml" else data)
    cases.append((broken_xml.getvalue(), "xml.docx", "cannot read this Word file"))
    from rag.ingest.loaders import ReadOptions

    for data, name, message in cases:
        with pytest.raises(LoaderError, match=message):
            parse_bytes(data, name, name, options=ReadOptions(max_file_bytes=1_000_000))


def test_a_news_page_keeps_its_article_headline_and_day_not_its_menus() -> None:
    doc = parse_bytes(NEWS_PAGE.encode(), "web/bridge.html", "bridge.html")
    assert [a.title for a in doc.articles] == ["渌江大桥建成通车"]
    assert doc.published == "2024-10-09"
    assert "双向六车道" in doc.text and BRIDGE.replace(" ", "")[:10] in doc.text.replace(" ", "")
    for furniture in ("首页", "登录", "相关新闻", "浏阳河大桥", "版权所有", "网站地图"):
        assert furniture not in doc.text


def test_a_page_without_an_article_is_read_whole() -> None:
    page = "<html><head><title>通知</title></head><body><div>停水通知：明日 9 时至 17 时停水。</div></body></html>"
    doc = parse_bytes(page.encode(), "a.html", "a.html")
    assert "停水通知" in doc.text


@pytest.fixture(scope="module")
def formats_index(tmp_path_factory: pytest.TempPathFactory, model_cache: Path, real_embedder: Any) -> Settings:
    from rag.library import index_paths

    root = tmp_path_factory.mktemp("formats")
    (root / "files").mkdir()
    (root / "files" / "news.docx").write_bytes(_docx())
    (root / "files" / "bridge.html").write_text(NEWS_PAGE, encoding="utf-8")
    settings = Settings(index_dir=root / "index", cache_dir=model_cache, generator="extractive")
    result = index_paths(settings, [root / "files"], real_embedder)
    assert sorted(result.stats.added) == ["files/bridge.html", "files/news.docx"] and not result.failed
    return settings


@pytest.mark.parametrize(
    ("question", "answer", "doc_id", "title"),
    [
        ("株洲市今年新建了多少座公交候车亭？", "126", "files/news.docx", "株洲公交提质升级 候车更舒适出行更绿色"),
        ("渌江大桥全长多少公里？", "1.2", "files/bridge.html", "渌江大桥建成通车"),
    ],
)
def test_docx_and_web_pages_are_answerable(
    formats_index: Settings, real_embedder: Any, question: str, answer: str, doc_id: str, title: str
) -> None:
    from rag.answer.generators import Generators
    from rag.answer.stream import Answerer, Query
    from rag.service import open_pipeline

    answerer = Answerer(open_pipeline(formats_index, real_embedder), Generators(formats_index), formats_index)
    result = answerer.open(Query(question)).answer()
    assert not result.abstained and answer in result.text
    assert (result.citations[0].doc_id, result.citations[0].title) == (doc_id, title)
