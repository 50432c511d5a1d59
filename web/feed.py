"""The live view's frames, from the pipeline to every browser without holding up either side.

    pipeline's output thread          encoder thread                server's event loop
    LiveSink.write(frame) -> NewestBox (one slot) -> JPEG, once -> Broadcast -> each viewer

The sink only copies the picture into a one-slot box (and nothing at all while no one watches):
a newer frame replaces one the encoder has not taken yet. The encoder thread turns the newest
picture into one JPEG however many viewers there are, and hands it to the server's event loop,
where each viewer is sent the newest frame it has not seen as soon as it has room for one
(`IN_FLIGHT` frames it has not yet drawn). A slow or stalled viewer therefore skips frames; it
never makes the pipeline, the encoder or another viewer wait.

A frame on the wire is one binary WebSocket message: a 4-byte big-endian header length, the
header as JSON (frame index, capture time on the server's monotonic clock, e2e latency, fps,
polyp indicator), then the JPEG.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import threading
import time
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import cv2
import numpy as np

from polyp_rt.realtime.frame import Frame, Stamp, now_ns
from polyp_rt.realtime.sinks import Sink
from polyp_rt.realtime.stats import summarise

log = logging.getLogger(__name__)

JPEG_QUALITY = 80
IN_FLIGHT = 2  # frames sent to a viewer that it has not yet drawn: one on the way while one decodes
T = TypeVar("T")


@dataclass
class Shown:
    """A frame as the pipeline showed it, copied out of the pipeline's hands."""

    rgb: np.ndarray
    index: int
    t_capture_ns: int  # the pipeline's monotonic clock (`time.monotonic_ns`)
    e2e_ms: float
    polyp: bool
    fps: float


class NewestBox(Generic[T]):
    """One slot between two threads: `put` replaces what is there (counted in `replaced`), `take`
    waits for an item and empties the slot; after `close`, `take` returns None."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.replaced = 0

    def put(self, item: T) -> None:
        with self._ready:
            if self._item is not None:
                self.replaced += 1
            self._item = item
            self._ready.notify()

    def take(self) -> T | None:
        with self._ready:
            self._ready.wait_for(lambda: self._item is not None or self._closed)
            item, self._item = self._item, None
            return None if self._closed else item

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()


class Broadcast:
    """The newest encoded frame, on the server's event loop. Each viewer holds an event of its own
    (`subscribe`), set whenever a frame comes or the run ends, and looks at `seq` to see if it is new."""

    def __init__(self) -> None:
        self.message = b""
        self.seq = 0  # frames published so far
        self.ended = False
        self._viewers: set[asyncio.Event] = set()

    def subscribe(self) -> asyncio.Event:
        event = asyncio.Event()
        if self.seq or self.ended:
            event.set()  # the newest frame is there to see at once
        self._viewers.add(event)
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        self._viewers.discard(event)

    def publish(self, message: bytes) -> None:
        self.message, self.seq = message, self.seq + 1
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        for event in self._viewers:
            event.set()


def pack(header: dict[str, Any], jpeg: bytes) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">I", len(head)) + head + jpeg


class LiveFeed:
    """The frames of one run, for the live view. `attach` (by the server, on its loop) starts the
    encoder; `offer` (by the sink) hands a frame over; `end` tells the viewers the run is over."""

    def __init__(self, quality: int = JPEG_QUALITY) -> None:
        self.quality = quality
        self.box: NewestBox[Shown] = NewestBox()
        self.broadcast = Broadcast()
        self.viewers = 0  # changed on the server's loop, read by the sink: an int, no lock needed
        self.viewers_max = 0
        self.offered = 0
        self.encode_ms: array[float] = array("d")
        self._arrivals: deque[float] = deque(maxlen=60)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._encoder: threading.Thread | None = None

    # ------------------------------------------------------------ the pipeline's side

    def offer(self, frame: Frame) -> None:
        """On the pipeline's output thread: costs a picture copy while someone watches, else nothing."""
        now = time.monotonic()
        self._arrivals.append(now)
        self.offered += 1
        if not self.viewers or frame.overlay is None:
            return
        span = self._arrivals[-1] - self._arrivals[0]
        fps = (len(self._arrivals) - 1) / span if span > 0 else 0.0
        done = frame.stamps.get(Stamp.OVERLAID, now_ns())
        # a copy: on the GPU path the picture is a pooled buffer the stage reuses a few frames on
        picture = np.array(frame.overlay, copy=True)
        e2e = (done - frame.t_capture_ns) / 1e6
        self.box.put(Shown(picture, frame.index, frame.t_capture_ns, e2e, frame.polyp, fps))

    def end(self) -> None:
        """The run is over: the encoder stops, every viewer is told."""
        self.box.close()
        if self._encoder is not None:
            self._encoder.join(timeout=5.0)
        self._call(self.broadcast.end)

    # ------------------------------------------------------------ the server's side

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called on the server's event loop once it runs: the encoder thread starts."""
        self._loop = loop
        self._encoder = threading.Thread(target=self._encode_all, name="polyp-rt web encoder", daemon=True)
        self._encoder.start()

    def joined(self) -> None:
        self.viewers += 1
        self.viewers_max = max(self.viewers_max, self.viewers)

    def left(self) -> None:
        self.viewers -= 1

    def _encode_all(self) -> None:
        try:
            while (shown := self.box.take()) is not None:
                self._call(self.broadcast.publish, self.encode(shown))
        except Exception:  # the live view stops; the run and its recording go on
            log.exception("the live view's encoder failed; the browsers get no more frames")
            self._call(self.broadcast.end)

    def encode(self, shown: Shown) -> bytes:
        started = time.perf_counter()
        bgr = cv2.cvtColor(shown.rgb, cv2.COLOR_RGB2BGR)
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        encode_ms = (time.perf_counter() - started) * 1e3
        self.encode_ms.append(encode_ms)
        header = {
            "seq": len(self.encode_ms),  # the broadcast's number for it: a gap is a skipped frame
            "index": shown.index,
            "t_capture_ms": shown.t_capture_ns / 1e6,
            "e2e_ms": round(shown.e2e_ms, 2),
            "fps": round(shown.fps, 2),
            "polyp": shown.polyp,
            "width": int(shown.rgb.shape[1]),
            "height": int(shown.rgb.shape[0]),
            "encode_ms": round(encode_ms, 2),
            "viewers": self.viewers,
        }
        return pack(header, jpeg.tobytes())

    def _call(self, callback: Any, *args: Any) -> None:
        """Run `callback` on the server's loop (if it is still running)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is left to tell
            loop.call_soon_threadsafe(callback, *args)

    def summary(self) -> dict[str, Any]:
        return {
            "frames_offered": self.offered,
            "frames_encoded": len(self.encode_ms),
            "replaced_before_encoding": self.box.replaced,
            "encode_ms": summarise(self.encode_ms),
            "viewers_max": self.viewers_max,
        }


class LiveSink(Sink):
    """A plain video sink: every frame the pipeline shows goes to the live view's feed."""

    needs_picture = True  # browsers are shown the annotated picture, even in a headless run

    def __init__(self, feed: LiveFeed) -> None:
        self.feed = feed

    def write(self, frame: Frame) -> None:
        self.feed.offer(frame)

    def close(self) -> None:
        self.feed.end()

    def summary(self) -> dict[str, object]:
        return {"live_view": self.feed.summary()}
