"""The live loop: two worker threads (capture, inference) feed the calling thread, which draws
the overlay and serves the sinks and the window (OpenCV windows want the main thread).

The synced display (realtime/modes.py):
    source -> capture queue -> inference -> output queue -> overlay -> sinks
each frame waits for its own mask; in the throughput mode the inference thread keeps two frames'
requests under way, finishing them in order.

The passthrough display:
    source -> video queue ------------------------------> overlay -> sinks   (every frame)
           -> newest frame (one slot) -> inference -> newest mask --^
every frame goes straight on to be drawn with the newest finished mask; the model takes the
newest frame whenever it is free, and the frames it does not see are not lost, only not inferred.

Any thread's error, a quit key, Ctrl-C or SIGTERM sets one stop event; every
thread returns within a bounded time, the first error is re-raised here.

Ctrl-C while the pipeline stops (the recording and statistics being finished) does not cut
that short: the second is noted, a third quits at once (`StopOnSignals`).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from types import FrameType

from polyp_rt.core import signals
from polyp_rt.core.closing import Closing
from polyp_rt.core.errors import SourceError
from polyp_rt.core.signals import SignalWatch, Stopped
from polyp_rt.realtime.annotation import MaskPlacer, NewestMask
from polyp_rt.realtime.config import RunConfig
from polyp_rt.realtime.frame import Frame, Stamp
from polyp_rt.realtime.modes import Modes
from polyp_rt.realtime.overlay import Hud, Overlay
from polyp_rt.realtime.pauses import InterpreterPauses
from polyp_rt.realtime.queues import EndOfStream, FrameQueue
from polyp_rt.realtime.sinks import Display, Sink
from polyp_rt.realtime.sources import Source
from polyp_rt.realtime.stage import InferenceStage
from polyp_rt.realtime.stats import LatencyStats
from polyp_rt.realtime.threads import thread_plan

log = logging.getLogger(__name__)

EXIT_CODES = {"end of stream": 0, "quit": 0, "max frames": 0, **signals.EXIT_CODES}
JOIN_TIMEOUT_S = 10.0
IDLE_S = 0.25  # no frame for this long: keep the window responsive and show the status
BACKOFF_S = 0.5  # before the first reconnect; doubles on each attempt
VIDEO_QUEUE = 4  # passthrough: frames waiting to be drawn (only while the sinks are slower than the source)


@dataclass
class Outcome:
    reason: str  # "end of stream", "quit", "max frames", "interrupted", "terminated", "error"
    error: BaseException | None = None
    stats: LatencyStats = field(default_factory=LatencyStats)

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return int(getattr(self.error, "exit_code", 1))
        return EXIT_CODES[self.reason]


class Pipeline(Closing):
    """The operators `compose()` built, run by two threads and the caller's; closing it closes them."""

    def __init__(
        self,
        source: Source,
        stage: InferenceStage,
        overlay: Overlay,
        sinks: list[Sink],
        config: RunConfig,
        *,
        display: Display | None = None,
        label: str = "",
        on_frame: Callable[[LatencyStats, str], None] | None = None,
        resources: ExitStack | None = None,
        modes: Modes | None = None,
    ) -> None:
        self.source, self.stage, self.overlay = source, stage, overlay
        self.sinks, self.display = sinks, display
        # whether each frame's picture is drawn: only for a window or a sink that shows or keeps it
        self.pictures = display is not None or any(sink.needs_picture for sink in sinks)
        self.config = config
        self.modes = modes or Modes()
        self.label = label  # backend and device, for the HUD
        self.on_frame = on_frame  # live status line
        self.resources = resources or ExitStack()  # closes sinks, stage and source, in that order
        self.stop = threading.Event()
        self.stats = LatencyStats(modes=self.modes.to_json())
        self.status = ""  # e.g. "reconnecting 1/3": on the HUD and the status line
        self._shown_status = ""
        self._last: Frame | None = None  # redrawn with the status while no frame comes
        self._reason: str | None = None
        self.signals_watched = False  # a caller's StopOnSignals handles Ctrl-C and SIGTERM
        self._max_reached = False
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        live, passthrough = source.live, self.modes.passthrough
        # passthrough: one slot that always holds the newest frame for the model
        self.captured: FrameQueue[Frame] = FrameQueue(
            1 if passthrough else config.queue_size, live or passthrough, self.stop
        )
        self.inferred: FrameQueue[Frame] = FrameQueue(config.queue_size, live, self.stop)  # synced only
        self.video: FrameQueue[Frame] = FrameQueue(VIDEO_QUEUE, live, self.stop)  # passthrough only
        self.newest = NewestMask()
        self.placer = MaskPlacer(self.newest, config.max_mask_age, self._event) if passthrough else None
        self.model_status = ""  # passthrough: "MODEL STALLED: ..." while no mask is young enough

    def close(self) -> None:
        self.resources.close()

    # ------------------------------------------------------------ wiring

    def run(self) -> Outcome:
        """Run until the stream ends or something stops it; sinks are closed by the caller."""
        self._guard(self._warm_up)  # an error here stops the run before any thread starts
        loops = [] if self.stop.is_set() else [("capture", self._capture), ("infer", self._infer)]
        threads = [
            threading.Thread(target=self._guard, args=(loop,), name=f"polyp-rt {name}", daemon=True)
            for name, loop in loops
        ]
        pauses = InterpreterPauses(thread_plan(self.config.threads).switch_interval_ms)
        with nullcontext() if self.signals_watched else StopOnSignals(self), pauses:
            for thread in threads:
                thread.start()
            if threads:
                self._guard(self._output)
            self.stop.set()
            for thread in threads:
                thread.join(JOIN_TIMEOUT_S)
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            log.error("threads still running after %.0f s: %s", JOIN_TIMEOUT_S, ", ".join(alive))
        self._finish_counts()
        self.stats.interpreter = pauses.summary()
        return Outcome(self._reason or "end of stream", self._error, self.stats)

    def request_stop(self, reason: str) -> None:
        with self._lock:
            if self._reason is None:
                self._reason = reason
        self.stop.set()

    def _guard(self, loop: Callable[[], None]) -> None:
        """Run one thread's loop; the first error anywhere stops every thread."""
        try:
            loop()
        except (Stopped, EndOfStream):
            pass
        except BaseException as exc:
            with self._lock:
                if self._error is None:
                    self._error = exc
                    self._reason = "error"
            self.stop.set()

    # ------------------------------------------------------------ the three loops

    def _warm_up(self) -> None:
        if self.source.width and self.source.height:
            self.stage.warm_up(self.source.height, self.source.width)
        self.source.frame_buffer = self.stage.frame_buffer

    def _capture(self) -> None:
        attempts = 0
        max_frames = self.config.max_frames
        while not self.stop.is_set():
            try:
                frame = self.source.read()
            except SourceError as exc:
                if not self.source.live:
                    raise
                attempts = self._reconnect(attempts, exc)
                continue
            if frame is None:
                break
            if attempts:
                self._event(f"{self.source.description}: frames again after {attempts} reconnect(s)")
                attempts, self.status = 0, ""
            self.stats.frames_in += 1
            if self.placer is not None:
                self.video.put(frame)  # every frame, at once
                self.captured.put(frame.for_inference())  # replaces a frame the model has not taken
            else:
                self.stage.prepare(frame)  # the GPU path starts the frame's upload here
                self.captured.put(frame)
            while self.source.notes:
                self._event(self.source.notes.pop(0))
            if max_frames is not None and self.stats.frames_in >= max_frames:
                self._max_reached = True
                break
        self.captured.close()
        self.video.close()

    def _reconnect(self, attempts: int, cause: SourceError) -> int:
        """Reopen a live source with doubling back-off until it opens; the attempts used so far.

        Raises SourceError once `reconnects` attempts in a row have not brought frames back.
        """
        n = self.config.capture.reconnects
        while attempts < n:
            attempts += 1
            self.status = f"reconnecting {attempts}/{n}"
            self._event(f"{cause}; reconnecting ({attempts}/{n})")
            self.source.close()
            if self.stop.wait(BACKOFF_S * 2 ** (attempts - 1)):
                return attempts
            try:
                self.source.open()
                return attempts
            except SourceError as exc:
                cause = exc
        if n == 0:
            raise cause
        raise SourceError(f"{cause} (gave up after {n} reconnects)") from cause

    def _infer(self) -> None:
        if self.placer is not None:
            self._infer_newest()
            return
        started: deque[Callable[[], Frame]] = deque()  # more than one: the throughput mode
        try:
            while True:
                frame = self.captured.get()
                frame.stamp(Stamp.DEQUEUED)
                started.append(self.stage.start(frame))
                if len(started) >= self.stage.requests:
                    self.inferred.put(started.popleft()())
        except EndOfStream:
            while started:
                self.inferred.put(started.popleft()())
            self.inferred.close()

    def _infer_newest(self) -> None:
        """Passthrough: the newest frame whenever the model is free; its mask becomes the newest."""
        try:
            while True:
                frame = self.captured.get()
                frame.stamp(Stamp.DEQUEUED)
                self.stage(frame)
                self.stats.add_inferred(frame)
                self.newest.publish(frame)
        except EndOfStream:
            pass

    def _output(self) -> None:
        arrivals: deque[float] = deque(maxlen=60)
        frames = self.video if self.placer is not None else self.inferred
        while True:
            if self.display and self.display.paused and not self.source.live:
                self._on_key(self.display.show(None, wait_ms=30))  # a paused file waits
                if self.stop.is_set():
                    return
                continue
            try:
                while not frames.wait(IDLE_S):
                    self._idle()
                frame = frames.get()
                frame.stamp(Stamp.HANDED)
            except EndOfStream:
                self.request_stop("max frames" if self._max_reached else "end of stream")
                return
            if self.stop.is_set():
                return
            arrivals.append(time.monotonic())
            self._finish(frame, self._hud(frame, arrivals))
            if self.display:  # paused live view: frozen picture, recording goes on
                self._on_key(self.display.show(None if self.display.paused else frame.overlay))
            if self.on_frame:
                self.on_frame(self.stats, self._status_text())

    def _hud(self, frame: Frame, arrivals: deque[float]) -> Hud | None:
        """Put the frame's mask on it (passthrough: the newest young enough) and make what the HUD
        shows on its picture; None where no picture is drawn."""
        if self.placer is None:
            frame.mask_from, frame.mask_captured_ns = frame.index, frame.t_capture_ns
        else:
            self.model_status = self.placer.place(frame)
        if not self.pictures:
            return None
        fps = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
        delay = self.stats.recent_e2e_percentile(50, 30)
        if self.placer is not None:
            stalled = self.model_status.startswith("MODEL STALLED")
            return Hud(
                fps,
                delay,
                self.label,
                self._status_text(with_model=not stalled),
                passthrough=True,
                mask_age_ms=frame.mask_age_ms,
                alert=self.model_status if stalled else "",
            )
        if self.source.live or self.source.realtime:
            return Hud(fps, delay, self.label, self.status)
        # a file read flat out waits in both queues (back-pressure): its latency is the rest
        latency = self.stats.recent_e2e_percentile(50, 30, "processing")
        return Hud(fps, latency, self.label, self.status, latency="latency")

    def _status_text(self, with_model: bool = True) -> str:
        """The source's status and, in passthrough, the model's: for the HUD and the status line."""
        parts = [self.status, self.model_status if with_model else ""]
        return "; ".join(p for p in parts if p)

    def _finish(self, frame: Frame, hud: Hud | None) -> None:
        """Draw the frame (given a `hud`), count it and hand it to the sinks."""
        frame.hud = hud
        self.overlay.draw(frame, hud)
        frame.stamp(Stamp.OVERLAID)
        self._last, self._shown_status = frame, self.status
        self.stats.add(frame)
        for sink in self.sinks:
            sink.write(frame)

    def run_sequential(self, frames: int) -> float:
        """The same operators in one thread, no queues: frames per second (the threading baseline)."""
        self.stage.warm_up(self.source.height, self.source.width)
        started, done = time.perf_counter(), 0
        while done < frames:
            frame = self.source.read()
            if frame is None:
                break
            self._finish(self.stage(frame), Hud(backend=self.label) if self.pictures else None)
            done += 1
        return done / (time.perf_counter() - started)

    def _idle(self) -> None:
        """No frame for a while (a live source reconnecting): pump the window, show the status."""
        changed = self.status != self._shown_status
        self._shown_status = self.status
        if self.display:
            picture = None
            if changed and self._last is not None:
                hud = Hud(0.0, 0.0, self.label, self.status, passthrough=self.placer is not None)
                picture = self.overlay.redraw(self._last, hud)
            self._on_key(self.display.show(picture))
        if changed and self.on_frame:
            self.on_frame(self.stats, self.status)

    def _on_key(self, action: str | None) -> None:
        if action == "quit":
            self.request_stop("quit")
        elif action == "contours":  # the GPU stage draws in the same style
            self.overlay.style.contours = not self.overlay.style.contours
        elif action == "mask":
            self.overlay.style.mask = not self.overlay.style.mask

    # ------------------------------------------------------------ bookkeeping

    def _event(self, text: str) -> None:
        log.warning(text)
        self.stats.events.append(text)

    def _finish_counts(self) -> None:
        self.captured.drain()
        self.inferred.drain()
        self.video.drain()
        if self.placer is not None:  # frames the model did not take were shown all the same
            dropped = {"video queue": self.video.dropped}
            self.stats.unannotated = self.placer.unannotated
        else:
            dropped = {"capture queue": self.captured.dropped, "output queue": self.inferred.dropped}
        # in the queues or in a thread's hands when the run stopped: frames in = processed + dropped
        in_flight = self.stats.frames_in - self.stats.frames_out - sum(dropped.values())
        self.stats.dropped = {**dropped, "at shutdown": max(0, in_flight)}
        self.stats.skipped = dict(self.source.skipped)
        self.stats.nonfinite_frames = self.stage.nonfinite_frames
        self.stats.damage = self.source.damage()
        self.stats.finish()


class StopOnSignals(SignalWatch):
    """While entered (in the main thread): Ctrl-C and SIGTERM stop the pipeline it watches.

    Enter it before the pipeline exists and `watch()` it once it does, so Ctrl-C while the run
    finishes (the recording finalised, the statistics written) is handled too: the first
    Ctrl-C or SIGTERM stops the run, a second Ctrl-C is noted and the finishing goes on, a
    third quits at once (exit 130; the recording keeps what was written, as after a kill).
    Before a pipeline is watched a signal does what it did before (Ctrl-C: KeyboardInterrupt).
    """

    def __init__(self, pipeline: Pipeline | None = None) -> None:
        super().__init__()
        self.pipeline: Pipeline | None = None
        if pipeline is not None:
            self.watch(pipeline)

    def watch(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        pipeline.signals_watched = True

    def handle(self, signum: int, frame: FrameType | None) -> None:
        pipeline = self.pipeline
        if pipeline is None:  # nothing to stop yet
            previous = self.saved.get(signum)
            if callable(previous):
                previous(signum, frame)
                return
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        super().handle(signum, frame)
        name = signal.Signals(signum).name
        if not pipeline.stop.is_set():
            log.warning("%s: stopping and finalising the recording", name)
            pipeline.request_stop(signals.REASONS[signum])
        elif self.interrupts >= 3:
            print("quit at once (third Ctrl-C): the recording keeps what was written", file=sys.stderr)
            sys.stderr.flush()
            os._exit(signals.EXIT_CODES[signals.INTERRUPTED])
        elif signum == signal.SIGINT:
            log.warning(
                "%s: still finalising the recording and the statistics; a third Ctrl-C quits at once", name
            )
        else:
            log.warning("%s: already stopping", name)
