"""Fakes shared by the tests: a stand-in for llama_cpp.Llama, an OpenAI-compatible server over
httpx.MockTransport, and the request every generator test asks."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from rag.answer.analysis import read_question
from rag.answer.generators.llama_cpp import LlamaCppGenerator
from rag.answer.generators.openai_compat import Backend, OpenAICompatGenerator
from rag.types import Chunk, GenerationRequest, Passage, ScoredSentence, TextBox

FENGHUANG = "今年来，该县共办理拖欠农民工工资案件 32 起，为 386 名农民工追回拖欠工资 500 余万元。"
FENGHUANG_TITLE = "凤凰纪委为农民工解“薪”愁"
ZHUZHOU = "去年，株洲市空气质量优良天数达到 326 天。"


def two_passages(question: str, background: float = 0.70, names: tuple[str, ...] = ()) -> GenerationRequest:
    """A Zhuzhou passage ranked first and the Fenghuang passage second, with one sentence each."""
    texts = [("株洲", "制造名城澎湃“绿动力”", ZHUZHOU), ("凤凰", FENGHUANG_TITLE, FENGHUANG)]
    passages = tuple(
        Passage(Chunk(f"{doc}#0", doc, title, text, 100 * n, 100 * n + len(text)), 0.86 - 0.02 * n)
        for n, (doc, title, text) in enumerate(texts)
    )
    sentences = tuple(
        ScoredSentence(n, text, 100 * n, 100 * n + len(text), 0.85 - 0.02 * n) for n, (_, _, text) in enumerate(texts)
    )
    return GenerationRequest(read_question(question), passages, sentences, background=background, names=names)


class FakeLlama:
    """Stands in for llama_cpp.Llama: streams a fixed reply in pieces (one sampled token each),
    records the prompts, and samples through ``self.sample`` with ``n_tokens`` as llama-cpp-python
    does (the prompt is in the context at the first sample; the end-of-generation token is sampled too)."""

    def __init__(self, reply: list[str], prompt_tokens: int = 120) -> None:
        self.reply = reply
        self.prompt_tokens = prompt_tokens
        self.prompts: list[list[dict[str, str]]] = []
        self.closed = False
        self.sent = 0
        self.n_tokens = 0

    def sample(self) -> int:
        return 0

    def create_chat_completion(self, messages: list[dict[str, str]], **_: Any) -> Iterator[dict[str, Any]]:
        self.prompts.append(messages)
        self.n_tokens = self.prompt_tokens
        try:
            for piece in self.reply:
                self.sample()
                self.n_tokens += 1
                self.sent += 1
                yield {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
            self.sample()  # the end-of-generation token
            yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}
        finally:
            self.closed = True


def llama_with(fake: FakeLlama) -> LlamaCppGenerator:
    """The llama-cpp generator with the fake in place of the loaded model."""
    generator = LlamaCppGenerator(Path("/nowhere.gguf"))
    generator._counter.wrap(fake)
    generator._llm = fake
    return generator


def sse(pieces: list[str], usage: tuple[int, int] | None = None) -> bytes:
    """An OpenAI-compatible event stream of the pieces (and a final usage chunk)."""
    events: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces
    ]
    if usage:
        events.append({"choices": [], "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}})
    lines = [f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events] + ["data: [DONE]\n\n"]
    return "".join(lines).encode()


def openai_with(handler: Any, sleeps: list[float] | None = None) -> OpenAICompatGenerator:
    backend = Backend("http://llm.test/v1", "qwen", api_key="k", retries=2, backoff_s=0.1)
    return OpenAICompatGenerator(
        backend, transport=httpx.MockTransport(handler), sleep=(sleeps if sleeps is not None else []).append
    )


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


class RecordingStream(httpx.SyncByteStream):
    """A response body streamed chunk by chunk, which records how much was read and whether it was closed."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.read = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk

    def close(self) -> None:
        self.closed = True


def sse_chunks(pieces: list[str]) -> list[bytes]:
    """One event-stream chunk per piece (then [DONE]), to stream through RecordingStream."""
    body = [
        f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': p}}]}, ensure_ascii=False)}\n\n"
        for p in pieces
    ]
    return [line.encode() for line in [*body, "data: [DONE]\n\n"]]


@contextlib.contextmanager
def fake_llm_server(replies: dict[str, str], delay_s: float = 0.0, piece_s: float = 0.05) -> Iterator[str]:
    """tests/fake_llm_server.py as a real process on a free loopback port; yields its /v1 base URL."""
    options = ["--replies", json.dumps(replies), "--delay", str(delay_s), "--piece", str(piece_s)]
    with _server_process("tests.fake_llm_server", options) as base:
        yield base


@contextlib.contextmanager
def embedding_server(*options: str) -> Iterator[str]:
    """tests/embedding_server.py as a real process on a free loopback port; yields its /v1 base URL."""
    with _server_process("tests.embedding_server", list(options)) as base:
        yield base


@contextlib.contextmanager
def _server_process(module: str, options: list[str], start_s: float = 60) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen([sys.executable, "-m", module, "--port", str(port), *options], cwd=root)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + start_s
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{module} did not start")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


class ScriptedOcr:
    """Stands in for an OCR engine over a generated scan (eval.scans): it knows what was
    printed on each page and returns those lines as boxes, scaled to the image it is given.
    The page is recognised by its look (a small thumbnail), so the order pages are read in
    does not matter; ``calls`` counts the pages read."""

    name = "scripted"

    def __init__(self, scan: Any, fail_after: int | None = None) -> None:
        from PIL import Image

        self.scan = scan
        self.calls = 0
        self.fail_after = fail_after
        self._thumbs = [_thumb(Image.fromarray(_rgb(page))) for page in scan.pages]

    def read(self, image: Any) -> list[TextBox]:
        import numpy as np
        from PIL import Image

        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("stopped by the test")
        self.calls += 1
        thumb = _thumb(Image.fromarray(np.asarray(image)))
        page = min(range(len(self._thumbs)), key=lambda n: float(np.abs(self._thumbs[n] - thumb).mean())) + 1
        width, height = self.scan.pages[page - 1].size
        sx, sy = image.shape[1] / width, image.shape[0] / height
        return [
            TextBox(line.text, line.box[0] * sx, line.box[1] * sy, line.box[2] * sx, line.box[3] * sy, angle=line.angle)
            for line in self.scan.lines
            if line.page == page
        ]


def _rgb(image: Any) -> Any:
    import numpy as np

    return np.asarray(image.convert("RGB"))


def _thumb(image: Any) -> Any:
    import numpy as np

    return np.asarray(image.convert("L").resize((32, 45)), dtype=np.float32)
