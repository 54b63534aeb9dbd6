"""Eval data sets: the seed questions, the shared passages+qa format, SQuAD-style JSON."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from rag.errors import RagError

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
SEED_QUESTIONS = ROOT / "eval" / "seed_qa.jsonl"
# Seed questions reworded (each row's paraphrase_of names its original), and some that the page
# does not answer: the same answers asked in other words (issue 26).
PARAPHRASE_QUESTIONS = ROOT / "eval" / "paraphrase_qa.jsonl"
SEED_DOCS = ROOT / "seeds"


class DatasetError(RagError):
    """An eval data file is missing or malformed."""


@dataclass(frozen=True)
class Question:
    """One eval question.

    A question is answerable when it has answer groups; every group must be matched
    and any string in a group matches it. ``gold_titles`` (articles) or ``gold_pids``
    (passages) say which retrieved chunks are relevant.
    """

    qid: str
    question: str
    answer_groups: tuple[tuple[str, ...], ...]
    category: str
    lang: str
    gold_titles: tuple[str, ...] = ()
    gold_pids: tuple[str, ...] = ()
    # ChronoQA's meta: entity, time, numerical, judgement or other; absolute, relative or
    # aggregate; whether one or several documents hold the answer.
    answer_type: str = ""
    temporal_type: str = ""
    documents: str = ""
    # The day the question is asked, which 去年 and 上周 count from (``--as-of-field``).
    as_of: date | None = None
    # Documents the question is asked without (``withheld_gold``): its own gold passages.
    withheld: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return bool(self.answer_groups)


@dataclass(frozen=True)
class Passage:
    """A passage of an external corpus, indexed as one document with id ``pid``."""

    pid: str
    text: str
    title: str


@dataclass(frozen=True)
class Dataset:
    """Questions and, for external data, the passages to index (the seed set uses seeds/)."""

    name: str
    questions: tuple[Question, ...]
    passages: tuple[Passage, ...] = ()


def _read_jsonl(path: Path) -> list[dict[str, object]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from exc
    rows = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{n}: expected a JSON object")
        rows.append(row)
    return rows


def _groups(raw: object, where: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(raw, list) or not all(isinstance(g, list) for g in raw):
        raise DatasetError(f"{where}: answer_groups must be a list of lists of strings")
    return tuple(tuple(str(s) for s in group) for group in raw if group)


def _strings(raw: object) -> tuple[str, ...]:
    return tuple(str(x) for x in raw) if isinstance(raw, list) else ()


def _language(text: str) -> str:
    return "en" if text.isascii() else "zh"


def load_seed(path: Path = SEED_QUESTIONS, name: str = "seed") -> Dataset:
    """The hand-written questions about the seed page (``name``: the set's name, which also names
    its eval index)."""
    questions = []
    for row in _read_jsonl(path):
        qid = str(row.get("qid", ""))
        title = row.get("gold_article")
        questions.append(
            Question(
                qid=qid,
                question=str(row["question"]),
                answer_groups=_groups(row.get("answer_groups", []), f"{path}:{qid}"),
                category=str(row.get("category", "other")),
                lang=str(row.get("lang") or _language(str(row["question"]))),
                gold_titles=(str(title),) if title else (),
            )
        )
    return Dataset(name, tuple(questions))


def _as_of(row: dict[str, object], field: str, where: str) -> date | None:
    """The date at a dotted path of a row (``meta.question_date``), or None without a path."""
    if not field:
        return None
    value: object = row
    for key in field.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        return None
    # Year, month and day however they are written: 2024-06-15, 2024-6-15, 2024-1月20日.
    parts = [int(n) for n in re.findall(r"\d+", str(value))[:3]]
    try:
        if len(parts) < 3 or parts[0] < 1000:
            raise ValueError(value)
        return date(*parts)
    except ValueError:
        # Third-party data has a few values that are no date at all ('o1-mini'): such a
        # question is asked as of today, as a client that sends no as_of would.
        logger.warning("%s: %s is %r, not a date; asking it as of today", where, field, value)
        return None


def load_shared(folder: Path, as_of_field: str = "") -> Dataset:
    """A folder in the shared format: ``passages.jsonl`` and ``qa.jsonl``; ``as_of_field``
    names the field that holds the day each question is asked."""
    passages = tuple(
        Passage(str(r["pid"]), str(r["text"]), str(r.get("title") or ""))
        for r in _read_jsonl(folder / "passages.jsonl")
    )
    questions = []
    qa_path = folder / "qa.jsonl"
    for row in _read_jsonl(qa_path) if qa_path.exists() else []:
        meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
        assert isinstance(meta, dict)
        question = str(row["question"])
        answer_type = str(meta.get("answer_type") or "")
        documents = str(meta.get("reference_document_count") or "")
        category = meta.get("category") or (f"{answer_type}, {documents}" if answer_type and documents else "")
        questions.append(
            Question(
                qid=str(row["qid"]),
                question=question,
                answer_groups=_groups(row.get("answer_groups", []), f"{qa_path}:{row.get('qid')}"),
                category=str(category or ("answerable" if row.get("answer_groups") else "unanswerable")),
                lang=_language(question),
                gold_pids=_strings(row.get("gold_pids")),
                answer_type=answer_type,
                temporal_type=str(meta.get("temporal_type") or ""),
                documents=documents,
                as_of=_as_of(row, as_of_field, f"{qa_path}:{row.get('qid')}"),
            )
        )
    return Dataset(folder.name, tuple(questions), passages)


def load_squad(path: Path) -> Dataset:
    """SQuAD-style JSON (CMRC 2018, DRCD): each paragraph's context becomes a passage."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read SQuAD-style JSON {path}: {exc}") from exc
    passages: list[Passage] = []
    questions: list[Question] = []
    for article in raw.get("data", []):
        title = str(article.get("title", ""))
        for n, paragraph in enumerate(article.get("paragraphs", [])):
            pid = str(paragraph.get("id") or f"{title}-{n}")
            passages.append(Passage(pid, str(paragraph["context"]), title))
            for qa in paragraph.get("qas", []):
                answers = sorted({str(a["text"]) for a in qa.get("answers", []) if a.get("text")})
                impossible = bool(qa.get("is_impossible")) or not answers
                questions.append(
                    Question(
                        qid=str(qa["id"]),
                        question=str(qa["question"]),
                        answer_groups=() if impossible else (tuple(answers),),
                        category="unanswerable" if impossible else "answerable",
                        lang=_language(str(qa["question"])),
                        gold_pids=(pid,),
                    )
                )
    return Dataset(path.stem, tuple(questions), tuple(passages))


def load_dataset(spec: str, as_of_field: str = "") -> Dataset:
    """``seed``, a shared-format folder, or a SQuAD-style ``.json`` file."""
    if spec == "seed":
        return load_seed()
    if spec == "paraphrase":
        return load_seed(PARAPHRASE_QUESTIONS, "paraphrase")
    path = Path(spec)
    if path.is_dir():
        if not (path / "passages.jsonl").exists():
            raise DatasetError(f"{path}: no passages.jsonl; expected the shared format (see ../shared/data/README.md)")
        return load_shared(path, as_of_field)
    if path.suffix == ".json":
        return load_squad(path)
    raise DatasetError(
        f"unknown data set {spec!r}: use 'seed', a folder with passages.jsonl and qa.jsonl, or a .json file"
    )


Half = str  # "tune" or "report"
HALVES = ("tune", "report")


def half_of(question: Question) -> Half:
    """The half of a dev set a question belongs to, by its documents: ``tune`` (rules and
    defaults are chosen on it) or ``report`` (left untouched; the README reports it). A passage
    is in a half by a stable hash of its id, so a document's questions never straddle the
    halves; a question whose answer spans several passages goes with its first one. Questions
    without gold passages (the seed set) are all ``tune``: the seed page is one document."""
    if not question.gold_pids:
        return "tune"
    digest = hashlib.sha256(question.gold_pids[0].encode()).digest()
    return HALVES[digest[0] & 1]


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def withheld_gold(dataset: Dataset, questions: Sequence[Question]) -> tuple[Question, ...]:
    """Unanswerable questions made from answerable ones: each is asked without its gold
    passages (``withheld``), as a user asks about an article the corpus lacks. A question
    stays only when no other passage of the corpus holds any of its answers, so abstaining
    is the one right reply."""
    gold = {pid for q in questions for pid in q.gold_pids}
    texts = {p.pid: _squeezed(f"{p.title}{p.text}") for p in dataset.passages}
    corpus = "\n".join(texts.values())
    kept = []
    for q in questions:
        if not (q.answerable and q.gold_pids and gold.issuperset(q.gold_pids)):
            continue
        answers = {_squeezed(a) for group in q.answer_groups for a in group if a.strip()}
        inside = [texts.get(pid, "") for pid in q.gold_pids]
        if any(corpus.count(a) > sum(t.count(a) for t in inside) for a in answers):
            continue  # another passage holds an answer: not unanswerable
        kept.append(replace(q, qid=f"{q.qid}-withheld", answer_groups=(), category="withheld", withheld=q.gold_pids))
    return tuple(kept)
