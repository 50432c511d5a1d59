"""Latency statistics: per stage and end to end (capture -> overlay ready), drops, throughput."""

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

STAGE_NAMES = {  # each stage's time runs from the previous stamp to its own
    Stamp.DEQUEUED: "queue",  # waiting for the inference thread
    Stamp.PREPROCESSED: "preprocess",
    Stamp.INFERRED: "infer",
    Stamp.POSTPROCESSED: "postprocess",
    Stamp.OVERLAID: "overlay",  # output queue wait + drawing
}
_ORDER = list(Stamp)
STAGES = tuple((STAGE_NAMES[end], _ORDER[i - 1], end) for i, end in enumerate(_ORDER) if i)
E2E = ("e2e", Stamp.CAPTURED, Stamp.OVERLAID)
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


@dataclass
class LatencyStats:
    """Collects finished frames (thread-safe); `summary()` gives the numbers for tables and JSON."""

    started_ns: int = field(default_factory=now_ns)
    # compact float64 arrays: 8 bytes a sample, so an hour at 60 fps costs a few MB
    samples: dict[str, array[float]] = field(
        default_factory=lambda: {name: array("d") for name, _, _ in (*STAGES, E2E)}
    )
    frames_in: int = 0
    frames_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # bad input the source stepped over
    damage: str | None = None  # what was wrong with the input, in one line (Source.damage)
    events: list[str] = field(default_factory=list)  # reconnects and the like, for the log and JSON
    gpu_samples: dict[str, array[float]] = field(  # GPU frame path: CUDA-event ms per step
        default_factory=lambda: {step: array("d") for step in GPU_STEPS}
    )
    interpreter: dict[str, Any] = field(default_factory=dict)  # GIL interval and GC pauses of the run
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _finished_ns: int | None = None

    def add(self, frame: Frame) -> None:
        stamps = frame.stamps
        with self._lock:
            self.frames_out += 1
            for name, start, end in (*STAGES, E2E):
                if start in stamps and end in stamps:
                    self.samples[name].append((stamps[end] - stamps[start]) / 1e6)
            for step, ms in frame.gpu_ms.items():
                self.gpu_samples[step].append(ms)

    def recent_e2e(self, n: int = 300) -> list[float]:
        with self._lock:
            return self.samples["e2e"][-n:].tolist()

    def recent_e2e_percentile(self, q: float, n: int = 300) -> float:
        """The q-th percentile of the last `n` end-to-end latencies (0.0 before the first frame)."""
        recent = self.recent_e2e(n)
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
            seconds = self.seconds
            return {
                "frames_in": self.frames_in,
                "frames_processed": self.frames_out,
                "dropped": dict(self.dropped),
                "dropped_total": sum(self.dropped.values()),
                "skipped": dict(self.skipped),
                "damage": self.damage,
                "seconds": seconds,
                "fps": self.frames_out / seconds if seconds > 0 else 0.0,
                "stages_ms": stages,
                "e2e_ms": e2e,
                "gpu_ms": {step: summarise(v) for step, v in self.gpu_samples.items() if v},
                "events": list(self.events),
                "interpreter": dict(self.interpreter),
            }


def write_stats_json(path: Path, summary: dict[str, Any], extra: dict[str, Any]) -> None:
    write_json(path, {**summary, **extra})
