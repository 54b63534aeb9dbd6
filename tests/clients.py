"""Every client of a running server, asking one question: what each shows, and its final answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Seen:
    """What one client mode showed (the answer text, or the joined stream), the raw bytes it
    received, its final answer's citations (titles), and usage."""

    text: str
    raw: str
    titles: list[str]
    abstained: bool
    usage: dict[str, Any]


def sse_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) of a Server-Sent Events body."""
    events = []
    for block in raw.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def ask_every_mode(base: str, question: str, generator: str | None = None, timeout: float = 300) -> dict[str, Seen]:
    """``/api/ask``, ``/api/ask/stream``, and ``/v1/chat/completions`` whole and streamed (with
    ``stream_options.include_usage``), through the official ``openai`` package for ``/v1``."""
    from openai import OpenAI

    payload: dict[str, Any] = {"question": question, **({"generator": generator} if generator else {})}
    seen: dict[str, Seen] = {}
    whole = httpx.post(f"{base}/api/ask", json=payload, timeout=timeout)
    body = whole.json()
    titles = [c["title"] for c in body["citations"]]
    seen["/api/ask"] = Seen(body["answer"], whole.text, titles, body["abstained"], body["usage"])

    with httpx.stream("POST", f"{base}/api/ask/stream", json=payload, timeout=timeout) as response:
        raw = "".join(response.iter_text())
    events = sse_events(raw)
    done = next(data for name, data in events if name == "done")
    tokens = "".join(data["text"] for name, data in events if name == "token")
    titles = [c["title"] for c in done["citations"]]
    seen["/api/ask/stream"] = Seen(tokens, raw, titles, done["abstained"], done["usage"])

    client = OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=timeout)
    model = generator or str(httpx.get(f"{base}/api/health", timeout=10).json()["generator"])
    messages: Any = [{"role": "user", "content": question}]
    completion = client.chat.completions.create(model=model, messages=messages)
    extra = completion.model_extra or {}
    usage = completion.usage.model_dump() if completion.usage else {}
    titles = [c["title"] for c in extra.get("citations", [])]
    content = completion.choices[0].message.content or ""
    seen["/v1"] = Seen(content, completion.model_dump_json(), titles, bool(extra.get("abstained")), usage)

    chunks = list(
        client.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
    extra = last.model_extra or {}
    usage = chunks[-1].usage.model_dump() if chunks[-1].usage else {}
    titles = [c["title"] for c in extra.get("citations", [])]
    raw = "\n".join(c.model_dump_json() for c in chunks)
    seen["/v1 stream"] = Seen(streamed, raw, titles, bool(extra.get("abstained")), usage)
    return seen
