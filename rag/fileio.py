"""Small file helpers shared by the index, uploads and model provisioning."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a rename, a new or removed file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path, prefix: str = ".tmp-", sync: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` for the caller (or a library it calls) to write; when
    the block ends without an error it is renamed onto ``path``, so readers see the old file
    or the whole new one, never part of it; on an error it is removed. ``sync`` flushes the
    file and the folder to disk, so the rename survives a crash of the machine too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        if sync:
            with tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(path.parent)


def write_atomically(path: Path, data: bytes, prefix: str = ".tmp-", sync: bool = True) -> None:
    """``data`` at ``path`` whole or not at all (``atomic_path``). ``sync=False`` skips the
    fsyncs: whole or absent after a crash of the process, not always after one of the machine."""
    with atomic_path(path, prefix, sync) as tmp:
        tmp.write_bytes(data)
