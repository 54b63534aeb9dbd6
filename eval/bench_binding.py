"""What entity binding costs and what it prevents, through the service's own answer path.

``python -m eval.bench_binding [--data ../shared/data/cmrc2018] [--limit N]``

Every question of the set is answered (extractive generator) with ``RAG_ENTITY_BINDING``
on and off. Then each answerable question that names a place (or organisation) its gold
passage names gets that name swapped for one its gold passage does not name:

- *in corpus*: a name another question of the set gives (the corpus has other passages
  about it);
- *absent*: a Chinese city the corpus never mentions.

A swapped question asks about something the gold passage does not cover, so an answer to
it is almost always false (a few may be answered by another passage about the new name).
The report counts them with binding on and off. Index: the eval index of the set
(``eval/.indexes/``, built by ``rag eval --data ...`` if missing).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from eval.data import ROOT, SEED_DOCS, Dataset, Question, load_dataset
from eval.metrics import answer_found, without_markers
from eval.runner import Config, prepare_index
from rag.answer.analysis import read_question
from rag.answer.entities import bound_names, names_in
from rag.answer.generators import Generators
from rag.answer.stream import Answerer, Query
from rag.config import Settings
from rag.errors import RagError
from rag.service import make_embedder, open_pipeline

# Prefecture-level cities, from which the absent names are drawn (those the corpus never mentions).
CITIES = """长沙市 株洲市 岳阳市 常德市 衡阳市 邵阳市 郴州市 永州市 怀化市 娄底市 益阳市 湘潭市 张家界市 南昌市
赣州市 九江市 合肥市 芜湖市 洛阳市 开封市 襄阳市 宜昌市 荆州市 柳州市 桂林市 遵义市 曲靖市 绵阳市 宜宾市 泸州市 南充市
德阳市 汕头市 湛江市 佛山市 东莞市 惠州市 中山市 珠海市 温州市 嘉兴市 湖州市 绍兴市 金华市 台州市 扬州市 镇江市 常州市
无锡市 徐州市 盐城市 淮安市 烟台市 潍坊市 临沂市 济宁市 淄博市 保定市 唐山市 邯郸市 沧州市 大同市 包头市 大庆市 鞍山市
锦州市""".split()


@dataclass(frozen=True)
class Outcome:
    """Answers to one list of questions under one setting."""

    asked: int
    abstained: int
    correct: int


def gold_text(dataset: Dataset, question: Question) -> str:
    """The text the question was written from: its gold passages (the seed page for the seed set)."""
    by_pid = {p.pid: f"{p.title}\n{p.text}" for p in dataset.passages}
    if by_pid:
        return "\n".join(by_pid.get(pid, "") for pid in question.gold_pids)
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(SEED_DOCS.glob("*.txt")))


def swapped(dataset: Dataset, seed: int = 7) -> dict[str, list[Question]]:
    """Questions with a name of their gold passage swapped for one it does not name (see the module doc)."""
    rng = random.Random(seed)
    corpus = "\n".join(f"{p.title}\n{p.text}" for p in dataset.passages) or gold_text(dataset, dataset.questions[0])
    absent = [city for city in CITIES if not names_in(city, corpus)]
    asked = [q for q in dataset.questions if q.answerable and q.question.strip()]
    named = {q.qid: bound_names(read_question(q.question).name_candidates, []) for q in asked}
    pool = list(dict.fromkeys(name for names in named.values() for name in names if names_in(name, corpus)))
    out: dict[str, list[Question]] = {"in corpus": [], "absent": []}
    for q in asked:
        gold = gold_text(dataset, q)
        mine = [name for name in named[q.qid] if name in q.question and names_in(name, gold)]
        if not mine:
            continue
        for kind, names in (("in corpus", pool), ("absent", absent)):
            others = [n for n in names if not names_in(n, gold) and not names_in(mine[0], n)]
            if others:
                text = q.question.replace(mine[0], rng.choice(others), 1)
                out[kind].append(Question(f"{q.qid}-swap", text, (), "swap", q.lang))
    return out


def answer_all(answerer: Answerer, questions: Iterable[Question]) -> Outcome:
    asked = abstained = correct = 0
    for question in questions:
        asked += 1
        try:
            answer = answerer.ask(Query(question.question, generator="extractive"))
        except RagError:
            abstained += 1
            continue
        abstained += answer.abstained
        found = answer_found(without_markers(answer.text), question.answer_groups)
        correct += question.answerable and not answer.abstained and found
    return Outcome(asked, abstained, correct)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/cmrc2018")
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions of each list (0: all)")
    parser.add_argument("--indexes", type=Path, default=ROOT / "eval" / ".indexes")
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    base = Settings(generator="extractive")
    embedder = make_embedder(base)
    settings, _ = prepare_index(dataset, Config(), base, embedder, args.indexes, SEED_DOCS)
    pipeline = open_pipeline(settings, embedder)
    pipeline.warm_up()
    lists = {"questions": [q for q in dataset.questions if q.question.strip()], **swapped(dataset)}
    rows = ["| list | questions | binding | answered | abstained | correct |", "|---|---|---|---|---|---|"]
    result: dict[str, dict[str, object]] = {}
    for label, questions in lists.items():
        chosen = questions[: args.limit] if args.limit else questions
        for binding in (False, True):
            configured = settings.model_copy(update={"entity_binding": binding})
            outcome = answer_all(Answerer(pipeline, Generators(configured), configured), chosen)
            key = f"{label}, binding {'on' if binding else 'off'}"
            result[key] = vars(outcome)
            correct = str(outcome.correct) if label == "questions" else "–"
            rows.append(
                f"| {label} | {outcome.asked} | {'on' if binding else 'off'} | {outcome.asked - outcome.abstained} "
                f"| {outcome.abstained} | {correct} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    table = "\n".join(rows)
    print(table)
    out = ROOT / "eval" / "reports" / f"bench_binding-{dataset.name}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
    examples = {kind: [q.question for q in qs[:10]] for kind, qs in swapped(dataset).items()}
    out.with_suffix(".json").write_text(
        json.dumps({"results": result, "swapped_examples": examples}, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
