from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import httpx
import pytest

from eval.cli import main as eval_main
from eval.data import ROOT, Question
from eval.gate import STORED
from eval.report import summarise, write
from eval.runner import Config, Hit, HttpAsker, Reply, matrix, run_config, score
from rag.answer.retrieval import Pipeline
from rag.config import Settings
from rag.errors import RagError

Q_NUMBER = Question("q1", "凤凰县为多少名农民工追回了工资？", (("386",),), "number", "zh", ("凤凰纪委",))
Q_NONE = Question("q2", "北京的人口是多少？", (), "unanswerable", "zh")
FENGHUANG = Hit("seeds/page.txt", "凤凰纪委为农民工解“薪”愁")
OTHER = Hit("seeds/page.txt", "制造名城澎湃“绿动力”")


class FakeAsker:
    """Answers from a fixed table; raises for unknown questions like an unreachable server."""

    def __init__(self, replies: dict[str, Reply]) -> None:
        self.replies = replies

    def ask(self, question: str, config: Config, as_of: date | None = None, withheld: tuple[str, ...] = ()) -> Reply:
        if question not in self.replies:
            raise RagError("server unreachable")
        return self.replies[question]


def test_scoring_counts_abstaining_on_an_answerable_question_as_wrong() -> None:
    config = Config()
    right = score(Q_NUMBER, config, Reply("386 名", False, (OTHER, FENGHUANG), {"total_ms": 5.0}))
    assert right.correct and right.rank == 2 and 0 < right.f1 < 1 and not right.exact
    abstained = score(Q_NUMBER, config, Reply("没有找到", True, (FENGHUANG,), {}))
    assert not abstained.correct and abstained.f1 == 0.0
    wrong_number = score(Q_NUMBER, config, Reply("38 名", False, (FENGHUANG,), {}))
    assert not wrong_number.correct
    assert score(Q_NONE, config, Reply("没有找到", True, (), {})).correct
    assert not score(Q_NONE, config, Reply("2000 万", False, (), {})).correct


def test_run_summarise_and_write_reports(tmp_path: Path) -> None:
    asker = FakeAsker(
        {
            Q_NUMBER.question: Reply(
                "386 名", False, (FENGHUANG,), {"embed_ms": 10.0, "total_ms": 12.0}, cited=FENGHUANG.title
            ),
            Q_NONE.question: Reply("没有找到", True, (OTHER,), {"embed_ms": 9.0, "total_ms": 11.0}),
        }
    )
    config = Config()
    unreachable = Question("q3", "unknown?", (("x", "y"),), "number", "en", ("凤凰",))
    records = list(run_config(asker, [Q_NUMBER, Q_NONE, unreachable], config))
    assert records[2].error == "server unreachable" and not records[2].correct
    summary = summarise(config.label, records)
    assert summary.accuracy == pytest.approx(0.5)
    assert summary.overall == pytest.approx(2 / 3)
    assert summary.recall[1] == pytest.approx(0.5) and summary.mrr == pytest.approx(0.5)
    assert summary.abstain_precision == 1.0 and summary.abstain_recall == 1.0
    assert summary.latency_ms["total_ms"]["p50"] == pytest.approx(11.5)
    assert summary.by_category["number"] == 0.5 and summary.errors == 1
    assert summary.by_language == {"en": 0.0, "zh": 1.0}
    assert summary.counts["number"] == 2 and summary.counts["language:zh"] == 2
    paths = write(tmp_path, "tiny", [summary], records)
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["summaries"][0]["questions"] == 3
    report = paths["markdown"].read_text(encoding="utf-8")
    assert "| extractive/hybrid/k5/c300 | 3 | 50.0 |" in report
    # One row per question: what was expected beside what was answered, the verdict, the citation, the time.
    assert "| id | category | question | expected | answer | verdict | cited | ms |" in report
    assert (
        "| q1 | number | 凤凰县为多少名农民工追回了工资？ | 386 | 386 名 | right | 凤凰纪委为农民工解“薪”愁 | 12 |"
        in report
    )
    assert "| q2 | unanswerable | 北京的人口是多少？ | (none: abstain) | (abstained: ) | right (abstained) |" in report
    assert "| q3 | number | unknown? | x (or y) | (error: server unreachable) | error |" in report
    # Breakdowns carry their counts: one category scheme, the language apart.
    assert "| number | 2 | 50.0 |" in report and "| en | 1 | 0.0 |" in report
    assert paths["chart"].read_bytes().startswith(b"\x89PNG")


def test_matrix_is_every_combination() -> None:
    configs = matrix(["extractive", "openai"], [3, 5], [200, 300], 60, ["dense"])
    assert len(configs) == 8
    assert len({c.label for c in configs}) == 8
    assert all(c.chunk_overlap <= c.chunk_size // 2 for c in configs)


def test_http_asker_posts_to_the_question_endpoint() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/ask"
        assert request.headers["authorization"] == "Bearer k"
        seen.append(json.loads(request.content))
        body = {
            "answer": "386 名",
            "abstained": False,
            "citations": [{"doc_id": "d", "title": "凤凰纪委为农民工解“薪”愁"}],
            "timings_ms": {"total_ms": 7},
        }
        return httpx.Response(200, json=body)

    asker = HttpAsker("http://rag.test", api_key="k", transport=httpx.MockTransport(handler))
    reply = asker.ask(Q_NUMBER.question, Config(top_k=3))
    assert seen == [{"question": Q_NUMBER.question, "top_k": 3, "generator": "extractive", "retriever": "hybrid"}]
    assert reply.answer == "386 名" and reply.retrieved[0].title.startswith("凤凰")
    assert score(Q_NUMBER, Config(), reply).correct


def test_http_errors_become_failed_records() -> None:
    asker = HttpAsker("http://rag.test", transport=httpx.MockTransport(lambda _: httpx.Response(503, text="busy")))
    (record,) = run_config(asker, [Q_NUMBER], Config())
    assert "503" in record.error and not record.correct


def test_rag_eval_on_the_seed_set(
    tmp_path: Path, seed_settings: Settings, seed_pipeline: Pipeline, model_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    indexes = tmp_path / "indexes"
    shutil.copytree(seed_settings.index_dir, indexes / "seed-300-60")  # the session's seed index: nothing to embed
    monkeypatch.setenv("RAG_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("RAG_GENERATOR", "llama-cpp")  # rag eval's default is extractive whatever the server's is
    out = tmp_path / "report"
    argv = ["--indexes", str(indexes), "--out", str(out), "--no-progress"]
    assert eval_main(argv) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    (summary,) = results["summaries"]
    assert summary["questions"] == 108 and summary["config"].startswith("extractive/")
    # The figure stored for the gate (eval/gate.json): the same questions, the same answers.
    stored = json.loads(STORED.read_text(encoding="utf-8"))["accuracy"]["seed"]
    assert round(100 * summary["accuracy"], 1) == stored
    assert (out / "report.md").exists() and (out / "chart.png").exists()
    assert eval_main([*argv, "--retriever", "sparse"]) == 2
    assert eval_main([*argv, "--generator", "nope"]) == 2  # before any question is asked


def test_rag_eval_writes_its_report_outside_the_checkout_by_default(
    tmp_path: Path,
    seed_settings: Settings,
    model_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    indexes = tmp_path / "indexes"
    shutil.copytree(seed_settings.index_dir, indexes / "seed-300-60")
    monkeypatch.setenv("RAG_CACHE_DIR", str(model_cache))  # the session's throwaway cache
    assert eval_main(["--indexes", str(indexes), "--no-progress", "--limit", "2"]) == 0
    printed = capsys.readouterr().out
    report = Path(printed.split("report: ", 1)[1].splitlines()[0])
    assert report.is_file() and report.name == "report.md"
    assert ROOT not in report.parents
    assert report.parent.parent == model_cache / "eval" / "reports"
    shutil.rmtree(report.parent)


def test_a_missing_cjk_font_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import eval.scans

    monkeypatch.setattr(eval.scans, "_FONT_DIRS", (tmp_path,))
    with pytest.raises(SystemExit) as stopped:
        eval.scans.main(["seeds/hunan-daily-page.txt", "--out", str(tmp_path / "scan.pdf")])
    message = str(stopped.value.code)
    assert message.startswith("error: NotoSerifCJK-Regular.ttc not found") and "fonts-noto-cjk" in message
    assert "\n" not in message and not (tmp_path / "scan.pdf").exists()
