"""Pure metric functions, right for Chinese: characters, not whitespace tokens.

Peers' metrics fail on Chinese text: RAGAS' ROUGE strips non-ASCII characters and
FlashRAG's F1 splits on spaces, so a Chinese answer is a single token. Here answers are
compared as normalised character strings, and numbers only match as whole numbers.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence


def normalise(text: str) -> str:
    """Full-width to half-width (NFKC), every space removed, case folded."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()


def without_markers(answer: str) -> str:
    """The answer without its citation markers (``386 名 [1]`` -> ``386 名``)."""
    return re.sub(r"\s*\[\d{1,2}\]", "", answer).strip()


def _whole_number_at(text: str, start: int, end: int) -> bool:
    """Is text[start:end] not glued to more digits (or a decimal part) on either side?"""
    before = text[start - 1] if start > 0 else ""
    after = text[end : end + 2]
    if text[start].isdigit() and (before.isdigit() or (before == "." and start > 1 and text[start - 2].isdigit())):
        return False
    return not (text[end - 1].isdigit() and (after[:1].isdigit() or re.match(r"[.,]\d", after)))


def contains_answer(response: str, gold: str) -> bool:
    """Does the gold answer appear in the response, numbers matched as whole numbers?

    Gold ``8`` does not match ``386`` or ``18``; ``500余万元`` matches ``500 余万元``. A gold
    written as a sentence (``戈尔巴乔夫逝世。``) is matched without its closing stop.
    """
    text, target = normalise(response), normalise(gold).rstrip("。.!！")
    if not target:
        return False
    return any(_whole_number_at(text, m.start(), m.end()) for m in re.finditer(re.escape(target), text))


def answer_found(response: str, answer_groups: Sequence[Sequence[str]]) -> bool:
    """Every group is matched by at least one of its strings (the shared data format's rule)."""
    return bool(answer_groups) and all(any(contains_answer(response, g) for g in group) for group in answer_groups)


def shortest_gold(answer_groups: Sequence[Sequence[str]]) -> str:
    """The shortest gold string: the reference for F1 and exact match."""
    golds = [g for group in answer_groups for g in group]
    return min(golds, key=lambda g: len(normalise(g))) if golds else ""


def char_f1(response: str, gold: str) -> float:
    """F1 over the multiset of normalised characters."""
    pred, ref = Counter(normalise(response)), Counter(normalise(gold))
    common = sum((pred & ref).values())
    if common == 0:
        return 0.0
    precision = common / sum(pred.values())
    recall = common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def exact_match(response: str, gold: str) -> bool:
    """Normalised strings are equal."""
    return normalise(response) == normalise(gold)


def first_relevant_rank(relevant: Sequence[bool]) -> int | None:
    """1-based rank of the first relevant item in a ranked list, or None when there is none."""
    return next((rank for rank, flag in enumerate(relevant, start=1) if flag), None)


def recall_at_k(rank: int | None, k: int) -> float:
    """1.0 when the first relevant item is within the top k."""
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None) -> float:
    """1 / rank of the first relevant item (0 when none)."""
    return 1.0 / rank if rank else 0.0


def abstention_scores(abstained: Sequence[bool], answerable: Sequence[bool]) -> tuple[float, float]:
    """Precision and recall of abstaining, with the unanswerable questions as positives."""
    true_pos = sum(a and not ans for a, ans in zip(abstained, answerable, strict=True))
    predicted = sum(abstained)
    actual = sum(not ans for ans in answerable)
    precision = true_pos / predicted if predicted else float("nan")
    recall = true_pos / actual if actual else float("nan")
    return precision, recall


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; NaN for no values."""
    return sum(values) / len(values) if values else math.nan


# A yes/no answer says so in its first clause: "是的，…", "不是。…", "No, …".
_FIRST_CLAUSE = re.compile(r"^[^，。,.;；！？!?\n]*")
_NO = re.compile(r"不是|(?<!是)否|并非|不对|不相同|不一样|不同|没有|\bno\b|\bnot\b", re.I)
_YES = re.compile(r"是(?!否)|对|相同|一样|\byes\b", re.I)


def polarity(text: str) -> bool | None:
    """The yes (True) or no (False) of an answer's first clause, or None when it says neither."""
    first = _FIRST_CLAUSE.match(normalise(text))
    clause = first.group(0) if first else ""
    if _NO.search(clause):
        return False
    if _YES.search(clause):
        return True
    return None


def judgement_found(response: str, answer_groups: Sequence[Sequence[str]]) -> bool:
    """A yes/no question is answered right when the answer's yes or no is the gold one's; one
    whose gold says neither (a judgement question answered 无新增确诊病例) by containment."""
    gold = {polarity(g) for group in answer_groups for g in group} - {None}
    if not gold:
        return answer_found(response, answer_groups)
    said = polarity(response)
    return said is not None and gold == {said}
