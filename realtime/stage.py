"""The inference stage: preprocess -> engine -> postprocess, turning a Frame's RGB into a mask.

Two implementations: CpuStage (numpy + OpenCV around any engine) and, for engines that
take CUDA tensors, TorchStage (realtime/gpu_stage.py). The wiring (realtime/compose.py)
picks one. Both set the frame's mask (uint8 {0,1} at frame size) and max_prob, and stamp
their steps.

A stage keeps up to `requests` frames under way (`start` one, `finish` it later, in order): more
than one is the throughput mode, where the engine runs one request while the next frame is
prepared. `__call__` is one frame start to finish.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from polyp_rt.engines.base import Engine
from polyp_rt.realtime.frame import Frame

Finish = Callable[[], Frame]  # the rest of a started frame's work: its result, once its request is done


class InferenceStage(ABC):
    outline = False  # the GPU path draws the mask's outline itself while this is on
    requests = 1  # frames started and not yet finished, at most (compose() sets it from the modes)

    def __init__(self, engine: Engine, threshold: float | None = None, smoothing: float = 0.0) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError("smoothing must be in [0, 1)")
        self.engine = engine
        self.threshold = engine.contract.threshold if threshold is None else threshold
        self.smoothing = smoothing

    @abstractmethod
    def __call__(self, frame: Frame) -> Frame:
        """Set frame.mask, frame.max_prob (and frame.blended on the GPU path); stamp the three steps."""

    def start(self, frame: Frame) -> Finish:
        """Begin the frame's inference; call the result (in the order started) for the finished frame.
        This default does all the work at once."""
        done = self(frame)
        return lambda: done

    def frame_buffer(self, height: int, width: int) -> np.ndarray | None:
        """A uint8 HxWx3 buffer for the source to decode the next frame into, or None (any array
        will do). The GPU path lends its pinned upload buffers, which saves a copy per frame."""
        return None

    def prepare(self, frame: Frame) -> None:  # noqa: B027 (only the GPU path works ahead)
        """Called by the capture thread as soon as a frame exists (the GPU path starts its upload)."""

    def warm_up(self, height: int, width: int) -> None:  # noqa: B027 (only the GPU path allocates)
        """Called once the source's frame size is known, before the first frame."""

    def close(self) -> None:  # noqa: B027 (most stages hold nothing to free)
        """Free what the stage holds (GPU buffers)."""
