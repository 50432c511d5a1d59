"""The passthrough display's masks: the newest finished one, handed from the inference thread to
the output thread, and placed on each frame shown while it is young enough.

A mask is placed as it is onto the newer frame (not warped): what that costs against truth on
moving video is measured in docs/LIVE.md. Its age is the time between the capture of the frame
it was computed from and the capture of the frame it is drawn on; one older than --max-mask-age
is not drawn. The model counts as stalled once the video has gone on for longer than that without
a mask to draw, and until one is drawn again; a pause of the source itself (a camera reconnecting)
starts the count afresh, since the model cannot answer frames that did not come.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from polyp_rt.realtime.frame import Frame


@dataclass(frozen=True)
class Annotation:
    """One finished mask and the frame it was computed from."""

    index: int  # the frame's index in the source
    captured_ns: int  # the frame's capture time
    mask: np.ndarray  # uint8 HxW {0,1}, never written to once published
    max_prob: float
    area: float | None  # GPU path: counted there


class NewestMask:
    """The newest finished mask: the inference thread publishes, the output thread reads. One
    reference swapped whole, so a reader sees the old annotation or the new one, never half."""

    def __init__(self) -> None:
        self.current: Annotation | None = None
        self.published = 0

    def publish(self, frame: Frame) -> None:
        assert frame.mask is not None
        self.current = Annotation(frame.index, frame.t_capture_ns, frame.mask, frame.max_prob, frame.area)
        self.published += 1


class MaskPlacer:
    """Output thread: puts the newest young-enough mask on each frame and says how the model is doing.

    `event(text)` is told when the model stalls (its newest mask too old to draw) and when it is back.
    """

    def __init__(self, newest: NewestMask, max_age_ms: float, event: Callable[[str], None]) -> None:
        self.newest = newest
        self.max_age_ns = round(max_age_ms * 1e6)
        self.event = event
        self.unannotated = 0  # frames shown without a mask
        self.stalls = 0
        self._resumed_ns: int | None = None  # the first frame, or the first after a pause of the source
        self._previous_ns: int | None = None  # the previous frame's capture
        self._stalled_at: int | None = None  # index of the first frame of the current stall

    def place(self, frame: Frame) -> str:
        """Set the frame's mask (or none); the model's state for the HUD: "" unless it has stalled."""
        now = frame.t_capture_ns
        if self._previous_ns is None or now - self._previous_ns > self.max_age_ns:
            self._resumed_ns = now  # the video itself paused: the model is not behind
        self._previous_ns = now
        annotation = self.newest.current
        if annotation is not None and now - annotation.captured_ns <= self.max_age_ns:
            frame.mask, frame.max_prob, frame.area = annotation.mask, annotation.max_prob, annotation.area
            frame.mask_from, frame.mask_captured_ns = annotation.index, annotation.captured_ns
            if self._stalled_at is not None:
                self.event(
                    f"the model is back: masks again from frame {frame.index} "
                    f"({frame.index - self._stalled_at} frames shown without one)"
                )
                self._stalled_at = None
            return ""
        self.unannotated += 1
        assert self._resumed_ns is not None
        since = max(annotation.captured_ns, self._resumed_ns) if annotation else self._resumed_ns
        age_ns = now - since
        if age_ns <= self.max_age_ns and self._stalled_at is None:
            return ""  # the model has had no time yet (the first frames, or after a pause of the source)
        if self._stalled_at is None:
            self._stalled_at = frame.index
            self.stalls += 1
            self.event(
                f"model stalled: no mask younger than {self.max_age_ns / 1e6:.0f} ms at frame {frame.index}; "
                "the video goes on without one"
            )
        return f"MODEL STALLED: no mask for {age_ns / 1e9:.1f} s"
