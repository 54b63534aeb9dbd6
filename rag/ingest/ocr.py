"""OCR engines: a page image in, the text lines printed on it out (``TextBox``, pixels).

The default, ``rapidocr``, is rapidocr-onnxruntime: PP-OCRv4's Chinese-and-English text
detector and recogniser, whose ONNX files ship inside its wheel, so it runs offline.
Detection runs on the page scaled to 2,000 pixels on its long side (the library's own
limit: on an A4 page lines are found as well as at full size, and far faster); recognition
reads each line from the full-size page. A large page with small type (a broadsheet) would
shrink its lines below what the detector finds reliably, so when the body type it found
is under ``MIN_TYPE_PIXELS`` at that scale, the page is read again with detection at the
scale that makes it ``TYPE_PIXELS`` (at most full size). The line-orientation
classifier is off: scanned pages are upright, and it costs time on every line. Engines are
picked by name (``make_ocr``).
"""

from __future__ import annotations

import math
import threading
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from rag.errors import ConfigError, ModelError
from rag.ingest.layout import page_scale
from rag.types import TextBox

Image = npt.NDArray[np.uint8]  # height x width x 3 (RGB)


class OcrEngine(Protocol):
    """Reads the text lines of one page image."""

    @property
    def name(self) -> str:
        """What produced the boxes (kept with cached results, so another engine reads again)."""
        ...

    def read(self, image: Image) -> list[TextBox]:
        """The text lines on the page, each with its box in the image's pixels."""
        ...


DETECT_SIDE = 2000  # the library's own detection size for pages this large
MIN_TYPE_PIXELS = 13  # body type smaller than this at detection scale: the page is read again
TYPE_PIXELS = 17  # ... with detection where it is this large (an A4 page at 300 dpi: 17)


def detection_side(boxes: list[TextBox], width: int, height: int) -> int:
    """The long side the page's detection should run at, from the lines found at
    ``DETECT_SIDE``: that size unless its body type was too small there. Type size is the
    lines' width per character (``rag.ingest.layout``): the boxes of small lines come back padded
    to about the same height whatever the type, so their height would not tell."""
    longest = max(width, height)
    if longest <= DETECT_SIDE or not boxes:
        return DETECT_SIDE
    body = page_scale(boxes).body
    if body <= 0 or body * DETECT_SIDE / longest >= MIN_TYPE_PIXELS:
        return DETECT_SIDE
    return min(longest, math.ceil(longest * TYPE_PIXELS / body))


class RapidOcrEngine:
    """PP-OCRv4 through rapidocr-onnxruntime; loaded on first use, one page at a time."""

    def __init__(self, min_score: float = 0.5, threads: int = 0) -> None:
        self.min_score = min_score
        self.threads = threads
        self._engine: Any = None
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[type[RapidOcrEngine], tuple[float, int]]:
        """Sent to a reading process (rag.ingest.sandbox) as its settings: it loads its own models."""
        return (RapidOcrEngine, (self.min_score, self.threads))

    @property
    def name(self) -> str:
        return "rapidocr-1.4-ppocrv4-scaled"

    def warm_up(self) -> None:
        """Load the models (about a second); later calls do nothing."""
        with self._lock:
            self._load()

    def _load(self) -> Any:
        if self._engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:  # pragma: no cover - a core dependency
                raise ModelError("rapidocr-onnxruntime is not installed; pip install rapidocr-onnxruntime") from exc
            threads = self.threads or -1
            self._engine = RapidOCR(
                det_limit_type="max",
                max_side_len=100_000,  # recognise lines from the full-size page
                text_score=self.min_score,
                intra_op_num_threads=threads,
            )
        return self._engine

    def read(self, image: Image) -> list[TextBox]:
        image = np.ascontiguousarray(image)
        height, width = image.shape[:2]
        with self._lock:
            engine = self._load()
            boxes = self._read(engine, image, DETECT_SIDE)
            side = detection_side(boxes, width, height)
            if side > DETECT_SIDE:
                boxes = self._read(engine, image, side)
        return boxes

    def _read(self, engine: Any, image: Image, side: int) -> list[TextBox]:
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

        detector = engine.text_det
        # rapidocr 1.4 picks the detection size itself (2,000 for any page this large); this
        # sets it for the call. The version is pinned (pyproject.toml).
        detector.get_preprocess = lambda _longest: DetPreProcess(side, "max", detector.mean, detector.std)
        found, _ = engine(image, use_cls=False)
        boxes = []
        for points, text, score in found or ():
            xs = [float(p[0]) for p in points]
            ys = [float(p[1]) for p in points]
            # The detector's quad runs top-left, top-right, bottom-right, bottom-left.
            angle = math.atan2(ys[1] - ys[0], xs[1] - xs[0]) if xs[1] != xs[0] else 0.0
            if float(score) >= self.min_score and str(text).strip():
                boxes.append(TextBox(str(text), min(xs), min(ys), max(xs), max(ys), float(score), angle))
        return boxes


OCR_ENGINES = ("rapidocr", "off")


def make_ocr(name: str, min_score: float = 0.5, threads: int = 0) -> OcrEngine | None:
    """The OCR engine of that name (None for ``off``: scans are then refused)."""
    if name == "off":
        return None
    if name == "rapidocr":
        return RapidOcrEngine(min_score, threads)
    raise ConfigError(f"unknown OCR engine {name!r}; choose one of: {', '.join(OCR_ENGINES)}")
