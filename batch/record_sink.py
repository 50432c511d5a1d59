"""The batch's own sink: one `frames.jsonl` record per frame, the polyp episodes, each episode's
peak-frame thumbnail, and progress for the driver.

Records stream to the file as frames come (a video's records are never held in memory); the
episode tracker sees each frame once. Only the current episode's peak picture is kept (scaled
down), and written as `peaks/<frame>.jpg` when its episode closes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from polyp_rt.batch.episodes import Episode, EpisodeTracker
from polyp_rt.batch.events import PROGRESS_INTERVAL_S
from polyp_rt.core.errors import RecorderError
from polyp_rt.realtime.frame import Frame
from polyp_rt.realtime.sinks import Sink

THUMB_MAX_WIDTH = 640  # px: the report shows them at 160, a reviewer opens the file
THUMB_QUALITY = 85


class FrameRecordSink(Sink):
    """Writes `folder/frames.jsonl` and `folder/peaks/`; `progress(frames)` is called for the
    first frame and then at most every `interval_s`, after the records so far are on disk.

    A peak's thumbnail is the picture the run drew (with --record), else `draw(frame)`: set it to
    the pipeline's `Overlay.picture`, so only the peak frames are drawn (tint and outline)."""

    def __init__(
        self,
        folder: Path,
        progress: Callable[[int], None] | None = None,
        interval_s: float = PROGRESS_INTERVAL_S,
    ) -> None:
        self.path = folder / "frames.jsonl"
        self.peaks = folder / "peaks"
        self.progress = progress
        self.interval_s = interval_s
        self.tracker = EpisodeTracker()
        self.thumbnails: dict[int, str] = {}  # peak frame -> path relative to the video's folder
        self.frames = 0
        self.draw: Callable[[Frame], np.ndarray] | None = None
        self._peak: np.ndarray | None = None  # BGR, scaled down: the open episode's peak so far
        self._reported = 0.0
        try:
            self.peaks.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise RecorderError(f"{self.path}: cannot write the frame records ({exc.strerror})") from exc

    def set_nominal_fps(self, fps: float) -> None:
        """The container's frame rate (the episode length of a one-frame video); before any frame."""
        if self.frames == 0 and fps > 0:
            self.tracker = EpisodeTracker(nominal_fps=fps)

    def write(self, frame: Frame) -> None:
        assert self._file is not None
        area = frame.mask_area()
        record = {
            "frame": frame.index,
            "t": round(frame.pts_s, 6),
            "area": round(area, 6),
            "max_prob": round(float(frame.max_prob), 4),
            "polyp": bool(frame.polyp),
        }
        try:
            self._file.write(json.dumps(record, allow_nan=False) + "\n")
        except OSError as exc:
            raise RecorderError(
                f"{self.path}: writing the frame records failed ({exc.strerror}); is the disk full?"
            ) from exc
        step = self.tracker.feed(record)  # the values written: episodes.json follows from frames.jsonl
        if step.closed is not None:
            self._save_peak(step.closed)
        if step.new_peak:
            self._peak = _thumbnail(self._picture(frame))
        self.frames += 1
        now = time.monotonic()
        if self.progress is not None and (self.frames == 1 or now - self._reported >= self.interval_s):
            self._file.flush()
            self._reported = now
            self.progress(self.frames)

    def _picture(self, frame: Frame) -> np.ndarray:
        if frame.overlay is not None:
            return frame.overlay
        return self.draw(frame) if self.draw is not None else frame.rgb

    def close(self) -> None:
        if self._file is None:
            return
        last = self.tracker.finish()
        if last is not None:
            self._save_peak(last)
        try:
            self._file.close()
        finally:
            self._file = None

    @property
    def episodes(self) -> list[Episode]:
        return self.tracker.episodes

    def summary(self) -> dict[str, object]:
        return {
            "frame_records": {
                "path": str(self.path),
                "frames": self.frames,
                "episodes": len(self.tracker.episodes),
                "polyp_s": self.tracker.polyp_s,
            }
        }

    def _save_peak(self, episode: Episode) -> None:
        if self._peak is None:
            return
        path = self.peaks / f"{episode.peak_frame:06d}.jpg"
        ok, jpeg = cv2.imencode(".jpg", self._peak, [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
        try:
            if not ok:
                raise OSError("JPEG encoding failed")
            path.write_bytes(jpeg.tobytes())
        except OSError as exc:
            raise RecorderError(f"{path}: writing the thumbnail failed ({exc}); is the disk full?") from exc
        self.thumbnails[episode.peak_frame] = f"peaks/{path.name}"
        self._peak = None


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    if w > THUMB_MAX_WIDTH:
        rgb = cv2.resize(
            rgb, (THUMB_MAX_WIDTH, max(1, round(h * THUMB_MAX_WIDTH / w))), interpolation=cv2.INTER_AREA
        )
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
