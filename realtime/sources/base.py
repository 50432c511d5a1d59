"""What every source is: `Source`, the interface the pipeline reads frames through."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from polyp_rt.core.errors import SourceError
from polyp_rt.realtime.frame import Frame, now_ns

MIN_SIDE = 8  # smallest frame width and height the pipeline takes


class SourceStalled(SourceError):
    """A live source delivered no frame within the stall timeout."""


class Source(ABC):
    """`open()`, then `read()` until it returns None (end of stream), then `close()`.

    Every frame has the size the source had when it opened: a frame of another size (an image
    folder of mixed sizes, a stream that changes resolution) is scaled to fit and letterboxed,
    and that is noted once in `notes`. `description` names the source for people (the log,
    the closing table, the stats); it never holds a stream's credentials.
    """

    live: bool = False
    realtime: bool = False  # a file played at its own frame rate (--realtime); else as fast as taken
    description: str = ""
    fps: float = 30.0
    width: int = 0
    height: int = 0

    def __init__(self) -> None:
        # where to decode the next frame, if the source can (the GPU path lends pinned buffers)
        self.frame_buffer: Callable[[int, int], np.ndarray | None] = lambda height, width: None
        self.skipped: dict[str, int] = {}  # bad input stepped over, by reason
        self.notes: list[str] = []  # what the pipeline should log and keep in the stats events
        self._count = 0
        self._refitted = False

    def open(self) -> None:
        """Open (or reopen) the source; its frame size and rate are known after."""
        self._open()
        if min(self.width, self.height) < MIN_SIDE:
            self.close()
            raise SourceError(
                f"{self.description}: frames are {self.width}x{self.height}; "
                f"polyp-rt needs at least {MIN_SIDE}x{MIN_SIDE} pixels"
            )

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _read_rgb(self) -> tuple[np.ndarray, float] | None:
        """(RGB frame, pts in seconds), or None at the end of the stream."""

    def read(self) -> Frame | None:
        """The next frame, stamped with its capture time; None at the end of the stream.

        Raises SourceError (SourceStalled for a live source that went quiet) when frames stop."""
        got = self._read_rgb()
        if got is None:
            return None
        rgb, pts = got
        if rgb.shape[:2] != (self.height, self.width):
            rgb = self._refit(rgb)
        frame = Frame(self._count, pts, now_ns(), rgb)
        self._count += 1
        return frame

    def _refit(self, rgb: np.ndarray) -> np.ndarray:
        if not self._refitted:
            self._refitted = True
            h, w = rgb.shape[:2]
            self.notes.append(
                f"{self.description}: frame {self._count} is {w}x{h}, not {self.width}x{self.height} like "
                f"the first; frames of another size are scaled to fit {self.width}x{self.height} and "
                "letterboxed (noted once)"
            )
        return letterbox(rgb, self.width, self.height)

    def _to_rgb(self, bgr: np.ndarray) -> np.ndarray:
        """The RGB frame, converted straight into the buffer the stage lends when sizes agree."""
        import cv2

        out = (
            self.frame_buffer(self.height, self.width) if bgr.shape[:2] == (self.height, self.width) else None
        )
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=out)

    def skip(self, reason: str) -> None:
        """Count one piece of bad input stepped over (the stats report `skipped` by reason)."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def damage(self) -> str | None:
        """What was wrong with the input, in one line, as far as it was read; None where nothing
        was (the stats' `damage`, the batch's `damaged` status). Here: what was stepped over."""
        if not self.skipped:
            return None
        return ", ".join(f"{count} {reason}" for reason, count in self.skipped.items()) + " skipped"

    @abstractmethod
    def close(self) -> None:
        """Release the device, file or connection; `open()` may follow (a reconnect)."""


def letterbox(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """`rgb` scaled to fit width x height whole (aspect kept), centred on black."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(width / w, height / h)
    fw, fh = min(width, max(1, round(w * scale))), min(height, max(1, round(h * scale)))
    shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = np.zeros((height, width, 3), np.uint8)
    top, left = (height - fh) // 2, (width - fw) // 2
    out[top : top + fh, left : left + fw] = cv2.resize(rgb, (fw, fh), interpolation=shrink)
    return out
