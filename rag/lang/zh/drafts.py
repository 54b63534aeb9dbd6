"""What a model is told to answer in Chinese, and what its Chinese draft says when it found no
answer (rag.answer.grounding withholds it)."""

from __future__ import annotations

# "Not mentioned", "no relevant", "cannot tell": the draft only says the passages do not say.
NO_ANSWER = (
    r"未(?:提及|提到|说明|给出|涉及)|没有(?:提及|提到|说明|给出|涉及|相关|找到)|无法(?:确定|回答|得知|找到|判断)|不清楚"
)
# The prompt's last instruction for a Chinese question (rag.answer.generators.prompting).
ANSWER_IN = "请用中文回答。"
