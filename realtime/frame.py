"""A frame on its way through the house, with the monotonic time each stage finished it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def now_ns() -> int:
    return time.monotonic_ns()


@dataclass
class Frame:
    index: int  # position in the source (file frame number, or count since the camera opened)
    pts_s: float  # source presentation time, seconds
    t_capture_ns: int  # monotonic time the frame was captured
    rgb: np.ndarray  # uint8 HxWx3, RGB
    stamps: dict[str, int] = field(default_factory=dict)  # stage -> monotonic ns when it finished
    mask: np.ndarray | None = None  # uint8 HxW {0,1}
    blended: np.ndarray | None = None  # RGB with the mask tint already applied (GPU path)
    overlay: np.ndarray | None = None  # what is shown and recorded
    gpu_ms: dict[str, float] = field(default_factory=dict)  # GPU path: CUDA-event time per step
    upload: Any = None  # GPU path: the frame's device copy, started by the capture thread

    def stamp(self, stage: str) -> None:
        self.stamps[stage] = now_ns()
