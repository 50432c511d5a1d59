"""Network streams (RTSP, HTTP, RTMP, UDP, SRT, ...) through PyAV with low-latency options."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from polyp_rt.core.errors import SourceError
from polyp_rt.core.redact import redact
from polyp_rt.realtime.config import CaptureConfig
from polyp_rt.realtime.sources.base import SourceStalled
from polyp_rt.realtime.sources.video_file import VideoFileSource
from polyp_rt.realtime.threads import thread_plan

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://", "srt://")


class StreamSource(VideoFileSource):
    """An RTSP/HTTP/... URL through PyAV with low-latency options; live.

    A live stream has no end: the server closing it, or no data for the stall
    timeout, raises SourceStalled, and the pipeline reconnects. The URL as given opens the
    stream and nothing else: `name` and every message show it redacted (no user info, no
    token), since a camera's URL often carries its password.
    """

    live = True

    def __init__(self, url: str, options: CaptureConfig) -> None:
        shown = redact(url)
        super().__init__(Path(shown), options)
        self._url, self.name = url, shown
        self.realtime = False
        self.stall_timeout = options.stall_timeout
        self.description = f"stream {shown}"

    def _open(self) -> None:
        import av

        opts = {
            "fflags": "nobuffer",
            "flags": "low_delay",
            "probesize": "500000",
            "analyzeduration": "500000",
        }
        if self._url.startswith("rtsp"):
            opts["rtsp_transport"] = "tcp"
        try:
            container = av.open(self._url, options=opts, timeout=(self.stall_timeout * 2, self.stall_timeout))
        except (av.error.FFmpegError, OSError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)  # FFmpeg's text may quote the URL
            if isinstance(exc, av.error.ExitError):
                why = f"no answer within {self.stall_timeout * 2:g} s"
            # not chained: a traceback (--debug) would print FFmpeg's error, which quotes the URL
            raise SourceError(f"{self.name}: cannot open the stream ({redact(why)})") from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.name}: the stream has no video")
        self._container, self._stream = container, container.streams.video[0]
        thread_plan().set_decoder(self._stream, live=True)
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
            raise SourceStalled(f"{self.name}: no data for {self.stall_timeout:g} s (stream stalled)")
        cause = f" ({getattr(self._ended_by, 'strerror', None) or self._ended_by})" if self._ended_by else ""
        raise SourceStalled(f"{self.name}: the server ended the stream{redact(cause)}")
