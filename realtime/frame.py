"""A frame on its way through the house, with the monotonic time each stage finished it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


def now_ns() -> int:
    return time.monotonic_ns()


class Stamp(Enum):
    """When a frame finished each step, in the order a frame passes them.

    The latency of a stage runs from the previous stamp to its own (see realtime/stats.py).
    """

    CAPTURED = "captured"  # the source handed it over
    DEQUEUED = "dequeued"  # the inference thread took it from the capture queue
    PREPROCESSED = "preprocessed"
    INFERRED = "inferred"
    POSTPROCESSED = "postprocessed"
    HANDED = "handed"  # the output thread took it from its queue
    OVERLAID = "overlaid"  # annotated picture ready for the sinks and the window (the video delay's end)


GPU_STEPS = ("preprocess", "infer", "postprocess")  # CUDA-event times on the GPU frame path


@dataclass
class Frame:
    index: int  # position in the source (file frame number, or count since the camera opened)
    pts_s: float  # source presentation time, seconds
    t_capture_ns: int  # monotonic time the frame was captured
    rgb: np.ndarray  # uint8 HxWx3, RGB
    stamps: dict[Stamp, int] = field(default_factory=dict)  # monotonic ns each step finished
    mask: np.ndarray | None = (
        None  # uint8 HxW {0,1}, the model's, before the alert gate; passthrough: the newest mask, or None (none drawn)
    )
    mask_from: int | None = None  # index of the frame the mask was computed from (synced: this one)
    mask_captured_ns: int | None = None  # that frame's capture time
    alert: np.ndarray | None = None  # what of the mask is drawn (realtime/alert_gate.py); may be `mask`
    max_prob: float = 0.0  # highest polyp probability in the frame
    blended: np.ndarray | None = None  # RGB with the mask tint already applied (GPU path)
    outlined: bool = False  # GPU path: `blended` has the mask's outline drawn on it too
    area: float | None = None  # GPU path: fraction of the frame the mask covers, counted on the GPU
    overlay: np.ndarray | None = None  # what is shown and recorded
    polyp: bool = False  # the presence indicator's state after this frame
    gpu_ms: dict[str, float] = field(default_factory=dict)  # GPU path: CUDA-event time per step
    upload: Any = None  # GPU path: the frame's device copy, started by the capture thread
    hud: Any = None  # the HUD drawn on it (realtime.overlay.Hud), for sinks that show it their own way

    def __post_init__(self) -> None:
        self.stamps[Stamp.CAPTURED] = self.t_capture_ns

    def stamp(self, step: Stamp) -> None:
        self.stamps[step] = now_ns()

    def for_inference(self) -> Frame:
        """The same picture as a frame of its own, for the inference thread of the passthrough
        display: the model's results go on it while the output thread draws on this one."""
        return Frame(self.index, self.pts_s, self.t_capture_ns, self.rgb)

    @property
    def mask_age_ms(self) -> float | None:
        """How much earlier than this frame the drawn mask's frame was captured (synced: 0)."""
        if self.mask_captured_ns is None:
            return None
        return (self.t_capture_ns - self.mask_captured_ns) / 1e6

    def mask_area(self) -> float:
        """Fraction of the frame the mask covers (0 where no mask is drawn)."""
        if self.area is not None:
            return self.area
        if self.mask is None:
            return 0.0
        return float(np.count_nonzero(self.mask)) / self.mask.size

    def alert_area(self) -> float:
        """Fraction of the frame drawn (the mask after the alert gate; before `draw`, the mask's)."""
        if self.alert is None or self.alert is self.mask:
            return self.mask_area()
        return float(np.count_nonzero(self.alert)) / self.alert.size
