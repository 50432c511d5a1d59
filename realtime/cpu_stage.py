"""The CPU frame path: numpy + OpenCV pre- and postprocessing around any engine."""

from __future__ import annotations

import numpy as np

from polyp_rt.engines.imaging import logit, mask_at, preprocess, sigmoid
from polyp_rt.realtime.frame import Frame, Stamp
from polyp_rt.realtime.stage import BOUND, InferenceStage


class CpuStage(InferenceStage):
    """numpy + OpenCV around any engine. Smoothing averages the probability at model size."""

    _previous: np.ndarray | None = None

    def __call__(self, frame: Frame) -> Frame:
        batch = preprocess(frame.rgb, self.engine.contract)[None]
        frame.stamp(Stamp.PREPROCESSED)
        logits = self.engine.infer(batch)[0, 0]
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
