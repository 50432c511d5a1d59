"""The annotated recording: H.264 in fragmented MP4 or MKV, playable even if the process dies.

Fragments are flushed every 200 ms and x264 runs with zero latency (no look-ahead
queue), so a killed process loses at most the last fraction of a second. A write
that fails (disk full) raises RecorderError; the half-written tail is then cut off
at `close()`, so the file ends on its last complete fragment and plays to there.
The recorder is the file's one writer: it locks it from opening to `close()` (core/locks.py),
so a second recorder of the same path is refused instead of interleaving with it; a file it
made and closed without a frame is removed again.
"""

from __future__ import annotations

import logging
import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from polyp_rt.core.closing import Closing
from polyp_rt.core.errors import RecorderError
from polyp_rt.core.files import disk_full_hint
from polyp_rt.core.locks import lock_output
from polyp_rt.core.paths import make_parent

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 90000)
CONTAINER_OPTIONS = {
    ".mp4": {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "200000"},
    ".mov": {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "200000"},
    ".mkv": {"cluster_time_limit": "200"},
}
ENCODERS: tuple[tuple[str, dict[str, str]], ...] = (  # best first: name, options
    ("libx264", {"preset": "veryfast", "tune": "zerolatency", "crf": "20"}),
    ("h264", {}),
    ("libopenh264", {}),
    ("mpeg4", {"qscale": "3"}),
)


def best_encoder() -> tuple[str, dict[str, str]]:
    import av

    for name, options in ENCODERS:
        if name in av.codecs_available:
            try:
                av.codec.Codec(name, "w")
            except (av.error.FFmpegError, ValueError):
                continue
            return name, options
    raise RecorderError("no H.264 or MPEG-4 encoder in this PyAV build; reinstall av from PyPI")


class Recorder(Closing):
    """Write RGB frames with their timestamps; `close()` finalises (idempotent)."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float) -> None:
        import av

        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in CONTAINER_OPTIONS:
            raise RecorderError(f"{self.path}: record to .mp4 or .mkv (got {suffix or 'no suffix'!r})")
        self.width, self.height = width - width % 2, height - height % 2  # yuv420p needs even sizes
        self.fps = fps if fps and fps > 0 else 30.0
        self.frames_written = 0
        self._good_bytes = 0  # file size after the last write that went through
        self._failed = False
        self._last_pts = -1
        self._first_pts_s: float | None = None
        codec, codec_options = best_encoder()
        self._lock = lock_output(make_parent(self.path, "the recording"), "the recording")
        try:
            self._container = av.open(
                str(self.path), "w", options={"flush_packets": "1", **CONTAINER_OPTIONS[suffix]}
            )
        except (OSError, av.error.FFmpegError) as exc:
            self._lock.discard()
            raise RecorderError(f"{self.path}: cannot create the recording ({exc})") from exc
        rate = Fraction(self.fps).limit_denominator(1001)
        gop = str(max(1, round(self.fps)))
        self._stream: av.VideoStream = self._container.add_stream(  # type: ignore[assignment]
            codec, rate=rate, options={**codec_options, "g": gop}
        )
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = TIME_BASE
        self.codec = codec
        self._closed = False
        log.debug("recording to %s with %s at %.3g fps", self.path, codec, self.fps)

    def write(self, rgb: np.ndarray, pts_s: float | None = None) -> None:
        """Encode one frame; `pts_s` is its source time in seconds (default: frame count / fps)."""
        import av

        if pts_s is None:
            pts_s = self.frames_written / self.fps
        if not math.isfinite(pts_s):  # a source without timestamps here: one frame period on
            pts = self._last_pts + round(1 / self.fps / TIME_BASE)
        else:
            if self._first_pts_s is None:
                self._first_pts_s = pts_s
            pts = max(round((pts_s - self._first_pts_s) / TIME_BASE), self._last_pts + 1)
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(
            np.ascontiguousarray(rgb[: self.height, : self.width]), format="rgb24"
        )
        frame.pts, frame.time_base = pts, TIME_BASE
        try:
            self._container.mux(self._stream.encode(frame))
        except (OSError, av.error.FFmpegError) as exc:
            self._failed = True
            raise RecorderError(
                f"{self.path}: writing the recording failed ({exc}){disk_full_hint(exc)}"
            ) from exc
        self.frames_written += 1
        self._good_bytes = self._size()

    def close(self) -> None:
        """Flush the encoder and finalise the container; what was written stays playable."""
        import av

        if self._closed:
            return
        self._closed = True
        try:
            if not self._failed:  # after a failed write, nothing more goes in
                self._container.mux(self._stream.encode(None))
                self._good_bytes = self._size()
        except (OSError, av.error.FFmpegError) as exc:
            self._failed = True
            log.error("%s: flushing the encoder failed (%s); frames written so far are kept", self.path, exc)
        finally:
            try:
                self._container.close()
            except (OSError, av.error.FFmpegError) as exc:  # after a failed write: to be expected
                log.log(
                    logging.WARNING if self._failed else logging.ERROR,
                    "%s: closing the recording failed (%s)",
                    self.path,
                    exc,
                )
                self._failed = True
            if self._failed:
                self._cut_back()
            if self.frames_written == 0:  # nothing to play (a run refused or failed before its first
                self._lock.discard()  # frame): a file this recorder made is removed again
            else:
                self._lock.close()

    def _size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except OSError:
            return 0

    def _cut_back(self) -> None:
        """Drop what a failed write left half-written: the file then ends on a complete fragment."""
        if not self.path.is_file() or self._size() <= self._good_bytes:
            return  # nothing half-written (or not a regular file, e.g. /dev/full)
        try:
            os.truncate(self.path, self._good_bytes)
        except OSError as exc:
            log.error("%s: cannot cut off the half-written end (%s)", self.path, exc.strerror)
            return
        log.warning("%s: cut back to its last complete fragment (%d bytes)", self.path, self._good_bytes)
