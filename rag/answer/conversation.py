"""Follow-up questions made standalone from the conversation, before retrieval.

"那株洲呢？" after "凤凰县为多少名农民工追回了拖欠工资？" means "株洲为多少名农民工追回了拖欠工资？";
"And how much money was that?" after "How many workers did Fenghuang recover wages for?"
needs the earlier question's topic to retrieve anything. These rules cover the common
shapes without a model:

- a Chinese follow-up that only names something new (``那株洲呢？``, ``株洲呢``) takes the
  earlier question with its place (or, failing that, its first noun) replaced;
- any other short follow-up that names nothing of its own, or one that points back
  (``那``, ``这``, ``it``, ``that``, ``and ...``), gets the earlier question's names
  (places, organisations, people: ``凤凰县``, ``Fenghuang``), or its whole text when it
  names nothing; the follow-up keeps its own question form ("how much money", not the
  earlier "how many workers");
- "What about Zhuzhou?" takes the earlier English question with its first name replaced;
- a question that stands on its own is left alone.

With a language model at hand (the request's generator is ``llama-cpp`` or ``openai``),
the model rewrites the follow-up instead (``rewrite_messages``, with worked examples: the
1.5B default model echoed Chinese follow-ups without them). Its reply is checked: one
line, the follow-up's script, the follow-up's own names kept, not far longer than the
conversation. The rules take over when the reply fails a check, when it only repeats the
question, or when the model fails.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.answer.entities import chinese_names
from rag.errors import InvalidQuestion, RagError
from rag.lang.en.words import STOPWORDS
from rag.lang.prompts import REWRITE_FOLLOW_UP
from rag.lang.tables import alternation, pattern
from rag.lang.zh.script import HAN
from rag.lang.zh.segment import segmenter
from rag.text import invalid_character

logger = logging.getLogger(__name__)

# Chat messages in, the model's reply out (LlamaCppGenerator.chat, OpenAICompatGenerator.chat).
ChatFunction = Callable[[list[dict[str, str]]], str]

_CJK = re.compile(f"[{HAN}]")
# "那株洲呢？", "株洲呢", "那么株洲的呢" -> 株洲
_ONLY_NEW_SUBJECT = pattern("zh", "followup_new_subject", han=HAN)
# "What about Zhuzhou?", "And how about the Zhuzhou government?" -> Zhuzhou / the Zhuzhou government
_ONLY_NEW_SUBJECT_EN = re.compile(r"^(?:and\s+|so\s+)?(?:what|how)\s+about\s+(?P<subject>[^?]{1,40}?)\s*\??$", re.I)
_PRONOUNS_EN = frozenset({"it", "that", "this", "them", "those", "these", "there", "him", "her"})
_POINTS_BACK_ZH = pattern("zh", "followup_points_back")
_POINTS_BACK_EN = re.compile(
    r"^(?:and|also|what about|how about|then)\b|\b(?:it|its|that|those|these|this|they|them|there|he|she|his|her)\b",
    re.IGNORECASE,
)
_SHORT_ZH = 8
_SHORT_EN = 5
_REWRITE_TURNS = 4
_REWRITE_TURN_CHARS = 300
_REWRITE_SYSTEM = REWRITE_FOLLOW_UP
_LABELS = f"standalone question|rewritten question|question|{alternation('zh', 'rewrite_labels')}"
_LABEL = re.compile(rf"^(?:{_LABELS})\s*[:：]\s*", re.I)


@dataclass(frozen=True)
class Turn:
    """One earlier message."""

    role: str
    content: str


def validate_history(history: Sequence[Turn], max_turns: int, max_chars: int) -> tuple[Turn, ...]:
    """The last ``max_turns`` earlier turns (older ones are never read: a follow-up is
    rewritten from the last few), refused when one is too long or has a character that is
    not text, because the models read them like the question."""
    history = history[len(history) - max_turns :] if max_turns else ()
    for n, turn in enumerate(history):
        if len(turn.content) > max_chars:
            raise InvalidQuestion(
                f"earlier message {n + 1} of the last {len(history)} has {len(turn.content)} characters; "
                f"the limit is {max_chars}"
            )
        if (at := invalid_character(turn.content)) >= 0:
            raise InvalidQuestion(f"earlier message {n + 1} has an invalid character at position {at}; send UTF-8 text")
    return tuple(history)


def _previous_question(history: Sequence[Turn]) -> str:
    for turn in reversed(history):
        if turn.role == "user" and turn.content.strip():
            return turn.content.strip()
    return ""


def _replace_subject(previous: str, subject: str) -> str | None:
    """The earlier question with its place (else its first noun) replaced by ``subject``."""
    import jieba.posseg

    segmenter()
    words = [(w.word, w.flag) for w in jieba.posseg.cut(previous)]
    for wanted in ("ns", "nt", "nr", "n"):
        for n, (word, flag) in enumerate(words):
            if flag == wanted and word != subject:
                return "".join(w for w, _ in words[:n]) + subject + "".join(w for w, _ in words[n + 1 :])
    return None


def _latin_names(text: str) -> list[str]:
    """Capitalised words after the first word (names, in an English question)."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text)
    return list(dict.fromkeys(w for w in words[1:] if w[0].isupper() and w.lower() not in STOPWORDS))


def _topic(previous: str, question: str) -> str:
    """What the follow-up needs from the earlier question: its names it lacks, else all of it."""
    names = [n for n in chinese_names(previous) + _latin_names(previous) if n not in question]
    return " ".join(names) if names else previous


def rewrite_messages(question: str, history: Sequence[Turn]) -> list[dict[str, str]]:
    """Chat messages asking a model for the standalone form of ``question``."""
    lines = []
    for turn in [t for t in history if t.role in ("user", "assistant") and t.content.strip()][-_REWRITE_TURNS:]:
        speaker = "User" if turn.role == "user" else "Assistant"
        lines.append(f"{speaker}: {' '.join(turn.content.split())[:_REWRITE_TURN_CHARS]}")
    conversation = "\n".join(lines)
    prompt = f"Conversation:\n{conversation}\n\nLast question: {question}\n\nStandalone question:"
    return [{"role": "system", "content": _REWRITE_SYSTEM}, {"role": "user", "content": prompt}]


def accepted_rewrite(reply: str, question: str, history: Sequence[Turn], max_chars: int = 2000) -> str | None:
    """The model's rewrite, cleaned, or None when it does not look like the question rewritten."""
    line = next((ln.strip() for ln in reply.strip().splitlines() if ln.strip()), "")
    line = _LABEL.sub("", line).strip().strip("\"'“”「」`").strip()
    if not line or "NOT_FOUND" in line:
        return None
    # Another language would bring the answer back in it. An English rewrite may name a
    # Chinese place, but must be mostly Latin.
    cjk, latin = len(_CJK.findall(line)), len(re.findall(r"[A-Za-z]", line))
    if (cjk == 0) if _CJK.search(question) else (cjk > latin):
        return None
    budget = min(len(question) + len(_previous_question(history)) + 40, max_chars)
    if len(line) > budget:
        return None
    # The follow-up's own names must survive ("What about Zhuzhou?" is not the earlier question).
    if any(name not in line for name in chinese_names(question) + _latin_names(question)):
        return None
    return line


def standalone_question(
    question: str, history: Sequence[Turn], chat: ChatFunction | None = None, max_chars: int = 2000
) -> str:
    """The question as it should be retrieved, given the earlier turns (oldest first).

    ``chat``, when given, asks a language model first; the rules answer when it fails.
    A question over ``max_chars`` is returned as it is, for the pipeline to refuse, and no
    rewrite is longer than that.
    """
    question = question.strip()
    previous = _previous_question(history)
    if not question or not previous or question == previous or len(question) > max_chars:
        return question
    if chat is not None:
        try:
            rewritten = accepted_rewrite(chat(rewrite_messages(question, history)), question, history, max_chars)
        except RagError as exc:
            logger.warning("the model could not rewrite the follow-up (%s); using the rules", exc)
        else:
            # A model that leaves the question as it was may have missed a follow-up the rules see.
            if rewritten and _squeezed(rewritten) != _squeezed(question):
                return rewritten
    by_rules = _by_rules(question, previous)
    return by_rules if len(by_rules) <= max_chars else question


def _squeezed(text: str) -> str:
    return re.sub(r"[\s？?。.!！]", "", text).lower()


def _by_rules(question: str, previous: str) -> str:
    if _CJK.search(question):
        match = _ONLY_NEW_SUBJECT.match(question)
        if match:
            replaced = _replace_subject(previous, match.group("subject"))
            if replaced:
                return replaced
        short = len(_CJK.findall(question)) <= _SHORT_ZH and not chinese_names(question)
        if short or _POINTS_BACK_ZH.search(question):
            return f"{_topic(previous, question)} {question}"
        return question
    match = _ONLY_NEW_SUBJECT_EN.match(question)
    names = _latin_names(" " + previous)  # the first word counts here: "Fenghuang's ..."
    if match and names and match.group("subject").lower() not in _PRONOUNS_EN:
        return re.sub(rf"\b{re.escape(names[0])}\b", match.group("subject"), previous, count=1)
    words = re.findall(r"[A-Za-z0-9']+", question)
    if len(words) <= _SHORT_EN or _POINTS_BACK_EN.search(question):
        return f"{question} ({_topic(previous, question)})"
    return question
