"""The documentation agrees with the code: the settings table is generated from ``Settings``,
every setting says what it is for, relative links lead somewhere, and the README stays short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.config import Settings
from rag.settings_doc import BEGIN, END, main, settings_table

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The chat page's screenshot is made separately; drop it from here once it is committed.

_FENCE = re.compile(r"^```.*?^```[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"(!?)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def _prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where brackets are not links."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped, spaces as '-'."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_the_settings_page_holds_the_generated_table() -> None:
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert BEGIN in page and END in page, f"docs/settings.md lacks the {BEGIN} ... {END} markers"
    start = page.index(BEGIN) + len(BEGIN) + 1
    block = page[start : page.index(END, start)]
    assert block == settings_table(), (
        "docs/settings.md's settings table differs from rag.config.Settings: "
        "run `.venv/bin/python -m rag.settings_doc --write`"
    )


def test_every_setting_says_what_it_is_for() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not (field.description or "").strip()]
    assert not missing, f"give these fields a Field(description=...) in rag/config.py: {missing}"


def test_the_table_has_a_row_per_setting_in_class_order() -> None:
    rows = settings_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [f"RAG_{name.upper()}" for name in Settings.model_fields]
    by_name = {row.split("`")[1]: row for row in rows}
    assert "| (empty) |" in by_name["RAG_API_KEYS"]
    assert "| `~/.cache/rag` |" in by_name["RAG_CACHE_DIR"]
    assert "| `index` |" in by_name["RAG_INDEX_DIR"]


def test_write_puts_the_table_between_the_markers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "settings.md"
    page.write_text(f"# Settings\n\nbefore\n\n{BEGIN}\n| stale |\n{END}\n\nafter\n", encoding="utf-8")
    assert main(["--write", "--page", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == f"# Settings\n\nbefore\n\n{BEGIN}\n{settings_table()}{END}\n\nafter\n"
    capsys.readouterr()
    assert main([]) == 0
    assert capsys.readouterr().out == settings_table()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files_and_headings(page: Path) -> None:
    broken = []
    for _image, target in _LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists():
            broken.append(f"{target}: no such file")
            continue
        if anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_the_docs_index_lists_every_page() -> None:
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    unlisted = [
        p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "README.md" and f"]({p.name})" not in index
    ]
    assert not unlisted, f"add a line for each to docs/README.md: {unlisted}"


def test_the_readme_is_short_and_names_the_essentials() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 250
    for needed in ("--index-dir", "make run", "make test", "/v1", "/api/ask"):
        assert needed in text, f"README.md should mention {needed}"


def test_the_documented_eval_set_example_loads(tmp_path: Path) -> None:
    from eval.data import load_dataset

    text = (ROOT / "docs" / "eval.md").read_text(encoding="utf-8")
    section = text.split("Your own questions about your own documents", 1)[1]
    passages, questions = re.findall(r"```json\n(.*?)```", section, re.S)[:2]
    (tmp_path / "passages.jsonl").write_text(passages, encoding="utf-8")
    (tmp_path / "qa.jsonl").write_text(questions, encoding="utf-8")
    data = load_dataset(str(tmp_path))
    assert len(data.passages) == 1 and [q.answerable for q in data.questions] == [True, False]
    assert data.questions[0].category == "number" and data.questions[0].gold_pids == ("bridges-1",)
