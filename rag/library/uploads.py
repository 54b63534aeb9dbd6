"""The uploads folder and the index, kept in step through a journal.

A change is written down before it starts and crossed out when it is whole:

    put     the new bytes go to a hidden staging file, the journal names it, the index
            is updated (a new version, atomically), the staging file replaces the upload,
            the journal is removed;
    delete  the journal names the document, the index drops it, the file goes, the
            journal is removed.

After a crash, ``recover`` reads the journal and asks the index which side of its
atomic switch the change reached: a put the index holds (same content hash) is rolled
forward (the staging file moved into place); one it does not hold is rolled back (the
staging file removed, the old file kept, which is what the index still serves). A delete
the index has done loses its file too; otherwise the file stays. Either way the folder
and the index agree again. Hidden files (staging, journal) are never indexed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.fileio import fsync_dir, write_atomically
from rag.index.snapshot import load_manifest
from rag.ingest.loaders import content_hash

logger = logging.getLogger(__name__)

JOURNAL = ".journal.json"
_STAGED = ".staged-"
_TEMP = ".upload-"


@dataclass(frozen=True)
class Change:
    """One journalled change: ``put`` (with the staged bytes' content hash) or ``delete``."""

    op: str
    name: str
    doc_id: str
    content_hash: str = ""
    staged: str = ""


class UploadFolder:
    """Uploaded files whose every change reaches the folder and the index together."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def journal(self) -> Path:
        return self.folder / JOURNAL

    def _begin(self, change: Change) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self.journal, json.dumps(vars(change), ensure_ascii=False).encode(), _TEMP)

    def _end(self) -> None:
        self.journal.unlink(missing_ok=True)
        fsync_dir(self.folder)

    def put(self, name: str, doc_id: str, data: bytes, content_hash: str, update_index: Callable[[], object]) -> None:
        """Store ``data`` as ``name`` and run ``update_index``; on an error neither changes."""
        staged = _STAGED + hashlib.sha256(name.encode()).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self.folder / staged, data, _TEMP)
        self._begin(Change("put", name, doc_id, content_hash, staged))
        try:
            update_index()
        except BaseException:
            (self.folder / staged).unlink(missing_ok=True)
            self._end()
            raise
        os.replace(self.folder / staged, self.folder / name)
        fsync_dir(self.folder)
        self._end()

    def delete(self, name: str | None, doc_id: str, update_index: Callable[[], object]) -> None:
        """Run ``update_index`` (which drops ``doc_id``), then remove its file ``name`` (if it
        is an upload); on an error neither changes."""
        self._begin(Change("delete", name or "", doc_id))
        try:
            update_index()
        except BaseException:
            self._end()
            raise
        if name:
            (self.folder / name).unlink(missing_ok=True)
        self._end()

    def recover(self, indexed: dict[str, str] | None) -> str:
        """Finish or undo a change a crash interrupted, given the index's document content
        hashes (``None``: no index). Returns what was done, or an empty string."""
        done = ""
        if self.journal.exists():
            try:
                change = Change(**json.loads(self.journal.read_text(encoding="utf-8")))
            except (ValueError, TypeError) as exc:  # a journal cut short: its change never began
                logger.warning("%s is unreadable (%s); removing it", self.journal, exc)
                change = None
            if change is not None:
                done = self._replay(change, indexed or {})
                logger.warning("recovered an interrupted change: %s", done)
            self._end()
        for leftover in [*self.folder.glob(_STAGED + "*"), *self.folder.glob(_TEMP + "*")]:
            with contextlib.suppress(OSError):
                leftover.unlink()
        return done

    def _replay(self, change: Change, indexed: dict[str, str]) -> str:
        target = self.folder / change.name
        if change.op == "put":
            staged = self.folder / change.staged
            if indexed.get(change.doc_id) == change.content_hash:
                if staged.exists():
                    os.replace(staged, target)
                    fsync_dir(self.folder)
                return f"{change.name}: the index holds the upload; the file was put in place"
            staged.unlink(missing_ok=True)
            return f"{change.name}: the index never held the upload; the folder was left as it was"
        if change.doc_id not in indexed:
            if change.name:
                target.unlink(missing_ok=True)
                fsync_dir(self.folder)
            return f"{change.name or change.doc_id}: the index had dropped it; its file was removed"
        return f"{change.name or change.doc_id}: the index still holds it; it was kept"


def uploads_agree(documents: Path, index: Path) -> tuple[bool, str]:
    """Do the uploaded files and the index's uploaded documents agree (names and content)?"""
    on_disk = {
        f"{documents.name}/{p.name}": content_hash(p.read_bytes())
        for p in (documents.iterdir() if documents.exists() else [])
        if p.is_file() and not p.name.startswith(".")
    }
    prefix = f"{documents.name}/"
    indexed = {k: v for k, v in load_manifest(index).document_hashes.items() if k.startswith(prefix)}
    return on_disk == indexed, f"{len(on_disk)} files, {len(indexed)} indexed uploads"
