"""`synthetic:WxH@FPS`: a live colonoscopy-like scene (train/scenes), paced like a camera."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs

import numpy as np

from polyp_rt.core.errors import SourceError
from polyp_rt.realtime.config import CaptureConfig
from polyp_rt.realtime.sources.base import MIN_SIDE, Source

SYNTHETIC = re.compile(r"^synthetic:(?:(\d+)x(\d+))?(?:@([\d.]+))?(?:\?(.*))?$")
SYNTHETIC_MAX_SIDE = 8192
SYNTHETIC_MAX_FPS = 1000.0
SYNTHETIC_MAX_LOOP_BYTES = 2 << 30  # loop=N keeps N rendered frames in memory


class SyntheticSource(Source):
    """`synthetic:WxH@FPS[?seed=K&loop=N]`: a live colonoscopy-like scene, paced at FPS like a camera.

    loop=N renders N frames once and cycles through them, so a benchmark at 1080p60 does
    not depend on how fast the scene generator is.
    """

    live = True
    PARAMS: tuple[str, ...] = ("seed", "loop")

    def __init__(self, spec: str, options: CaptureConfig) -> None:
        super().__init__()
        match = SYNTHETIC.match(spec)
        if not match:
            raise SourceError(
                f"{spec!r}: write synthetic sources as synthetic:WIDTHxHEIGHT@FPS, e.g. synthetic:640x480@30"
            )
        w, h, fps, query = match.groups()
        self.width, self.height = int(w or 640), int(h or 480)
        if not all(MIN_SIDE <= side <= SYNTHETIC_MAX_SIDE for side in (self.width, self.height)):
            raise SourceError(
                f"{spec!r}: a synthetic scene is {MIN_SIDE} to {SYNTHETIC_MAX_SIDE} pixels wide and high "
                f"(got {self.width}x{self.height})"
            )
        try:
            self.fps = float(fps or options.fps or 30.0)
        except ValueError:
            raise SourceError(f"{spec!r}: {fps!r} is not a frame rate") from None
        if not 0 < self.fps <= SYNTHETIC_MAX_FPS:
            raise SourceError(f"{spec!r}: the frame rate must be > 0 and <= {SYNTHETIC_MAX_FPS:g} fps")
        self.params = {k: v[-1] for k, v in parse_qs(query or "", keep_blank_values=True).items()}
        unknown = sorted(set(self.params) - set(self.PARAMS))
        if unknown:
            raise SourceError(
                f"{spec!r}: unknown parameter {unknown[0]!r}; a {spec.partition(':')[0]} source takes "
                f"{', '.join(self.PARAMS)}"
            )
        self.seed = self.int_param("seed", 0)
        self.loop = self.int_param("loop", 0)
        if self.loop * self.width * self.height * 3 > SYNTHETIC_MAX_LOOP_BYTES:
            raise SourceError(
                f"{spec!r}: loop={self.loop} keeps {self.loop} frames of {self.width}x{self.height} in memory "
                f"({self.loop * self.width * self.height * 3 / 1e9:.1f} GB); at most "
                f"{SYNTHETIC_MAX_LOOP_BYTES / 1e9:.1f} GB: use fewer frames"
            )
        self._rendered: list[np.ndarray] = []
        self.stall_timeout = options.stall_timeout
        self.description = f"synthetic {self.width}x{self.height}@{self.fps:g}"
        self._next_t: float | None = None

    def int_param(self, name: str, default: int) -> int:
        """A whole-number parameter, 0 or more."""
        try:
            value = int(self.params.get(name, default))
        except ValueError as exc:
            raise SourceError(
                f"synthetic source: {name}={self.params[name]!r} is not a whole number"
            ) from exc
        if value < 0 and name in self.params:
            raise SourceError(f"synthetic source: {name}={value} must be 0 or more")
        return value

    def _open(self) -> None:
        from polyp_rt.train.scenes import SyntheticClip

        self.clip = SyntheticClip(self.width, self.height, seed=self.seed, fps=self.fps)
        if self.loop and not self._rendered:
            self._rendered = [self.clip.frame(i)[0] for i in range(self.loop)]
        self._next_t = None

    def _read_rgb(self) -> tuple[np.ndarray, float] | None:
        now = time.monotonic()
        if self._next_t is None:
            self._next_t = now
        elif self._next_t > now:
            time.sleep(self._next_t - now)
        self._next_t = max(self._next_t + 1.0 / self.fps, time.monotonic() - 1.0 / self.fps)
        rgb = self._rendered[self._count % self.loop] if self._rendered else self.clip.frame(self._count)[0]
        out = self.frame_buffer(self.height, self.width)  # as a capture card writes into it
        if out is not None:
            np.copyto(out, rgb)
            rgb = out
        return rgb, self._count / self.fps

    def close(self) -> None:
        pass
