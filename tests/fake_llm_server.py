"""A scripted OpenAI-compatible chat server, run as a real process on loopback for end-to-end tests.

``python -m tests.fake_llm_server --port N --replies '{"Fenghuang": "... [2]."}' --delay 1.5``

It answers ``POST /v1/chat/completions`` (streamed or not) with the reply whose key appears in
the last user message (else ``NOT_FOUND``), after ``--delay`` seconds, word by word, and with a
usage chunk when the client asks for one. It stands in for a slow LLM server: what the service
does with a draft (preview, verification, markers) is then seen through every client.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JsonHandler(BaseHTTPRequestHandler):
    """HTTP/1.1, quiet, with a JSON reply: what the test servers' handlers share."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *_: Any) -> None:
        pass

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def make_handler(replies: dict[str, str], delay_s: float, piece_s: float) -> type[BaseHTTPRequestHandler]:
    stats = {"streams_finished": 0, "streams_cut": 0}

    class Handler(JsonHandler):
        def do_GET(self) -> None:
            if self.path.endswith("/stats"):  # how many streams ran to the end, and how many the client cut
                self._json(200, stats)
                return
            self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            question = request["messages"][-1]["content"].rsplit("Question:", 1)[-1]
            reply = next((text for key, text in replies.items() if key in question), "NOT_FOUND")
            pieces = re.findall(r"\S+\s*|\s+", reply)
            usage = {"prompt_tokens": len(question), "completion_tokens": len(pieces)}
            time.sleep(delay_s)
            if not request.get("stream"):
                message = {"role": "assistant", "content": reply}
                self._json(200, {"choices": [{"index": 0, "message": message}], "usage": usage})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            events = [{"choices": [{"index": 0, "delta": {"content": piece}}]} for piece in pieces]
            if (request.get("stream_options") or {}).get("include_usage"):
                events.append({"choices": [], "usage": usage})
            try:
                for event in events:
                    self._chunk(f"data: {json.dumps(event, ensure_ascii=False)}\n\n")
                    time.sleep(piece_s)
                self._chunk("data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                stats["streams_finished"] += 1
            except (BrokenPipeError, ConnectionResetError):
                stats["streams_cut"] += 1  # the client stopped reading: stop "generating"

        def _chunk(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replies", default="{}", help="JSON: substring of the question -> reply")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before the first word")
    parser.add_argument("--piece", type=float, default=0.05, help="seconds between words")
    args = parser.parse_args()
    handler = make_handler(json.loads(args.replies), args.delay, args.piece)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
