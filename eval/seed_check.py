"""Answer every question of ``eval/seed_qa.jsonl`` in-process and print what happened.

A quick check used to choose the extractive generator's thresholds until the full eval
harness lands: ``python -m eval.seed_check`` (index the seeds first with ``make index``).
A gold answer counts when it appears in the answer after removing spaces and folding
case, with numbers matched whole (gold ``8`` does not match ``18``); an unanswerable
question counts when the service abstains.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

QUESTIONS = Path(__file__).resolve().parent / "seed_qa.jsonl"


def normalise(text: str) -> str:
    """Spaces removed, case folded."""
    return re.sub(r"\s+", "", text).casefold()


def found(answer: str, golds: list[str]) -> bool:
    """Does any gold answer appear in the answer, numbers matched whole?"""
    text = normalise(answer)
    for gold in map(normalise, golds):
        for match in re.finditer(re.escape(gold), text):
            before, after = text[match.start() - 1 : match.start()], text[match.end() : match.end() + 2]
            if gold[0].isdigit() and before.isdigit():
                continue
            if gold[-1].isdigit() and (after[:1].isdigit() or re.match(r"\.\d", after)):
                continue
            return True
    return False


def main() -> int:
    """Ask each question; print one line each and the totals by language."""
    from rag.config import Settings
    from rag.generators import create_generator
    from rag.service import open_pipeline

    settings = Settings()
    pipeline = open_pipeline(settings)
    generator = create_generator(settings.generator, settings)
    totals: dict[str, list[bool]] = {}
    for line in QUESTIONS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        answer = pipeline.ask(row["question"], settings.top_k, generator)
        ok = found(answer.text, row["answers"]) if row["answers"] else answer.abstained
        group = "unanswerable" if not row["answers"] else row["lang"]
        totals.setdefault(group, []).append(ok)
        print(f"{'ok ' if ok else 'BAD'} {row['id']} {row['question'][:40]} -> {answer.text[:40]}")
    for group, oks in sorted(totals.items()):
        print(f"{group}: {sum(oks)}/{len(oks)}")
    everything = [ok for oks in totals.values() for ok in oks]
    print(f"all: {sum(everything)}/{len(everything)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
