"""Documents keep their identity and survive crashes: upload names, two folders with one name,
a lost CURRENT pointer, and kill -9 at random moments during uploads and deletes."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from rag.answer.retrieval import Pipeline
from rag.config import Settings
from rag.library.uploads import uploads_agree
from tests.conftest import server_env


def test_upload_names_keep_their_identity(base: str) -> None:
    def upload(name: str, text: str = "资兴市新建了 5 个研学基地。", **params: str) -> httpx.Response:
        return httpx.post(f"{base}/api/documents", json={"name": name, "text": text}, params=params, timeout=60)

    long_name = "长" * 120 + ".txt"
    created = upload(long_name)
    assert created.status_code == 201 and created.json()["source"].endswith(".txt")
    files = {"file": ("x" * 300 + ".md", "# 标题\n\n资兴市新建了 6 个研学基地。".encode(), "text/markdown")}
    multipart = httpx.post(f"{base}/api/documents", files=files, timeout=60)
    assert multipart.status_code == 201 and multipart.json()["source"].endswith(".md")
    ids = [upload(name).json()["doc_id"] for name in ("a b.txt", "a?b.txt", "a_b.txt")]
    assert len(set(ids)) == 3
    assert upload("a\u0000b.txt").status_code == 422
    again = upload("a b.txt", "资兴市新建了 7 个研学基地。")
    assert again.status_code == 409 and "replace=true" in again.json()["message"]
    assert upload("a b.txt", "资兴市新建了 7 个研学基地。", replace="true").status_code == 201
    for doc_id in [*ids, created.json()["doc_id"], multipart.json()["doc_id"]]:
        assert httpx.delete(f"{base}/api/documents/{quote(doc_id)}", timeout=60).status_code == 204


def test_two_folders_with_one_name_are_not_one_document(tmp_path: Path, hash_embedder: Any) -> None:
    from rag.library import index_paths

    for side in ("A", "B"):
        (tmp_path / side / "news").mkdir(parents=True)
        (tmp_path / side / "news" / "x.txt").write_text(f"{side} 报道：今年新建了 3 座桥。", encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    result = index_paths(settings, [tmp_path / "A" / "news", tmp_path / "B" / "news"], hash_embedder)
    assert len(result.stats.added) == 1 and len(result.failed) == 1
    assert "same document id" in result.failed[0][1] and str(tmp_path / "A") in result.failed[0][1]


def test_a_lost_current_pointer_is_refused_not_replaced(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path, hash_embedder: Any
) -> None:
    from rag.errors import IndexCorrupt
    from rag.index.snapshot import load_snapshot
    from rag.ingest.loaders import parse_text
    from rag.library import index_documents

    shutil.copytree(seed_settings.index_dir, tmp_path / "index")
    (tmp_path / "index" / "CURRENT").unlink()
    versions = sorted(p.name for p in (tmp_path / "index").glob("v-*"))
    with pytest.raises(IndexCorrupt, match="CURRENT is missing"):
        load_snapshot(tmp_path / "index")
    settings = seed_settings.model_copy(update={"index_dir": tmp_path / "index"})
    document = parse_text("今年新建了 3 座桥。", "documents/one.txt", "one.txt", "h")
    with pytest.raises(IndexCorrupt):
        index_documents(settings, [document], hash_embedder)
    assert sorted(p.name for p in (tmp_path / "index").glob("v-*")) == versions  # nothing pruned


def crash_trials(settings: Settings, folder: Path, trials: int, seed: int) -> None:
    import random

    from api.process import server_process

    rng = random.Random(seed)
    env = server_env(settings, folder)
    documents = Path(env["RAG_DOCUMENTS_DIR"])
    for trial in range(trials):
        with server_process(env, folder / f"server-{trial}.log") as (url, server):
            agree, detail = uploads_agree(documents, Path(env["RAG_INDEX_DIR"]))
            assert agree, f"after restart {trial}: {detail}"

            def writes() -> None:
                with httpx.Client(base_url=url, timeout=60) as http:
                    for n in range(100):
                        name = f"doc-{rng.randrange(4)}.txt"
                        text = "。".join(f"资兴市第{n}批新建了{k}个研学基地" for k in range(rng.randrange(5, 60)))
                        try:
                            if rng.random() < 0.3:
                                http.delete(f"/api/documents/documents/{name}")
                            else:
                                http.post("/api/documents", json={"name": name, "text": text},
                                          params={"replace": "true"})  # fmt: skip
                        except httpx.HTTPError:
                            return

            writer = threading.Thread(target=writes, daemon=True)
            writer.start()
            time.sleep(rng.uniform(1.0, 6.0))
            server.kill()
            server.wait()
            writer.join(timeout=60)
    # One more start recovers whatever the last kill interrupted.
    with server_process(env, folder / "server-last.log"):
        pass
    agree, detail = uploads_agree(documents, Path(env["RAG_INDEX_DIR"]))
    assert agree, detail
    assert not list(documents.glob(".*"))  # no journal, staging or temporary file is left


def test_uploads_survive_kill_9_at_random_moments(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    crash_trials(seed_settings, tmp_path, trials=3, seed=13)


@pytest.mark.slow
def test_uploads_survive_kill_9_at_random_moments_20_times(
    seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    crash_trials(seed_settings, tmp_path, trials=20, seed=1313)
