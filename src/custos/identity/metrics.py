"""Quality of a clustering against ground truth: pairwise precision, recall and F1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PairScores:
    """Pairwise counts and scores (pairs of items put together)."""

    true_positives: int
    predicted_pairs: int
    true_pairs: int

    @property
    def precision(self) -> float:
        """Share of predicted pairs that are true (1.0 when nothing was predicted)."""
        return self.true_positives / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        """Share of true pairs that were predicted (1.0 when there are none)."""
        return self.true_positives / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _pairs(counts: Counter[Any]) -> int:
    return sum(n * (n - 1) // 2 for n in counts.values())


def pairwise_scores(predicted: Mapping[Any, Any], truth: Mapping[Any, Any]) -> PairScores:
    """Score ``predicted`` (item → cluster, None for unlinked) on the items that ``truth`` covers."""
    items = [k for k in truth if k in predicted]
    singleton = object()
    pred = {k: predicted[k] if predicted[k] not in (None, "") else (singleton, k) for k in items}
    both = Counter((pred[k], truth[k]) for k in items)
    return PairScores(
        true_positives=_pairs(both),
        predicted_pairs=_pairs(Counter(pred.values())),
        true_pairs=_pairs(Counter(truth[k] for k in items)),
    )
