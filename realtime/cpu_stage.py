"""The CPU frame path: numpy + OpenCV pre- and postprocessing around any engine."""

from __future__ import annotations

import numpy as np

from polyp_rt.engines.base import Engine
from polyp_rt.engines.imaging import logit, mask_at, preprocess_into, sigmoid
from polyp_rt.realtime.frame import Frame, Stamp
from polyp_rt.realtime.stage import BOUND, InferenceStage


class CpuStage(InferenceStage):
    """numpy + OpenCV around any engine. Smoothing averages the probability at model size.

    Each frame is resized and normalised straight into one input batch the stage keeps (the
    runtime reads it in place), through one kept model-size picture: no array per frame before
    the engine."""

    _previous: np.ndarray | None = None

    def __init__(self, engine: Engine, threshold: float | None = None, smoothing: float = 0.0) -> None:
        super().__init__(engine, threshold, smoothing)
        c = engine.contract
        self._batch = np.empty((1, 3, c.height, c.width), np.float32)
        self._resized = np.empty((c.height, c.width, 3), np.uint8)

    def __call__(self, frame: Frame) -> Frame:
        preprocess_into(frame.rgb, self.engine.contract, self._batch[0], self._resized)
        frame.stamp(Stamp.PREPROCESSED)
        logits = self.engine.infer(self._batch)[0, 0]
        frame.stamp(Stamp.INFERRED)
        if not np.isfinite(logits).all():
            self._nonfinite(frame)
            logits = np.nan_to_num(logits, nan=-BOUND, posinf=BOUND, neginf=-BOUND)
        if self.smoothing > 0:
            prob = sigmoid(logits)
            if self._previous is not None:
                prob = self.smoothing * self._previous + (1 - self.smoothing) * prob
            self._previous = prob
            logits = logit(prob)
        h, w = frame.rgb.shape[:2]
        frame.max_prob = float(sigmoid(logits.max()))
        frame.mask = mask_at(logits, h, w, self.threshold)
        frame.stamp(Stamp.POSTPROCESSED)
        return frame
