"""Prompts whose worked examples are in several languages (the 1.5B default model echoed
Chinese follow-ups without Chinese examples)."""

from __future__ import annotations

# Asks a language model for the standalone form of a follow-up (rag.answer.conversation).
REWRITE_FOLLOW_UP = (
    "Rewrite the user's last question so that it can be understood without the conversation. "
    "Replace words such as it, that, there, 这, 那, 其 with what they refer to, and add the subject "
    "or place the question leaves out. A question that names a new place or subject keeps it. "
    "Keep the question's language. If the question already stands on its own, repeat it unchanged. "
    "Reply with the rewritten question only.\n\n"
    "Examples:\n"
    "Conversation: User: 长沙市去年新建了多少所学校？ Assistant: 12 所\n"
    "Last question: 那岳阳呢？\n"
    "Standalone question: 岳阳市去年新建了多少所学校？\n\n"
    "Conversation: User: 长沙市去年新建了多少所学校？ Assistant: 12 所\n"
    "Last question: 花了多少钱？\n"
    "Standalone question: 长沙市去年新建学校花了多少钱？\n\n"
    "Conversation: User: How many schools did Changsha build last year? Assistant: 12\n"
    "Last question: And what about Yueyang?\n"
    "Standalone question: How many schools did Yueyang build last year?\n\n"
    "Conversation: User: How many schools did Changsha build last year? Assistant: 12\n"
    "Last question: How much did they cost?\n"
    "Standalone question: How much did the schools Changsha built last year cost?"
)
