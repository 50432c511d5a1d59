"""Latency statistics: per stage and end to end (capture -> overlay ready), drops, throughput."""

from __future__ import annotations

import json
import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polyp_rt.realtime.frame import Frame, now_ns

# Each stage's time runs from the previous stamp to its own.
STAGES = (
    ("queue", "captured", "dequeued"),  # waiting for the inference thread
    ("preprocess", "dequeued", "preprocessed"),
    ("infer", "preprocessed", "inferred"),
    ("postprocess", "inferred", "postprocessed"),
    ("overlay", "postprocessed", "overlaid"),  # output queue wait + drawing
)
E2E = ("e2e", "captured", "overlaid")
GPU_STEPS = ("preprocess", "infer", "postprocess")  # CUDA-event times on the GPU frame path
PERCENTILES = (50, 90, 99)


def summarise(samples_ms: Sequence[float]) -> dict[str, float | int]:
    """count, mean, p50, p90, p99, max of latencies in ms (linear-interpolated percentiles)."""
    if len(samples_ms) == 0:
        return {
            "count": 0,
            "mean": float("nan"),
            "p50": float("nan"),
            "p90": float("nan"),
            "p99": float("nan"),
            "max": float("nan"),
        }
    values = np.asarray(samples_ms, dtype=np.float64)
    p50, p90, p99 = np.percentile(values, PERCENTILES)
    return {
        "count": int(values.size),
        "mean": float(values.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(values.max()),
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
    events: list[str] = field(default_factory=list)  # reconnects and the like, for the log and JSON
    gpu_samples: dict[str, array[float]] = field(  # GPU frame path: CUDA-event ms per step
        default_factory=lambda: {step: array("d") for step in GPU_STEPS}
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _finished_ns: int | None = None

    def add(self, frame: Frame) -> None:
        stamps = {"captured": frame.t_capture_ns, **frame.stamps}
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
                "seconds": seconds,
                "fps": self.frames_out / seconds if seconds > 0 else 0.0,
                "stages_ms": stages,
                "e2e_ms": e2e,
                "gpu_ms": {step: summarise(v) for step, v in self.gpu_samples.items() if v},
                "events": list(self.events),
            }


def write_stats_json(path: Path, summary: dict[str, Any], extra: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**summary, **extra}, indent=1, default=str))


def plot_latency(samples: dict[str, Sequence[float]], out_png: Path, title: str) -> None:
    """Histogram and CDF of each named latency series (ms)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_hist, ax_cdf) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for name, values in samples.items():
        if len(values) == 0:
            continue
        v = np.sort(np.asarray(values))
        ax_hist.hist(v, bins=50, alpha=0.6, label=name)
        ax_cdf.plot(v, np.arange(1, v.size + 1) / v.size, label=name)
    for q in (0.5, 0.99):
        ax_cdf.axhline(q, color="grey", lw=0.6, ls="--")
    ax_hist.set(title="latency histogram", xlabel="ms", ylabel="frames")
    ax_cdf.set(
        title="latency CDF (dashed: p50, p99)", xlabel="ms", ylabel="fraction of frames", ylim=(0, 1.01)
    )
    ax_hist.legend()
    ax_cdf.legend(loc="lower right")
    fig.suptitle(title)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
