"""A real Milvus standalone server for the tests: ``python tests/milvus_server.py FOLDER PORT``.

Starts the registry's ``milvus`` package (Milvus 2.3.5) with its data in FOLDER and its
proxy on PORT, prints ``ready`` once it answers, and stops it when its standard input
closes (the test session ended, or died). Run as a process of its own, so that what the
package leaves behind (probe sockets, signal handlers) stays out of the test process.
"""

from __future__ import annotations

import sys

from milvus import MilvusServer


def main() -> int:
    folder, port = sys.argv[1], int(sys.argv[2])
    server = MilvusServer()
    server.set_base_dir(folder)
    server.listen_port = port
    server.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the test session closes it
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
