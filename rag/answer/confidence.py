"""How confident the gate is that its evidence answers the question: one calibrated decision.

The gate (``rag.answer.evidence``) measures signs of its chosen evidence: how far the best
passage stands out from the rest of the corpus, how similar the sentence is, how much of the
question's topic it holds, whether a span of the asked type was found. A logistic model weighs
them into the probability that the extractive answer is right. It is fitted by
``python -m eval.calibrate`` on the tuning halves of the dev sets, with every question also
asked without its gold passages (where the right reply is an abstention), and stored in
``confidence.json`` beside this module with the figures it was chosen on. The gate abstains
below ``RAG_ABSTAIN_MIN_CONFIDENCE``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MODEL = Path(__file__).with_name("confidence.json")


@dataclass(frozen=True)
class Confidence:
    """A logistic model over the gate's signs: weights for centred and scaled signs, and a bias."""

    weights: Mapping[str, float]
    means: Mapping[str, float]
    scales: Mapping[str, float]
    bias: float

    def of(self, signs: Mapping[str, float]) -> float:
        """The probability that the evidence answers (1.0 when no model is fitted)."""
        if not self.weights:
            return 1.0
        z = self.bias + sum(
            w * (signs.get(name, 0.0) - self.means.get(name, 0.0)) / (self.scales.get(name, 1.0) or 1.0)
            for name, w in self.weights.items()
        )
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    @classmethod
    def load(cls, path: Path = MODEL) -> Confidence:
        if not path.is_file():
            return cls({}, {}, {}, 0.0)
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(raw["weights"], raw["means"], raw["scales"], raw["bias"])


CONFIDENCE = Confidence.load()
