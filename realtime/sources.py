"""Video sources behind one interface, picked by `open_source(spec)` from the --source string.

Every source hands out RGB frames (BGR from OpenCV is converted here, at the door),
stamped with a monotonic capture time. A live source (camera, stream, synthetic)
is never blocked by the pipeline; a file source is (nothing is lost).
"""

from __future__ import annotations

import logging
import math
import re
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


class SourceStalled(SourceError):
    """A live source delivered no frame within the stall timeout."""


class Source(ABC):
    """`open()`, then `read()` until it returns None (end of stream), then `close()`."""

    live: bool = False
    description: str = ""
    fps: float = 30.0
    width: int = 0
    height: int = 0

    def __init__(self) -> None:
        self.skipped: dict[str, int] = {}  # bad input stepped over, by reason
        self._count = 0

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def _read_rgb(self) -> tuple[np.ndarray, float] | None:
        """(RGB frame, pts in seconds), or None at the end of the stream."""

    def read(self) -> Frame | None:
        got = self._read_rgb()
        if got is None:
            return None
        rgb, pts = got
        frame = Frame(self._count, pts, now_ns(), rgb)
        self._count += 1
        return frame

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    @abstractmethod
    def close(self) -> None: ...


class VideoFileSource(Source):
    """A video file, decoded by PyAV with threaded decoding; pts kept; corrupt packets counted.

    A file that delivers fewer frames than its header announces (cut short, or damage
    the demuxer skipped over) plays what it has; the missing frames are counted and logged.
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

    def open(self) -> None:
        import av

        if not self.path.is_file():
            raise InputFileError(f"{self.path}: video file not found")
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
        self.width, self.height = stream.codec_context.width, stream.codec_context.height
        self.fps = float(stream.average_rate or stream.guessed_rate or 30.0)
        self.frames_expected = stream.frames or None
        if self.frames_expected is None and container.duration:  # MKV, fragmented MP4: from the duration
            self.frames_expected = round(container.duration / 1e6 * self.fps)
        self._decoded = self._frames()
        self._t0: float | None = None

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
        if self._ended_by is not None:
            self.skip("unreadable container data")
            log.warning("%s: stopped reading at damaged data (%s)", self.name, self._ended_by)
        expected = self.frames_expected or 0
        missing = expected - decoded - self.skipped.get("corrupt packets", 0)
        if missing > max(self.SHORT_FRAMES, self.SHORT_FRACTION * expected):
            self.skipped["frames missing (file damaged or cut short)"] = missing
            log.warning(
                "%s: %d of the %d frames its header announces could not be read (damaged or cut short)",
                self.name,
                missing,
                expected,
            )

    def _read_rgb(self) -> tuple[np.ndarray, float] | None:
        frame = next(self._decoded, None)
        if frame is None:
            return None
        pts = float(frame.time) if frame.time is not None else math.nan
        if not math.isfinite(pts):
            pts = self._count / self.fps
        if self.realtime:
            if self._t0 is None:
                self._t0 = time.monotonic() - pts
            delay = self._t0 + pts - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return frame.to_ndarray(format="rgb24"), pts

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

    def open(self) -> None:
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

    def open(self) -> None:
        import cv2

        api = cv2.CAP_V4L2 if hasattr(cv2, "CAP_V4L2") and Path("/dev").exists() else cv2.CAP_ANY
        cap = cv2.VideoCapture(self.device, api)
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
        import cv2

        assert self._cap is not None
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise SourceStalled(f"camera {self.device}: no frame (unplugged or stalled)")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time.monotonic() - self._t0

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

    def open(self) -> None:
        self.files = image_files(self.folder)
        if not self.files:
            raise SourceError(f"{self.folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        self._next = 0
        first = self._load(self.files[0])
        if first is None:
            raise SourceError(f"{self.files[0]}: cannot read the first image of the folder")
        self.height, self.width = first.shape[:2]

    @staticmethod
    def _load(path: Path) -> np.ndarray | None:
        import cv2

        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

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


class SyntheticSource(Source):
    """`synthetic:WxH@FPS[?seed=K&loop=N]`: a live colonoscopy-like scene, paced at FPS like a camera.

    loop=N renders N frames once and cycles through them, so a benchmark at 1080p60 does
    not depend on how fast the scene generator is.
    """

    live = True

    def __init__(self, spec: str, options: CaptureConfig) -> None:
        super().__init__()
        match = SYNTHETIC.match(spec)
        if not match:
            raise SourceError(
                f"{spec!r}: write synthetic sources as synthetic:WIDTHxHEIGHT@FPS, e.g. synthetic:640x480@30"
            )
        w, h, fps, query = match.groups()
        self.width, self.height = int(w or 640), int(h or 480)
        self.fps = float(fps or options.fps or 30.0)
        self.params = {k: v[-1] for k, v in parse_qs(query or "").items()}
        self.seed = self.int_param("seed", 0)
        self.loop = self.int_param("loop", 0)
        self._rendered: list[np.ndarray] = []
        self.stall_timeout = options.stall_timeout
        self.description = f"synthetic {self.width}x{self.height}@{self.fps:g}"
        self._next_t: float | None = None

    def int_param(self, name: str, default: int) -> int:
        try:
            return int(self.params.get(name, default))
        except ValueError as exc:
            raise SourceError(
                f"synthetic source: {name}={self.params[name]!r} is not a whole number"
            ) from exc

    def open(self) -> None:
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
        if self._rendered:
            return self._rendered[self._count % self.loop], self._count / self.fps
        return self.clip.frame(self._count)[0], self._count / self.fps

    def close(self) -> None:
        pass


SourceFactory = Callable[[str, CaptureConfig], Source]
# (prefix of the --source string, the Source class for it); checked in order, before paths
KINDS: list[tuple[str, SourceFactory]] = [
    ("synthetic:", SyntheticSource),
    *((scheme, StreamSource) for scheme in STREAM_SCHEMES),
    ("/dev/video", CameraSource),
]


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
