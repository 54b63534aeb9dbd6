"""Chinese words that questions and the text answering them share (tables of ``rules.toml``)."""

from __future__ import annotations

from rag.lang.tables import alternation, pattern

# Titles a person is named after in news (局长莫雄).
TITLES = alternation("zh", "titles")
# Words between what is said and the figure: 增量为, 下调至, 分别达到.
FILLER_END = pattern("zh", "filler_end")
