"""Video files: decoded by PyAV, pts kept, rotation applied, damage counted."""

from __future__ import annotations

import logging
import math
import stat
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np

from polyp_rt.core.errors import InputFileError, SourceError
from polyp_rt.realtime.config import SOURCE_FORMS, CaptureConfig
from polyp_rt.realtime.sources.base import Source
from polyp_rt.realtime.sources.mp4_boxes import Cut, mp4_cut
from polyp_rt.realtime.threads import thread_plan

log = logging.getLogger(__name__)

CORRUPT, MISSING = "corrupt packets", "frames missing (file damaged or cut short)"


def display_turns(frame: Any, name: str) -> int:
    """Counter-clockwise quarter turns that show a decoded frame upright, from its display matrix
    (phones and some capture software write one); 0 without one."""
    from av.sidedata.sidedata import Type

    matrix = frame.side_data.get(Type.DISPLAYMATRIX)
    if matrix is None:
        return 0
    a, b, _, c, d, *_ = struct.unpack("=9i", bytes(matrix))
    if a * d - b * c < 0:
        raise SourceError(
            f"{name}: its display matrix mirrors the picture; polyp-rt plays rotated video, not "
            "mirrored video (remux it without the display matrix)"
        )
    turns, rest = divmod(round(frame.rotation), 90)
    if rest:
        raise SourceError(
            f"{name}: its display matrix turns the picture by {frame.rotation:g} degrees; "
            "polyp-rt turns video upright by quarter turns only"
        )
    return turns % 4


def file_kind(path: Path) -> str:
    """What a path that is not a regular file is, in words ("character device", "named pipe", ...)."""
    mode = path.stat().st_mode
    for test, kind in (
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "named pipe"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return kind
    return "special file"


class VideoFileSource(Source):
    """A video file, decoded by PyAV with threaded decoding; pts kept; corrupt packets counted.

    A file that delivers fewer frames than its header announces (cut short, or damage
    the demuxer skipped over) plays what it has; the missing frames are counted. An MP4 that ends
    inside a box holding frames was cut (the one sign a fragmented MP4 gives). At the end of the
    file `damage()` says in one line what was wrong, and it is logged once.
    A display matrix (rotation metadata) is applied, so frames are upright as players show them.
    """

    # tolerated gap between the frames a header announces and those decoded
    SHORT_FRAMES, SHORT_FRACTION = 2, 0.05

    def __init__(self, path: Path, options: CaptureConfig) -> None:
        super().__init__()
        self.path = path
        self.name = str(path)
        self.realtime = options.realtime
        self.description = f"file {path.name}"
        self._container: Any = None
        self._ended_by: Exception | None = None  # the demuxer error that ended the stream, if any
        self._turns = 0  # counter-clockwise quarter turns that make a frame upright
        self._peeked: Any = None  # the first frame, decoded by open()
        self._first_pts: float | None = None
        self._last_pts: float | None = None
        self._steps = self._regular_steps = 0  # frame-to-frame steps; those of one nominal period
        self._cut: Cut | None = None  # the MP4 box the file ends inside, where it was cut
        self._announced = 0  # the frames the file announces, where some are missing

    def _open(self) -> None:
        import av

        if not self.path.exists():
            raise InputFileError(f"{self.path}: video file not found")
        if not self.path.is_file():
            raise SourceError(
                f"{self.path}: a {file_kind(self.path)}, not a video file; --source takes {SOURCE_FORMS}"
            )
        if self.path.stat().st_size == 0:
            raise SourceError(f"{self.path}: the file is empty (0 bytes), not a video")
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, UnicodeDecodeError) as exc:
            raise SourceError(
                f"{self.path}: not a video FFmpeg can read ({exc.__class__.__name__}): not a video, "
                "damaged, or an MP4 cut short before its index was written"
            ) from exc
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.path}: has no video stream")
        stream = container.streams.video[0]
        self._cut = self._mp4_cut(container)
        thread_plan().set_decoder(stream, live=False)
        self._container, self._stream = container, stream
        self.fps = float(stream.average_rate or stream.guessed_rate or 30.0)
        self.frames_counted = stream.frames or None  # MP4: its sample count, exact at any frame rate
        self.frames_expected = self.frames_counted
        self.ends_at: float | None = None  # seconds, where the header says the file ends
        if container.duration:
            self.ends_at = ((container.start_time or 0) + container.duration) / 1e6
            if self.frames_expected is None:  # MKV, fragmented MP4: an estimate from the duration
                self.frames_expected = round(container.duration / 1e6 * self.fps)
        self._decoded = self._frames()
        self._t0: float | None = None
        self._first_pts = self._last_pts = None
        self._steps = self._regular_steps = 0
        try:
            self._peeked = next(self._decoded, None)
            if self._peeked is None:
                damaged = f" (damaged data: {self._ended_by})" if self._ended_by is not None else ""
                raise SourceError(f"{self.path}: its video track holds no frame{damaged}; nothing to play")
            self._turns = display_turns(self._peeked, self.name)
        except SourceError:
            self.close()
            raise
        self.width, self.height = self._peeked.width, self._peeked.height
        if self._turns % 2:
            self.width, self.height = self.height, self.width
        if self._turns:
            log.info(
                "%s: its display matrix turns it %d degrees; frames are turned upright (%dx%d)",
                self.name,
                90 * self._turns,
                self.width,
                self.height,
            )

    def _frames(self):  # type: ignore[no-untyped-def]
        import av

        assert self._container is not None
        packets = self._container.demux(self._stream)
        decoded = 0
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:  # a truncated or damaged container, or a cut stream
                self._ended_by = exc
                try:  # the frames still inside the (threaded) decoder
                    frames = self._stream.codec_context.decode(None)
                except av.error.FFmpegError:
                    frames = []
                for frame in frames:  # a flushed frame has no time base of its own
                    frame.time_base = self._stream.time_base
                yield from frames
                decoded += len(frames)
                break
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                self.skip(CORRUPT)
                continue
            yield from frames
            decoded += len(frames)
        self._stream_ended(decoded)

    def _mp4_cut(self, container: Any) -> Cut | None:
        if "mp4" not in container.format.name.split(","):
            return None
        try:
            return mp4_cut(self.path)
        except OSError:  # FFmpeg opened it a moment ago: nothing to add to what it reads
            return None

    def _stream_ended(self, decoded: int) -> None:
        """At the end of the file: count what a cut-short or damaged file did not deliver; say it once."""
        if decoded == 0:
            return  # not a damaged video but none at all: open() says so
        if self._ended_by is not None:
            self.skip("unreadable container data")
        expected = self._frames_announced(decoded)
        missing = expected - decoded - self.skipped.get(CORRUPT, 0)
        if missing > max(self.SHORT_FRAMES, self.SHORT_FRACTION * expected):
            self.skipped[MISSING] = missing
            self._announced = expected
        damage = self.damage()
        if damage:
            log.warning(
                "%s: damaged input: %s; the results hold the %d frames that could be read",
                self.name,
                damage,
                decoded,
            )

    def damage(self) -> str | None:
        """What was wrong with the file, in one line (None: nothing), as far as it was read: where
        it was cut, the frames it announces but does not hold, packets that did not decode."""
        found = [self._cut.describe()] if self._cut is not None else []
        if self.skipped.get(MISSING):
            found.append(
                f"{self.skipped[MISSING]} of the {self._announced} frames the file announces are missing"
            )
        if self.skipped.get(CORRUPT):
            found.append(f"{self.skipped[CORRUPT]} corrupt packet(s) skipped")
        if self._ended_by is not None:
            reason = getattr(self._ended_by, "strerror", None) or type(self._ended_by).__name__
            found.append(f"reading stopped at damaged data ({reason})")
        return "; ".join(found) or None

    def _frames_announced(self, decoded: int) -> int:
        """The frames the file should hold: MP4's sample count, else its duration at the frame rate,
        where the frames came at that constant rate. At a variable rate the duration only says
        whether the file ends early: the frames decoded, plus those at their own mean rate that
        would fill the time it falls short (an intact file is never called damaged)."""
        if self.frames_counted:
            return self.frames_counted
        if self.ends_at is None or self._first_pts is None or self._last_pts is None:
            return decoded
        if self._regular_steps >= 0.9 * self._steps:
            return self.frames_expected or decoded
        span = self._last_pts - self._first_pts
        rate = self._steps / span if span > 0 else self.fps
        short = self.ends_at - (self._last_pts + 1 / rate)
        return decoded + max(0, round(short * rate))

    def _read_rgb(self) -> tuple[np.ndarray, float] | None:
        frame = self._peeked if self._peeked is not None else next(self._decoded, None)
        self._peeked = None
        if frame is None:
            return None
        pts = float(frame.time) if frame.time is not None else math.nan
        if not math.isfinite(pts):
            pts = self._count / self.fps
        if self._last_pts is not None:
            self._steps += 1
            self._regular_steps += abs((pts - self._last_pts) * self.fps - 1.0) <= 0.1
        else:
            self._first_pts = pts
        self._last_pts = pts
        if self.realtime:
            if self._t0 is None:
                self._t0 = time.monotonic() - pts
            delay = self._t0 + pts - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        rgb = frame.to_ndarray(format="rgb24")
        if self._turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, self._turns))
        return rgb, pts

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
