"""A Milvus standalone server on loopback for the tests and the store benchmark.

``running_milvus(folder)`` starts the registry's ``milvus`` package (Milvus 2.3.5, an
embedded standalone server: etcd, MinIO-less local storage and the Milvus processes) with
its data in ``folder``, in a process of its own (``python -m eval.milvus_server FOLDER PORT``),
and yields its URI once it answers; the server stops when the block ends or the parent dies
(its standard input closes). What the package leaves behind (probe sockets, signal
handlers) stays out of the caller's process. The package binds etcd to port 2379, so one
such server runs on a machine at a time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class MilvusNotStarted(RuntimeError):
    """The server package is missing or the server did not start here (the message says why)."""


@contextlib.contextmanager
def running_milvus(folder: Path) -> Iterator[str]:
    """A Milvus server with its data in ``folder`` for the block: its ``http://127.0.0.1:PORT``."""
    if importlib.util.find_spec("milvus") is None:
        raise MilvusNotStarted("no Milvus server package: pip install -e '.[milvus]' installs milvus 2.3.5")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "eval.milvus_server", str(folder / "data"), str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=ROOT,
        )  # fmt: skip
        assert server.stdout is not None and server.stdin is not None
        line = server.stdout.readline()  # "ready", or nothing when it failed (within the package's 180 s)
        if line.strip() != b"ready":
            server.kill()
            server.wait()
            tail = (folder / "server.log").read_text(errors="replace")[-300:]
            raise MilvusNotStarted(f"the Milvus server did not start on this machine: {tail}")
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            from rag.index.milvus import close_all

            close_all()
            server.stdin.close()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            server.stdout.close()


def main() -> int:
    """The server process: start, print ``ready``, stop when standard input closes."""
    from milvus import MilvusServer

    folder, port = sys.argv[1], int(sys.argv[2])
    server = MilvusServer()
    server.set_base_dir(folder)
    server.listen_port = port
    server.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
