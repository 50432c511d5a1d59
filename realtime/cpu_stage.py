"""The CPU frame path: numpy + OpenCV pre- and postprocessing around any engine."""

from __future__ import annotations

import numpy as np

from polyp_rt.engines.base import Engine, Pending
from polyp_rt.engines.imaging import logit, mask_at, preprocess_into, sigmoid
from polyp_rt.realtime.frame import Frame, Stamp
from polyp_rt.realtime.stage import BOUND, Finish, InferenceStage


class CpuStage(InferenceStage):
    """numpy + OpenCV around any engine. Smoothing averages the probability at model size.

    Each frame is resized and normalised straight into an input batch the stage keeps (the
    runtime reads it in place; one per request in flight), through one kept model-size picture:
    no array per frame before the engine.

    With `requests` > 1 (the throughput mode) `start` hands the batch to the engine's next request
    and returns; the previous frame is finished while it runs. Frames finish in the order started,
    so smoothing sees them in order and the masks are those of one request at a time.
    """

    _previous: np.ndarray | None = None

    def __init__(self, engine: Engine, threshold: float | None = None, smoothing: float = 0.0) -> None:
        super().__init__(engine, threshold, smoothing)
        c = engine.contract
        self._batches = [np.empty((1, 3, c.height, c.width), np.float32)]
        self._turn = 0
        self._resized = np.empty((c.height, c.width, 3), np.uint8)

    def __call__(self, frame: Frame) -> Frame:
        return self.start(frame)()

    def start(self, frame: Frame) -> Finish:
        if len(self._batches) < self.requests:  # each request in flight reads its own input batch
            self._batches.append(np.empty_like(self._batches[0]))
        batch = self._batches[self._turn % len(self._batches)]
        self._turn += 1
        preprocess_into(frame.rgb, self.engine.contract, batch[0], self._resized)
        frame.stamp(Stamp.PREPROCESSED)
        pending = self.engine.submit(batch) if self.requests > 1 else Pending(self.engine.infer(batch))
        return lambda: self._finish(frame, pending.wait())

    def _finish(self, frame: Frame, logits: np.ndarray) -> Frame:
        frame.stamp(Stamp.INFERRED)
        logits = logits[0, 0]
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
