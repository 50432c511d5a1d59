"""Video sources behind one interface, picked by `open_source(spec)` from the --source string.

Every source hands out RGB frames (BGR from OpenCV is converted here, at the door),
stamped with a monotonic capture time. A live source (camera, stream, synthetic)
is never blocked by the pipeline; a file source is (nothing is lost).
"""

from __future__ import annotations

import logging
import math
import re
import stat
import struct
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np

from polyp_rt.core.errors import InputFileError, SourceError
from polyp_rt.core.files import IMAGE_SUFFIXES, image_files
from polyp_rt.realtime.config import CaptureConfig
from polyp_rt.realtime.frame import Frame, now_ns

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://", "srt://")
MIN_SIDE = 8  # smallest frame width and height the pipeline takes


class SourceStalled(SourceError):
    """A live source delivered no frame within the stall timeout."""


class Source(ABC):
    """`open()`, then `read()` until it returns None (end of stream), then `close()`.

    Every frame has the size the source had when it opened: a frame of another size (an image
    folder of mixed sizes, a stream that changes resolution) is scaled to fit and letterboxed,
    and that is noted once in `notes`.
    """

    live: bool = False
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
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    @abstractmethod
    def close(self) -> None: ...


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
    the demuxer skipped over) plays what it has; the missing frames are counted and logged.
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

    def _open(self) -> None:
        import av

        if not self.path.exists():
            raise InputFileError(f"{self.path}: video file not found")
        if not self.path.is_file():
            raise SourceError(
                f"{self.path}: a {file_kind(self.path)}, not a video file; --source takes a video file, "
                "an image folder, a camera (0 or /dev/videoN), an rtsp:// or http:// URL, or synthetic:640x480@30"
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
        stream.thread_type = "AUTO"
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
                self.skip("corrupt packets")
                continue
            yield from frames
            decoded += len(frames)
        self._stream_ended(decoded)

    def _stream_ended(self, decoded: int) -> None:
        """At the end of the file: count what a cut-short or damaged file did not deliver."""
        if decoded == 0:
            return  # not a damaged video but none at all: open() says so
        if self._ended_by is not None:
            self.skip("unreadable container data")
            log.warning("%s: stopped reading at damaged data (%s)", self.name, self._ended_by)
        expected = self._frames_announced(decoded)
        missing = expected - decoded - self.skipped.get("corrupt packets", 0)
        if missing > max(self.SHORT_FRAMES, self.SHORT_FRACTION * expected):
            self.skipped["frames missing (file damaged or cut short)"] = missing
            log.warning(
                "%s: %d of the %d frames its header announces could not be read (damaged or cut short)",
                self.name,
                missing,
                expected,
            )

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


class StreamSource(VideoFileSource):
    """An RTSP/HTTP/... URL through PyAV with low-latency options; live.

    A live stream has no end: the server closing it, or no data for the stall
    timeout, raises SourceStalled, and the pipeline reconnects.
    """

    live = True

    def __init__(self, url: str, options: CaptureConfig) -> None:
        super().__init__(Path(url), options)
        self.url = self.name = url
        self.realtime = False
        self.stall_timeout = options.stall_timeout
        self.description = f"stream {url}"

    def _open(self) -> None:
        import av

        opts = {
            "fflags": "nobuffer",
            "flags": "low_delay",
            "probesize": "500000",
            "analyzeduration": "500000",
        }
        if self.url.startswith("rtsp"):
            opts["rtsp_transport"] = "tcp"
        try:
            container = av.open(self.url, options=opts, timeout=(self.stall_timeout * 2, self.stall_timeout))
        except (av.error.FFmpegError, OSError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            if isinstance(exc, av.error.ExitError):
                why = f"no answer within {self.stall_timeout * 2:g} s"
            raise SourceError(f"{self.url}: cannot open the stream ({why})") from exc
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.url}: the stream has no video")
        self._container, self._stream = container, container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.width, self.height = self._stream.codec_context.width, self._stream.codec_context.height
        self.fps = float(self._stream.average_rate or self._stream.guessed_rate or 30.0)
        self.frames_expected = None
        self._ended_by = None
        self._decoded = self._frames()

    def _stream_ended(self, decoded: int) -> None:
        pass  # not damage: _read_rgb says what happened

    def _read_rgb(self) -> tuple[np.ndarray, float] | None:
        got = super()._read_rgb()
        if got is not None:
            return got
        import av

        # a live stream does not end: it was cut, or stalled past the read timeout
        if isinstance(self._ended_by, av.error.ExitError):
            raise SourceStalled(f"{self.url}: no data for {self.stall_timeout:g} s (stream stalled)")
        cause = f" ({getattr(self._ended_by, 'strerror', None) or self._ended_by})" if self._ended_by else ""
        raise SourceStalled(f"{self.url}: the server ended the stream{cause}")


class CameraSource(Source):
    """A webcam or capture card (OpenCV, V4L2 on Linux): index or /dev/videoN."""

    live = True

    def __init__(self, device: int | str, options: CaptureConfig) -> None:
        super().__init__()
        self.device = device
        self.options = options
        self.description = f"camera {device}"
        self._cap: Any = None

    def _open(self) -> None:
        import cv2

        api = cv2.CAP_V4L2 if hasattr(cv2, "CAP_V4L2") and Path("/dev").exists() else cv2.CAP_ANY
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # its WARN lines: ours says it
        try:
            cap = cv2.VideoCapture(self.device, api)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not cap.isOpened():
            cap.release()
            where = self.device if isinstance(self.device, str) else f"/dev/video{self.device}"
            raise SourceError(
                f"camera {self.device}: cannot open it ({where} missing or busy); "
                "list cameras with `v4l2-ctl --list-devices` or pass a video file"
            )
        o = self.options
        if o.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*o.fourcc[:4].ljust(4)))
        if o.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, o.width)
        if o.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, o.height)
        if o.fps:
            cap.set(cv2.CAP_PROP_FPS, o.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
        granted = "".join(chr((code >> 8 * i) & 0xFF) for i in range(4)) if code else "?"
        log.info(
            "camera %s granted %dx%d @ %.3g fps, %s", self.device, self.width, self.height, self.fps, granted
        )
        self.granted = {"width": self.width, "height": self.height, "fps": self.fps, "fourcc": granted}
        self._cap = cap
        self._t0 = time.monotonic()

    def _read_rgb(self) -> tuple[np.ndarray, float] | None:
        assert self._cap is not None
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise SourceStalled(f"camera {self.device}: no frame (unplugged or stalled)")
        return self._to_rgb(bgr), time.monotonic() - self._t0

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class ImageFolderSource(Source):
    """A folder of images in sorted order; an unreadable image is skipped and counted."""

    def __init__(self, folder: Path, options: CaptureConfig) -> None:
        super().__init__()
        self.folder = folder
        self.fps = options.fps or 30.0
        self.description = f"images in {folder}"

    def _open(self) -> None:
        self.files = image_files(self.folder)
        if not self.files:
            raise SourceError(f"{self.folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        self._next = 0
        first = self._load(self.files[0])
        if first is None:
            raise SourceError(f"{self.files[0]}: cannot read the first image of the folder")
        self.height, self.width = first.shape[:2]

    def _load(self, path: Path) -> np.ndarray | None:
        import cv2

        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return None if bgr is None else self._to_rgb(bgr)

    def _read_rgb(self) -> tuple[np.ndarray, float] | None:
        while self._next < len(self.files):
            path, index = self.files[self._next], self._next
            self._next += 1
            rgb = self._load(path)
            if rgb is None:
                log.warning("%s: unreadable image, skipped", path)
                self.skip("unreadable images")
                continue
            return rgb, index / self.fps
        return None

    def close(self) -> None:
        pass


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


SourceFactory = Callable[[str, CaptureConfig], Source]
# (prefix of the --source string, the Source class for it); checked in order, before paths
KINDS: list[tuple[str, SourceFactory]] = [
    ("synthetic:", SyntheticSource),
    *((scheme, StreamSource) for scheme in STREAM_SCHEMES),
    ("/dev/video", CameraSource),
]


def source_path(spec: str) -> Path | None:
    """The file or folder a --source string names; None for a camera, a stream or a synthetic scene."""
    if spec.isdigit() or any(spec.startswith(prefix) for prefix, _ in KINDS):
        return None
    return Path(spec)


def open_source(spec: str, options: CaptureConfig) -> Source:
    """The source for a --source string (not yet opened)."""
    for prefix, kind in KINDS:
        if spec.startswith(prefix):
            return kind(spec, options)
    if spec.isdigit():
        return CameraSource(int(spec), options)
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path, options)
    if not path.exists():
        raise InputFileError(
            f"{spec}: no such file or folder; --source takes a video file, an image folder, "
            "a camera index (0), /dev/videoN, an rtsp:// or http:// URL, or synthetic:640x480@30"
        )
    return VideoFileSource(path, options)
