"""The inference stage: preprocess -> engine -> postprocess, on the CPU or (for CUDA engines) the GPU.

`make_stage(engine, ...)` picks the implementation from the engine's device; both
turn a Frame's RGB into a uint8 {0,1} mask at frame size and stamp their steps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from polyp_rt.engines.base import Engine
from polyp_rt.engines.imaging import logit, mask_at, preprocess, sigmoid
from polyp_rt.realtime.frame import Frame


class InferenceStage(ABC):
    def __init__(self, engine: Engine, threshold: float | None = None, smoothing: float = 0.0) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError("smoothing must be in [0, 1)")
        self.engine = engine
        self.threshold = engine.contract.threshold if threshold is None else threshold
        self.smoothing = smoothing

    @abstractmethod
    def __call__(self, frame: Frame) -> Frame:
        """Set frame.mask (and frame.blended on the GPU path); stamp preprocessed/inferred/postprocessed."""

    def prepare(self, frame: Frame) -> None:  # noqa: B027 (only the GPU path works ahead)
        """Called by the capture thread as soon as a frame exists (the GPU path starts its upload)."""

    def warm_up(self, height: int, width: int) -> None:  # noqa: B027 (only the GPU path allocates)
        """Called once the source's frame size is known, before the first frame."""

    def close(self) -> None:  # noqa: B027 (most stages hold nothing to free)
        """Free what the stage holds (GPU buffers)."""


class CpuStage(InferenceStage):
    """numpy + OpenCV around any engine. Smoothing averages the probability at model size."""

    _previous: np.ndarray | None = None

    def __call__(self, frame: Frame) -> Frame:
        batch = preprocess(frame.rgb, self.engine.contract)[None]
        frame.stamp("preprocessed")
        logits = self.engine.infer(batch)[0, 0]
        frame.stamp("inferred")
        if self.smoothing > 0:
            prob = sigmoid(logits)
            if self._previous is not None:
                prob = self.smoothing * self._previous + (1 - self.smoothing) * prob
            self._previous = prob
            logits = logit(prob)
        h, w = frame.rgb.shape[:2]
        frame.mask = mask_at(logits, h, w, self.threshold)
        frame.stamp("postprocessed")
        return frame


def make_stage(
    engine: Engine,
    threshold: float | None = None,
    smoothing: float = 0.0,
    *,
    color: tuple[int, int, int] = (0, 255, 0),
    alpha: float = 0.4,
    in_flight: int = 6,
    cpu_only: bool = False,
) -> InferenceStage:
    """The GPU frame path for CUDA engines that take device tensors, the CPU path otherwise."""
    if engine.is_cuda and hasattr(engine, "infer_device") and not cpu_only:
        from polyp_rt.realtime.gpu_stage import TorchStage

        return TorchStage(engine, threshold, smoothing, color, alpha, in_flight)
    return CpuStage(engine, threshold, smoothing)
