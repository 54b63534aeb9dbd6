"""Index contract and persistence tests on the fast hashing embedder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexCorrupt, IndexMismatch, IndexMissing
from rag.index.build import update_snapshot
from rag.index.embedded import FaissIndex
from rag.index.embedding import HashEmbedder
from rag.index.snapshot import check_compatible, current_version, load_snapshot, save_snapshot
from rag.ingest.loaders import parse_bytes
from rag.lang.zh.script import split_sentences
from rag.types import Chunk, Document


def _doc(doc_id: str, text: str) -> Document:
    return parse_bytes(text.encode(), doc_id, f"/nowhere/{doc_id}")


DOCS = [
    _doc("a.txt", "凤凰县纪委为 386 名农民工追回拖欠工资 500 余万元。"),
    _doc("b.txt", "株洲市空气质量优良天数达到 326 天，创历史新高。"),
    _doc("c.txt", "The Zixing museum opened in September 2010 and hosts student visits."),
]


def _build(embedder: HashEmbedder, docs: list[Document] = DOCS):  # type: ignore[no-untyped-def]
    return update_snapshot(None, docs, embedder, chunk_size=200, chunk_overlap=20)


def test_empty_index_search_returns_nothing() -> None:
    index = FaissIndex(8)
    assert len(index) == 0
    assert index.search(np.ones(8, dtype=np.float32), 5) == []


def test_each_document_finds_itself_first(hash_embedder: HashEmbedder) -> None:
    snapshot, _ = _build(hash_embedder)
    for doc in DOCS:
        hits = snapshot.store.dense_search(hash_embedder.embed_query(doc.text), 3)
        assert snapshot.chunks[hits[0][0]].doc_id == doc.doc_id
        assert hits[0][1] == pytest.approx(max(score for _, score in hits))


def test_save_load_round_trip(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    snapshot, _ = _build(hash_embedder)
    save_snapshot(snapshot, tmp_path)
    loaded = load_snapshot(tmp_path)
    assert loaded.manifest == snapshot.manifest
    assert loaded.chunks == snapshot.chunks
    assert loaded.sentences == snapshot.sentences
    assert loaded.documents == snapshot.documents
    np.testing.assert_allclose(loaded.chunk_vectors(), snapshot.chunk_vectors())
    # sentence vectors are kept as float16, memory-mapped
    assert isinstance(loaded.sentence_vectors, np.memmap) and loaded.sentence_vectors.dtype == np.float16
    np.testing.assert_allclose(loaded.sentence_vectors, snapshot.sentence_vectors, atol=1e-3)


def test_manifest_records_model_dimension_chunker_and_hashes(hash_embedder: HashEmbedder) -> None:
    snapshot, _ = _build(hash_embedder)
    m = snapshot.manifest
    assert (m.embedding_model, m.dimension, m.chunk_size, m.chunk_overlap) == ("hash-64", 64, 200, 20)
    assert m.document_hashes == {d.doc_id: d.content_hash for d in DOCS}


def test_unchanged_documents_are_not_embedded_again(hash_embedder: HashEmbedder) -> None:
    first, stats = _build(hash_embedder)
    assert stats.added == ("a.txt", "b.txt", "c.txt")
    changed = _doc("b.txt", "株洲市空气质量优良天数达到 300 天。")
    new = _doc("d.txt", "韶山市盘活惠农补贴结转结余资金 311.78 万元。")
    second, stats = update_snapshot(first, [DOCS[0], changed, new], hash_embedder, 200, 20, drop=["c.txt"])
    assert stats.unchanged == ("a.txt",)
    assert stats.updated == ("b.txt",)
    assert stats.added == ("d.txt",)
    assert stats.removed == ("c.txt",)
    assert set(second.documents) == {"a.txt", "b.txt", "d.txt"}
    assert {c.doc_id for c in second.chunks} == {"a.txt", "b.txt", "d.txt"}
    # Kept vectors are carried over unchanged; the sentence table follows the chunk rows.
    a_rows = [i for i, c in enumerate(second.chunks) if c.doc_id == "a.txt"]
    np.testing.assert_allclose(second.chunk_vectors()[a_rows], first.chunk_vectors()[: len(a_rows)])
    for sentence in second.sentences:
        chunk = second.chunks[sentence.chunk_row]
        assert chunk.start <= sentence.start < sentence.end <= chunk.end
    embedded_only_changes = stats.embedded_texts
    _, again = update_snapshot(second, [DOCS[0], changed, new], hash_embedder, 200, 20)
    assert again.embedded_texts == 0 < embedded_only_changes


def test_chunker_change_rechunks_every_document(hash_embedder: HashEmbedder) -> None:
    first, _ = _build(hash_embedder)
    second, stats = update_snapshot(first, [], hash_embedder, chunk_size=100, chunk_overlap=10)
    assert set(second.documents) == {d.doc_id for d in DOCS}
    assert set(stats.updated) == {d.doc_id for d in DOCS}
    assert second.manifest.chunk_size == 100


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing, match="rag index"):
        load_snapshot(tmp_path / "nothing")


def test_corrupt_files_are_detected(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    snapshot, _ = _build(hash_embedder)
    folder = save_snapshot(snapshot, tmp_path)
    with (folder / "chunks.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("garbage\n")
    with pytest.raises(IndexCorrupt, match="--rebuild"):
        load_snapshot(tmp_path)


def test_corrupt_pointer_and_missing_version_are_detected(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    snapshot, _ = _build(hash_embedder)
    folder = save_snapshot(snapshot, tmp_path)
    (tmp_path / "CURRENT").write_text("../../etc", encoding="utf-8")
    with pytest.raises(IndexCorrupt):
        load_snapshot(tmp_path)
    (tmp_path / "CURRENT").write_text(folder.name, encoding="utf-8")
    (folder / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="manifest"):
        load_snapshot(tmp_path)


def test_other_embedding_model_is_a_mismatch(hash_embedder: HashEmbedder) -> None:
    snapshot, _ = _build(hash_embedder)
    check_compatible(snapshot.manifest, "hash-64", 64)
    with pytest.raises(IndexMismatch, match="RAG_EMBEDDING_MODEL"):
        check_compatible(snapshot.manifest, "intfloat/multilingual-e5-base", None)
    with pytest.raises(IndexMismatch):
        check_compatible(snapshot.manifest, "hash-64", 768)


def test_crash_mid_write_leaves_the_last_good_index(
    tmp_path: Path, hash_embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = _build(hash_embedder)
    save_snapshot(first, tmp_path)
    good = current_version(tmp_path)
    second, _ = update_snapshot(first, [_doc("d.txt", "新的文档内容。")], hash_embedder, 200, 20)

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_snapshot(second, tmp_path)
    monkeypatch.undo()
    assert current_version(tmp_path) == good
    assert set(load_snapshot(tmp_path).documents) == {d.doc_id for d in DOCS}
    assert not list(tmp_path.glob(".tmp-*"))
    save_snapshot(second, tmp_path)
    assert "d.txt" in load_snapshot(tmp_path).documents


def test_old_versions_are_pruned(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    snapshot, _ = _build(hash_embedder)
    for _ in range(4):
        save_snapshot(snapshot, tmp_path)
    assert len(list(tmp_path.glob("v-*"))) == 2
    assert current_version(tmp_path) == tmp_path / "v-000004"
    assert os.listdir(tmp_path)


def test_sentences_split_on_chinese_and_english_punctuation() -> None:
    chunk = Chunk("x:0", "x", "t", "第一句。第二句！Third one? 第四句", 10, 10 + 25)
    spans = split_sentences(chunk)
    texts = [chunk.text[s - 10 : e - 10] for s, e in spans]
    # JioNLP's coarse cut: Chinese stops end a sentence; an ASCII "?" before Chinese text does not.
    assert texts == ["第一句。", "第二句！", "Third one? 第四句"]


def test_large_corpora_get_an_ivf_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.index.embedded

    monkeypatch.setattr(rag.index.embedded, "IVF_FROM", 500)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    small, large = FaissIndex(16, vectors[:20]), FaissIndex(16, vectors)
    assert (small.kind, large.kind) == ("flat", "ivf")
    assert large.search(vectors[7], 1)[0][0] == 7
    large.save(tmp_path / "ivf.faiss")
    loaded = FaissIndex.load(tmp_path / "ivf.faiss")
    assert loaded.kind == "ivf" and len(loaded) == 2000
    assert loaded.search(vectors[7], 1)[0][0] == 7
    np.testing.assert_allclose(loaded.vectors()[7], vectors[7], rtol=1e-6)


def test_query_batcher_gives_each_thread_its_own_vector() -> None:
    import threading

    from rag.index.embedding import QueryBatcher

    calls: list[int] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return np.array([[float(len(t))] for t in texts], dtype=np.float32)

    batcher = QueryBatcher(encode, max_batch=4)
    results: dict[int, float] = {}

    def ask(n: int) -> None:
        results[n] = float(batcher.embed("x" * n)[0])

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(1, 21)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == {n: float(n) for n in range(1, 21)}
    assert sum(calls) == 20 and max(calls) <= 4

    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError, match="model crashed"):
        QueryBatcher(broken).embed("x")


def test_one_bad_text_fails_only_its_own_request_in_a_shared_batch() -> None:
    """Texts that share a model call are embedded again one by one when the call fails."""
    import threading

    from rag.index.embedding import QueryBatcher

    gate = threading.Event()
    batches: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        gate.wait(5)
        batches.append(texts)
        if any("\ud800" in t for t in texts):
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return np.array([[float(len(t))] for t in texts], dtype=np.float32)

    batcher = QueryBatcher(encode)
    results: dict[str, object] = {}

    def ask(text: str) -> None:
        try:
            results[text] = float(batcher.embed(text)[0])
        except UnicodeEncodeError as exc:
            results[text] = exc

    first = threading.Thread(target=ask, args=("warm",))
    first.start()  # holds the model until the gate opens, so the rest queue into one batch
    time.sleep(0.2)
    texts = ["a", "bb", "x\ud800", "ccc", "dddd"]
    threads = [threading.Thread(target=ask, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in [first, *threads]:
        thread.join(timeout=10)
    assert any(len(b) > 1 and "x\ud800" in b for b in batches)  # they did share a call
    assert isinstance(results.pop("x\ud800"), UnicodeEncodeError)
    assert results == {"warm": 4.0, "a": 1.0, "bb": 2.0, "ccc": 3.0, "dddd": 4.0}


class _CrashingEmbedder(HashEmbedder):
    """Embeds passages ``calls`` times, then fails as an interrupted build would."""

    def __init__(self, calls: int) -> None:
        super().__init__(64)
        self.calls = calls
        self.embedded: list[str] = []

    def embed_passages(self, texts: list[str], spans: list[list[tuple[int, int]]]):  # type: ignore[no-untyped-def]
        if self.calls == 0:
            raise KeyboardInterrupt
        self.calls -= 1
        self.embedded.extend(texts)
        return super().embed_passages(texts, spans)


def test_an_interrupted_build_resumes_without_re_embedding_finished_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag.index.build
    from rag.config import Settings
    from rag.library import index_documents

    monkeypatch.setattr(rag.index.build, "_EMBED_GROUP", 1)  # one document per group
    docs = [_doc(f"{n}.txt", f"第{n}篇文章：湘江边的第{n}个村庄修了新路。") for n in range(6)]
    settings = Settings(index_dir=tmp_path / "index", embedding_model="hash-64", chunk_size=200, chunk_overlap=20)
    seen: list[tuple[str, int, int]] = []
    with pytest.raises(KeyboardInterrupt):
        index_documents(settings, docs, _CrashingEmbedder(calls=4), progress=lambda *a: seen.append(a))
    assert ("embedding chunks", 4, 6) in seen and current_version(settings.index_dir) is None
    again = _CrashingEmbedder(calls=99)
    seen.clear()
    stats, version = index_documents(settings, docs, again, progress=lambda *a: seen.append(a))
    assert seen[:2] == [("embedding chunks", 4, 6), ("embedding chunks", 5, 6)]  # the rate counts this run only
    assert version is not None and stats.resumed == 4 and len(stats.added) == 6
    assert len(again.embedded) == 2 and all(("第4篇" in t or "第5篇" in t) for t in again.embedded)
    resumed = load_snapshot(settings.index_dir)
    clean, _ = update_snapshot(None, docs, HashEmbedder(64), 200, 20)
    np.testing.assert_allclose(resumed.chunk_vectors(), clean.chunk_vectors(), atol=1e-6)
    np.testing.assert_allclose(resumed.sentence_vectors, clean.sentence_vectors, atol=1e-3)
    assert not (settings.index_dir / ".resume").exists()  # each entry dropped once the version is live


def test_the_index_command_shows_progress_with_rate_and_time_left() -> None:
    import io

    from rag.cli import ProgressLine

    class _Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    plain = io.StringIO()
    progress = ProgressLine(plain, every_s=0.0)
    progress("reading files", 0, 0)
    for done in (0, 50, 100):
        progress("embedding chunks", done, 100)
    lines = plain.getvalue().splitlines()
    assert lines[0] == "reading files..." and "\r" not in plain.getvalue()
    assert lines[-1].startswith("embedding chunks: 100/100 (100%)") and "/s, done" in lines[-1]
    terminal = _Terminal()
    progress = ProgressLine(terminal)
    progress("embedding chunks", 0, 1000)
    time.sleep(0.3)
    progress("embedding chunks", 400, 1000)
    progress.close()
    drawn = terminal.getvalue()
    assert drawn.count("\r\x1b[2K") == 2 and drawn.endswith("\n")
    assert "400/1,000 (40%)" in drawn and "left" in drawn
