"""The inference stage: preprocess -> engine -> postprocess, turning a Frame's RGB into a mask.

Two implementations: CpuStage (numpy + OpenCV around any engine) and, for engines that
take CUDA tensors, TorchStage (realtime/gpu_stage.py). The wiring (realtime/compose.py)
picks one. Both set the frame's mask (uint8 {0,1} at frame size) and max_prob, and stamp
their steps. A NaN logit counts as background and an infinite one as a certain answer (so
temporal smoothing is not poisoned); the frames that had any are counted (`nonfinite_frames`,
in the stats) and the first one is logged as a warning.

A stage keeps up to `requests` frames under way (`start` one, `finish` it later, in order): more
than one is the throughput mode, where the engine runs one request while the next frame is
prepared. `__call__` is one frame start to finish.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from polyp_rt.engines.base import Engine
from polyp_rt.realtime.frame import Frame

log = logging.getLogger(__name__)

BOUND = 30.0  # what a NaN or infinite logit becomes: a certain answer (the CPU sigmoid clips here too)

Finish = Callable[[], Frame]  # the rest of a started frame's work: its result, once its request is done


class InferenceStage(ABC):
    outline = False  # the GPU path draws the mask's outline itself while this is on
    nonfinite_frames = 0  # frames whose logits held NaN or infinity
    requests = 1  # frames started and not yet finished, at most (compose() sets it from the modes)

    def __init__(self, engine: Engine, threshold: float | None = None, smoothing: float = 0.0) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError("smoothing must be in [0, 1)")
        self.engine = engine
        self.threshold = engine.contract.threshold if threshold is None else threshold
        self.smoothing = smoothing

    def _nonfinite(self, frame: Frame) -> None:
        """Count a frame whose logits were not all finite; warn on the first."""
        if frame.index < 0:  # the warm-up frame
            return
        self.nonfinite_frames += 1
        if self.nonfinite_frames == 1:
            log.warning(
                "frame %d: the model gave NaN or infinite logits; NaN counts as background (no mask "
                "there); such frames are counted as `nonfinite_frames` in the statistics",
                frame.index,
            )

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
