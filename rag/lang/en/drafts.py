"""What a model's English draft says when it found no answer, and the scales of English amounts
(rag.answer.grounding)."""

from __future__ import annotations

NO_ANSWER = (
    r"\bnot (?:mentioned|provided|specified|stated|given|found|available|included)\b"
    r"|\bno (?:information|mention|data)\b|\bdo(?:es)? not (?:mention|contain|provide|say|specify|state|include)\b"
    r"|\bcannot (?:be )?(?:determined?|found|answered?)\b|\bunable to\b"
)
SCALES = {"million": 10**6, "billion": 10**9}
# The prompt's last instruction for an English question about Chinese passages.
ANSWER_IN = "Answer in English, even though the passages are in Chinese."
