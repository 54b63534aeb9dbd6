"""The uploads journal: every point a crash can stop a change at is finished or undone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.library.uploads import JOURNAL, UploadFolder


class Crash(BaseException):
    """Stands for kill -9: nothing after it runs (the journal is written by hand below)."""


def _journal(folder: Path, **change: str) -> None:
    (folder / JOURNAL).write_text(json.dumps(change), encoding="utf-8")


def _visible(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir() if not p.name.startswith(".")}


@pytest.mark.parametrize(
    ("indexed", "expected"),
    [
        ({"documents/a.txt": "new"}, {"a.txt": "NEW"}),  # the index switched: roll forward
        ({"documents/a.txt": "old"}, {"a.txt": "OLD"}),  # it did not: roll back
    ],
)
def test_an_interrupted_replace_ends_on_the_side_the_index_reached(
    tmp_path: Path, indexed: dict[str, str], expected: dict[str, str]
) -> None:
    (tmp_path / "a.txt").write_text("OLD", encoding="utf-8")
    (tmp_path / ".staged-1").write_text("NEW", encoding="utf-8")
    _journal(tmp_path, op="put", name="a.txt", doc_id="documents/a.txt", content_hash="new", staged=".staged-1")
    assert UploadFolder(tmp_path).recover(indexed)
    assert _visible(tmp_path) == expected
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_interrupted_first_upload_is_undone_when_never_indexed(tmp_path: Path) -> None:
    (tmp_path / ".staged-1").write_text("NEW", encoding="utf-8")
    _journal(tmp_path, op="put", name="b.txt", doc_id="documents/b.txt", content_hash="new", staged=".staged-1")
    UploadFolder(tmp_path).recover({})
    assert _visible(tmp_path) == {}


@pytest.mark.parametrize(("indexed", "kept"), [({}, False), ({"documents/a.txt": "old"}, True)])
def test_an_interrupted_delete_ends_on_the_side_the_index_reached(
    tmp_path: Path, indexed: dict[str, str], kept: bool
) -> None:
    (tmp_path / "a.txt").write_text("OLD", encoding="utf-8")
    _journal(tmp_path, op="delete", name="a.txt", doc_id="documents/a.txt")
    UploadFolder(tmp_path).recover(indexed)
    assert ("a.txt" in _visible(tmp_path)) == kept


def test_a_failed_index_update_changes_nothing(tmp_path: Path) -> None:
    folder = UploadFolder(tmp_path)
    (tmp_path / "a.txt").write_text("OLD", encoding="utf-8")

    def fail() -> None:
        raise RuntimeError("embedding failed")

    with pytest.raises(RuntimeError):
        folder.put("a.txt", "documents/a.txt", b"NEW", "new", fail)
    with pytest.raises(RuntimeError):
        folder.delete("a.txt", "documents/a.txt", fail)
    assert _visible(tmp_path) == {"a.txt": "OLD"} and not (tmp_path / JOURNAL).exists()


def test_a_crash_during_the_index_update_leaves_a_journal_that_recovery_reads(tmp_path: Path) -> None:
    folder = UploadFolder(tmp_path)
    seen: list[tuple[dict[str, str], bytes]] = []

    def crash() -> None:
        change = json.loads((tmp_path / JOURNAL).read_text(encoding="utf-8"))
        seen.append((change, (tmp_path / change["staged"]).read_bytes()))
        raise Crash

    with pytest.raises(Crash):
        folder.put("a.txt", "documents/a.txt", b"NEW", "new", crash)
    assert seen and seen[0][0]["op"] == "put" and seen[0][1] == b"NEW"
    # (put's own clean-up ran here; after a real kill the journal above is what recovery finds.)


def test_an_unreadable_journal_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("OLD", encoding="utf-8")
    (tmp_path / JOURNAL).write_text('{"op": "pu', encoding="utf-8")
    UploadFolder(tmp_path).recover({"documents/a.txt": "old"})
    assert _visible(tmp_path) == {"a.txt": "OLD"} and not (tmp_path / JOURNAL).exists()
