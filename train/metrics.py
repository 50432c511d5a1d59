"""Segmentation metrics: per-image confusion counts, then micro and per-image means.

Conventions: an image whose truth and prediction are both empty scores 1 on every
ratio (the model rightly stayed quiet); any ratio with a zero denominator is 1.
A polyp-free image (empty truth) is "left quiet" when the predicted mask covers at most
QUIET_AREA of it: the live loop's presence threshold (`--min-area`), below which nothing is
announced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

METRICS = ("dice", "iou", "precision", "recall", "accuracy")
QUIET_AREA = 0.002  # fraction of the image; the default of the live loop's --min-area


@dataclass(frozen=True)
class Counts:
    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def of(cls, pred: np.ndarray, truth: np.ndarray) -> Counts:
        pred, truth = pred.astype(bool), truth.astype(bool)
        if pred.shape != truth.shape:
            raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
        tp = int(np.count_nonzero(pred & truth))
        fp = int(np.count_nonzero(pred)) - tp
        fn = int(np.count_nonzero(truth)) - tp
        return cls(tp, fp, fn, truth.size - tp - fp - fn)

    def ratios(self) -> dict[str, float]:
        tp, fp, fn, tn = self.tp, self.fp, self.fn, self.tn
        return {
            "dice": _ratio(2 * tp, 2 * tp + fp + fn),
            "iou": _ratio(tp, tp + fp + fn),
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
        }

    @property
    def polyp_free(self) -> bool:
        return self.tp + self.fn == 0

    @property
    def quiet(self) -> bool:
        """Polyp-free and predicted over at most QUIET_AREA of the image."""
        total = self.tp + self.fp + self.fn + self.tn
        return self.polyp_free and self.fp <= QUIET_AREA * total

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)


def _ratio(num: int, den: int) -> float:
    return 1.0 if den == 0 else num / den


@dataclass
class MetricSet:
    """Accumulates images; `summary()` gives mean-per-image figures plus the micro ones."""

    per_image: list[Counts] = field(default_factory=list)

    def add(self, pred: np.ndarray, truth: np.ndarray) -> Counts:
        counts = Counts.of(pred, truth)
        self.per_image.append(counts)
        return counts

    def summary(self) -> dict[str, object]:
        """Means per image, `images`, `micro` (ratios over all pixels), and `polyp_free` / `quiet`:
        how many images had no polyp and how many of those the model left quiet."""
        if not self.per_image:
            return {
                **dict.fromkeys(METRICS, float("nan")),
                "images": 0,
                "micro": {},
                "polyp_free": 0,
                "quiet": 0,
            }
        means = {name: float(np.mean([c.ratios()[name] for c in self.per_image])) for name in METRICS}
        total = sum(self.per_image[1:], self.per_image[0])
        return {
            **means,
            "images": len(self.per_image),
            "micro": total.ratios(),
            "polyp_free": sum(c.polyp_free for c in self.per_image),
            "quiet": sum(c.quiet for c in self.per_image),
        }
