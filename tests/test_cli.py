"""The command line as a user runs it: in-process for speed, plus one real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag.answer.retrieval import Pipeline
from rag.cli import main
from rag.config import Settings
from tests.conftest import ROOT, SEED

QUESTION = "How many workers did Fenghuang recover wages for?"


@pytest.fixture
def env(tmp_path: Path, model_cache: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty index folder and a ``seeds`` folder holding a copy of the seed page."""
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("RAG_GENERATOR", "extractive")  # not the local LLM, where one is installed
    docs = tmp_path / "seeds"
    docs.mkdir()
    shutil.copy(SEED, docs / SEED.name)
    return docs


@pytest.fixture
def indexed(env: Path, seed_settings: Settings, seed_pipeline: Pipeline) -> Path:
    """``env`` with the session's seed index copied in (same document id and hash)."""
    shutil.copytree(seed_settings.index_dir, os.environ["RAG_INDEX_DIR"])
    return env


def test_ask_before_indexing_says_how_to_build(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", QUESTION]) == 2
    err = capsys.readouterr().err
    assert "no index" in err and "rag index" in err


def test_index_ask_info_and_incremental_update(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = indexed
    (env / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    (env / "broken.docx").write_bytes(b"PK\x03\x04")
    assert main(["index", str(env)]) == 0
    out, err = capsys.readouterr()
    assert "0 added" in out and "1 unchanged" in out
    assert "sheet.xlsx" in err and "unsupported" in err
    assert "broken.docx: not a Word .docx file" in err and "Traceback" not in err

    assert main(["ask", QUESTION, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) >= {"answer", "abstained", "citations", "timings_ms"}
    assert "386" in payload["answer"] and payload["abstained"] is False
    citation = payload["citations"][0]
    assert citation["title"] == "凤凰纪委为农民工解“薪”愁"
    assert {"doc_id", "title", "chunk_id", "text", "score", "start", "end"} <= set(citation)

    assert main(["info"]) == 0
    info = capsys.readouterr().out
    assert "seeds/hunan-daily-page.txt" in info and "凤凰纪委为农民工解“薪”愁" in info

    (env / "extra.md").write_text("# 补充\n\n凤凰县新建了 3 座桥。", encoding="utf-8")
    assert main(["index", str(env)]) == 0
    assert "1 added" in capsys.readouterr().out
    assert main(["ask", "凤凰县新建了几座桥？", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert "3" in payload["answer"] and payload["citations"][0]["doc_id"] == "seeds/extra.md"
    # A dateline gives the article its publication day, which the citation shows.
    (env / "extra.md").write_text("# 补充\n\n2024年5月1日，凤凰县新建了 3 座桥。", encoding="utf-8")
    assert main(["index", str(env)]) == 0
    capsys.readouterr()
    assert main(["ask", "凤凰县新建了几座桥？"]) == 0
    assert "(seeds/extra.md, published 2024-05-01," in capsys.readouterr().out
    (env / "extra.md").unlink()
    assert main(["index", str(env)]) == 0
    out = capsys.readouterr().out
    assert "1 removed" in out and "1 unchanged" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ask", "   "], "empty"),
        (["ask", QUESTION, "--top-k", "0"], "top-k"),
        (["ask", QUESTION, "--generator", "nope"], "extractive"),
        (
            ["ask", QUESTION, "--document", "nope.txt"],
            "--document 'nope.txt': no such document in the index; its ids: seeds/hunan-daily-page.txt",
        ),
    ],
)
def test_bad_input_is_a_clear_error(
    indexed: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_corrupt_index_says_how_to_rebuild(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = indexed
    index_dir = Path(os.environ["RAG_INDEX_DIR"])
    version = (index_dir / "CURRENT").read_text().strip()
    (index_dir / version / "chunks.faiss").write_bytes(b"not faiss")
    capsys.readouterr()
    assert main(["ask", QUESTION]) == 2
    assert "--rebuild" in capsys.readouterr().err
    assert main(["index", str(env), "--rebuild"]) == 0
    assert main(["ask", QUESTION]) == 0


def test_invalid_setting_is_reported(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "5000")
    assert main(["info"]) == 2
    assert "setting" in capsys.readouterr().err
    monkeypatch.setenv("RAG_TOP_K", "0")
    assert main(["info"]) == 2
    assert capsys.readouterr().err.startswith("error: RAG_TOP_K: ")  # the variable as the user sets it


@pytest.mark.parametrize("flag", ["--since", "--until", "--as-of"])
def test_a_bad_date_names_the_flag_and_the_format(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ask", QUESTION, flag, "2024-13-01"])
    assert f"argument {flag}: expected a date as YYYY-MM-DD (e.g. 2024-03-01), not '2024-13-01'" in (
        capsys.readouterr().err
    )


def test_a_closed_pipe_ends_quietly(indexed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rag info | head -1``: the reader is gone before rag writes; no traceback, exit 0."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "w", encoding="utf-8", buffering=1) as closed_pipe:  # each line written at once
        monkeypatch.setattr(sys, "stdout", closed_pipe)
        assert main(["info"]) == 0
        closed_pipe.write("x" * 100_000)  # what Python's exit would flush now goes nowhere
        closed_pipe.flush()


def test_installed_entry_point_runs(indexed: Path) -> None:
    rag = Path(sys.executable).parent / "rag"
    done = subprocess.run(
        [str(rag), "ask", "凤凰县为多少名农民工追回了拖欠工资？"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "386" in done.stdout


def test_eval_is_a_rag_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["eval", "--help"])
    assert done.value.code == 0
    assert "--generator" in capsys.readouterr().out


def test_index_dir_flag_picks_the_index(
    env: Path, seed_settings: Settings, seed_pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "my-index"
    shutil.copytree(seed_settings.index_dir, mine)
    # RAG_INDEX_DIR names an empty folder; the flag wins for every command it is given to.
    assert main(["info", "--index-dir", str(mine)]) == 0
    assert f"index: {mine}" in capsys.readouterr().out
    assert main(["ask", QUESTION, "--index-dir", str(mine)]) == 0
    assert "386" in capsys.readouterr().out
    # Only for the command it was given to.
    assert os.environ["RAG_INDEX_DIR"] == str(env.parent / "index")
    assert main(["info"]) == 2 and "no index" in capsys.readouterr().err
