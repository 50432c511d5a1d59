"""The CPU frame path: numpy + OpenCV pre- and postprocessing around any engine."""

from __future__ import annotations

import numpy as np

from polyp_rt.engines.base import Pending
from polyp_rt.engines.imaging import logit, mask_at, preprocess, sigmoid
from polyp_rt.realtime.frame import Frame, Stamp
from polyp_rt.realtime.stage import Finish, InferenceStage


class CpuStage(InferenceStage):
    """numpy + OpenCV around any engine. Smoothing averages the probability at model size.

    With `requests` > 1 (the throughput mode) `start` hands the batch to the engine's next request
    and returns; the previous frame is finished while it runs. Frames finish in the order started,
    so smoothing sees them in order and the masks are those of one request at a time.
    """

    _previous: np.ndarray | None = None

    def __call__(self, frame: Frame) -> Frame:
        return self.start(frame)()

    def start(self, frame: Frame) -> Finish:
        batch = preprocess(frame.rgb, self.engine.contract)[None]
        frame.stamp(Stamp.PREPROCESSED)
        pending = self.engine.submit(batch) if self.requests > 1 else Pending(self.engine.infer(batch))
        return lambda: self._finish(frame, pending.wait())

    def _finish(self, frame: Frame, logits: np.ndarray) -> Frame:
        frame.stamp(Stamp.INFERRED)
        logits = logits[0, 0]
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
