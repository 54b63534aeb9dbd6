"""What each language knows, one package per language (``zh``, ``en``): its rules as tables
(``rules.toml``, read by ``tables``) and the code that asks them. Shared code holds no
language literal."""

from __future__ import annotations

# The abstention, said in every language a question may come in: its Chinese sentence
# (without its full stop), then the whole text.
ABSTAIN_CHINESE = "文档中没有找到答案"
ABSTAIN_TEXT = f"{ABSTAIN_CHINESE}。The documents do not contain the answer."
# Questions of both languages and lengths: the ONNX export's agreement check (rag.models.onnx).
SAMPLE_QUESTIONS = (
    "凤凰县为多少名农民工追回了拖欠工资？",
    "How many workers did Fenghuang recover wages for?",
    "株洲市委书记是谁？",
    "What share of Zhuzhou's days had good air quality last year, and how did that compare?",
)
# A question that touches every step of retrieval once, asked before the first real one.
WARM_UP_QUESTION = "How many workers? 多少名工人？"
