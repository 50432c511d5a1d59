"""What a synthetic still or clip may contain, and the sizes they come in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

Size = int | tuple[int, int]
"""An image size: an int for a square, or (width, height)."""


@dataclass(frozen=True)
class SceneConfig:
    """What a synthetic still image may contain."""

    p_empty: float = 0.15  # chance of an image without any polyp
    max_polyps: int = 3  # at most 5
    polyp_radius: tuple[float, float] = (0.05, 0.24)  # fraction of min(width, height)
    p_lumen: float = 0.65  # chance that the dark lumen is in view
    p_border: float = 0.5  # chance of the black octagonal endoscope border (stills only)
    noise_sigma: float = 2.0  # sensor noise, 8-bit levels


@dataclass(frozen=True)
class ClipConfig:
    """How a synthetic video moves: scene segments, camera path, border."""

    segment_seconds: float = 4.0  # one rendered scene ("world") per segment
    fade_seconds: float = 0.4  # crossfade between consecutive segments
    p_empty_segment: float = 0.3  # segments without any polyp
    world_scale: float = 1.8  # world size relative to the frame
    max_world_pixels: int = 2560 * 1440  # beyond this the world is rendered coarser
    max_zoom: float = 1.4
    border: bool = True
    scene: SceneConfig = field(default_factory=SceneConfig)


class Clip(Protocol):
    """A random-access source of (rgb, mask) frames."""

    width: int
    height: int
    fps: float

    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray]: ...


def size_wh(size: Size) -> tuple[int, int]:
    """(width, height) of a size; at least 8x8 (ValueError otherwise)."""
    w, h = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if w < 8 or h < 8:
        raise ValueError(f"image size must be at least 8x8, got {w}x{h}")
    return w, h
