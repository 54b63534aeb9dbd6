"""Chinese word segmentation: jieba, loaded once per process."""

from __future__ import annotations

import functools
import logging


@functools.cache
def segmenter() -> object:
    """jieba, initialised once per process (its dictionary takes a second to load)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba
