"""Latency statistics: per stage, the two delays, drops, throughput.

The video delay runs from a frame's capture to its picture ready for the sinks (the window, the
recording, every video sink): `e2e`, the same figure under its older name. The annotation delay
runs from the capture of a frame the model saw to the first frame shown with its mask. In the
synced display the two are one (each frame waits for its own mask); in the passthrough display
the video delay is the drawing alone and the annotation delay the model's.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polyp_rt.core.files import write_json
from polyp_rt.realtime.frame import GPU_STEPS, Frame, Stamp, now_ns

STAGE_NAMES = {  # each stage's time runs from the frame's previous stamp to its own
    Stamp.DEQUEUED: "queue",  # waiting for the inference thread
    Stamp.PREPROCESSED: "preprocess",
    Stamp.INFERRED: "infer",  # throughput mode: includes the wait behind the request ahead
    Stamp.POSTPROCESSED: "postprocess",
    # waiting for the output thread, behind the frames ahead (their drawing, window and sinks, a
    # recording's encoder among them); passthrough: from the capture
    Stamp.HANDED: "output queue",
    Stamp.OVERLAID: "overlay",  # the mask placed and drawn
}
_ORDER = list(Stamp)
STAGES = tuple((STAGE_NAMES[end], _ORDER[i - 1], end) for i, end in enumerate(_ORDER) if i)
E2E = ("e2e", Stamp.CAPTURED, Stamp.OVERLAID)  # the video delay
# a file read as fast as the pipeline takes it waits in both queues, behind the inference thread
# and behind the output thread (back-pressure, not latency): its latency is the rest, the frame's
# own time from the inference thread taking it to its picture drawn
PROCESSING = ("processing", Stamp.DEQUEUED, Stamp.OVERLAID)
ANNOTATION, MASK_AGE = "annotation", "mask age"  # samples the shown frames give besides their stamps
PERCENTILES = (50, 90, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (linear interpolation), NaN for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def summarise(samples_ms: Sequence[float]) -> dict[str, float | int]:
    """count, mean, p50, p90, p99, max of latencies in ms (NaN where there are no samples)."""
    values = np.asarray(samples_ms, dtype=np.float64)
    empty = values.size == 0
    p50, p90, p99 = (percentile(values, q) for q in PERCENTILES)  # type: ignore[arg-type]
    return {
        "count": int(values.size),
        "mean": float("nan") if empty else float(values.mean()),
        "p50": p50,
        "p90": p90,
        "p99": p99,
        "max": float("nan") if empty else float(values.max()),
    }


def _output_wait(frame: Frame) -> int:
    """ns the frame waited in the output queue (0 where that was not stamped)."""
    handed, ready = frame.stamps.get(Stamp.HANDED), frame.stamps.get(Stamp.POSTPROCESSED)
    return handed - ready if handed is not None and ready is not None else 0


@dataclass
class LatencyStats:
    """Collects finished frames (thread-safe); `summary()` gives the numbers for tables and JSON."""

    started_ns: int = field(default_factory=now_ns)
    # compact float64 arrays: 8 bytes a sample, so an hour at 60 fps costs a few MB
    samples: dict[str, array[float]] = field(
        default_factory=lambda: {
            name: array("d") for name in (*STAGE_NAMES.values(), E2E[0], PROCESSING[0], ANNOTATION, MASK_AGE)
        }
    )
    frames_in: int = 0
    frames_out: int = 0
    inferred: int = 0  # frames the model saw (synced: every frame shown)
    unannotated: int = 0  # frames shown without a mask (passthrough: none young enough)
    modes: dict[str, Any] = field(default_factory=dict)  # display, inference, requests (realtime/modes.py)
    dropped: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # bad input the source stepped over
    nonfinite_frames: int = 0  # frames whose logits held NaN or infinity (the stage counts them)
    damage: str | None = None  # what was wrong with the input, in one line (Source.damage)
    events: list[str] = field(default_factory=list)  # reconnects and the like, for the log and JSON
    gpu_samples: dict[str, array[float]] = field(  # GPU frame path: CUDA-event ms per step
        default_factory=lambda: {step: array("d") for step in GPU_STEPS}
    )
    interpreter: dict[str, Any] = field(default_factory=dict)  # GIL interval and GC pauses of the run
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _finished_ns: int | None = None
    _last_mask_from: int | None = None

    def add(self, frame: Frame) -> None:
        """A frame shown (handed to the sinks): its stages, its video delay, its mask's age, and the
        annotation delay of its mask where it is the first frame that mask is drawn on."""
        with self._lock:
            self.frames_out += 1
            self._add_stages(frame)
            overlaid = frame.stamps.get(Stamp.OVERLAID)
            if overlaid is not None:
                self.samples[E2E[0]].append((overlaid - frame.t_capture_ns) / 1e6)
                dequeued = frame.stamps.get(Stamp.DEQUEUED)
                if dequeued is not None:
                    self.samples[PROCESSING[0]].append((overlaid - dequeued - _output_wait(frame)) / 1e6)
            age = frame.mask_age_ms
            if age is not None and frame.mask_from is not None:
                self.samples[MASK_AGE].append(age)
                if frame.mask_from != self._last_mask_from and overlaid is not None:
                    self._last_mask_from = frame.mask_from
                    self.samples[ANNOTATION].append((overlaid - frame.t_capture_ns) / 1e6 + age)
            for step, ms in frame.gpu_ms.items():
                self.gpu_samples[step].append(ms)

    def add_inferred(self, frame: Frame) -> None:
        """A frame the model saw but that is not itself shown (the passthrough display's copy)."""
        with self._lock:
            self._add_stages(frame)

    def _add_stages(self, frame: Frame) -> None:
        stamps = frame.stamps
        if Stamp.INFERRED in stamps:
            self.inferred += 1
        previous = stamps[Stamp.CAPTURED]
        for step in _ORDER[1:]:
            at = stamps.get(step)
            if at is not None:
                self.samples[STAGE_NAMES[step]].append((at - previous) / 1e6)
                previous = at

    def recent_e2e(self, n: int = 300, series: str = "e2e") -> list[float]:
        """The last `n` samples of a series (end to end unless another is named)."""
        with self._lock:
            return self.samples[series][-n:].tolist()

    def recent_e2e_percentile(self, q: float, n: int = 300, series: str = "e2e") -> float:
        """The q-th percentile of the last `n` end-to-end latencies, or of another series (0.0
        before the first frame)."""
        recent = self.recent_e2e(n, series)
        return percentile(recent, q) if recent else 0.0

    def finish(self) -> None:
        self._finished_ns = now_ns()

    @property
    def seconds(self) -> float:
        return ((self._finished_ns or now_ns()) - self.started_ns) / 1e9

    def summary(self) -> dict[str, Any]:
        with self._lock:
            stages = {name: summarise(self.samples[name]) for name, _, _ in STAGES}
            e2e = summarise(self.samples[E2E[0]])
            processing = summarise(self.samples[PROCESSING[0]])
            seconds = self.seconds
            return {
                "modes": dict(self.modes),
                "frames_in": self.frames_in,
                "frames_processed": self.frames_out,
                "frames_inferred": self.inferred,
                "frames_unannotated": self.unannotated,
                "dropped": dict(self.dropped),
                "dropped_total": sum(self.dropped.values()),
                "skipped": dict(self.skipped),
                "nonfinite_frames": self.nonfinite_frames,
                "damage": self.damage,
                "seconds": seconds,
                "fps": self.frames_out / seconds if seconds > 0 else 0.0,
                "stages_ms": stages,
                "e2e_ms": e2e,
                "processing_ms": processing,
                "video_delay_ms": e2e,
                "annotation_delay_ms": summarise(self.samples[ANNOTATION]),
                "mask_age_ms": summarise(self.samples[MASK_AGE]),
                "gpu_ms": {step: summarise(v) for step, v in self.gpu_samples.items() if v},
                "events": list(self.events),
                "interpreter": dict(self.interpreter),
            }


def write_stats_json(path: Path, summary: dict[str, Any], extra: dict[str, Any]) -> None:
    write_json(path, {**summary, **extra})
