"""The soak: the live pipeline on the synthetic live source at 30 fps for 10 minutes, recording.

Marked slow: `make soak` runs it (`SOAK_SECONDS=60 make soak` for a shorter one), CI does not.
It prints, per minute, frames in and out, drops, end-to-end latency percentiles and the
process's RSS, and writes them as JSON to $SOAK_REPORT (default: soak.json in the test's
temporary folder). The model is the bundled demo model where it exists, else the test suite's
own small trained UNet++ (tiny_onnx).
"""

from __future__ import annotations

import json
import os
import platform
import time

import numpy as np
import pytest

from polyp_rt.cli.info import cpu_model
from polyp_rt.engines.registry import open_engine
from polyp_rt.realtime.compose import compose
from polyp_rt.realtime.config import DEMO_MODEL, RunConfig

SOURCE = "synthetic:640x480@30"


class Minutes:
    """Per-minute figures, taken on the output thread as frames come out."""

    def __init__(self, pipeline_of, rss, period_s: float = 60.0) -> None:
        self.pipeline_of, self.rss, self.period_s = pipeline_of, rss, period_s
        self.rows: list[dict[str, float]] = []
        self.next_t = time.monotonic() + period_s
        self._frames_in = self._frames_out = self._dropped = self._e2e = 0

    def __call__(self, stats, status) -> None:
        if time.monotonic() >= self.next_t:
            self.next_t += self.period_s
            self.row(stats)

    def row(self, stats) -> None:
        """The figures since the last row."""
        if stats.frames_in == self._frames_in:
            return
        pipeline = self.pipeline_of()
        dropped = pipeline.captured.dropped + pipeline.inferred.dropped
        e2e = stats.recent_e2e(10**9)[self._e2e :]
        p50, p90, p99 = np.percentile(e2e, (50, 90, 99)) if e2e else (float("nan"),) * 3
        self.rows.append(
            {
                "minute": len(self.rows) + 1,
                "until_s": round(stats.seconds, 1),
                "frames_in": stats.frames_in - self._frames_in,
                "frames_out": stats.frames_out - self._frames_out,
                "dropped": dropped - self._dropped,
                "e2e_p50_ms": round(float(p50), 1),
                "e2e_p90_ms": round(float(p90), 1),
                "e2e_p99_ms": round(float(p99), 1),
                "e2e_max_ms": round(float(max(e2e)), 1) if e2e else float("nan"),
                "rss_mb": round(self.rss(), 1),
            }
        )
        self._frames_in, self._frames_out, self._dropped = stats.frames_in, stats.frames_out, dropped
        self._e2e += len(e2e)
        print("soak", json.dumps(self.rows[-1]), flush=True)


@pytest.mark.slow
def test_soak(request, tmp_path, rss, finalised):
    seconds = float(os.environ.get("SOAK_SECONDS", 600))
    model = DEMO_MODEL if DEMO_MODEL.is_file() else request.getfixturevalue("tiny_onnx")
    report_path = os.environ.get("SOAK_REPORT") or str(tmp_path / "soak.json")
    config = RunConfig(source=SOURCE, record=tmp_path / "soak.mp4", max_frames=round(seconds * 30))
    with open_engine(model, device="cpu") as engine, compose(config, engine) as pipeline:
        minutes = Minutes(lambda: pipeline, rss, period_s=min(60.0, seconds / 2))
        pipeline.on_frame = minutes
        rss_before = rss()
        outcome = pipeline.run()
        minutes.row(outcome.stats)  # the last (part of a) minute
    recording = pipeline.sinks[0].summary()["recording"]
    summary = outcome.stats.summary()
    report = {
        "command": f"SOAK_SECONDS={seconds:g} make soak",
        "source": SOURCE,
        "model": str(model),
        "machine": f"{os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} {platform.machine()}",
        "seconds": round(summary["seconds"], 1),
        "rss_mb_before": round(rss_before, 1),
        "rss_mb_after_first_minute": minutes.rows[0]["rss_mb"] if minutes.rows else None,
        "rss_mb_end": round(rss(), 1),
        "frames_in": summary["frames_in"],
        "frames_processed": summary["frames_processed"],
        "dropped": summary["dropped"],
        "e2e_ms": {k: round(v, 1) for k, v in summary["e2e_ms"].items()},
        "fps": round(summary["fps"], 2),
        "recording_frames": recording["frames"],
        "queue_high_water": [pipeline.captured.high_water, pipeline.inferred.high_water],
        "minutes": minutes.rows,
    }
    with open(report_path, "w") as f:
        json.dump(report, f, indent=1)
    print("soak report", json.dumps(report, indent=1))

    assert outcome.error is None and outcome.reason == "max frames"
    assert summary["frames_processed"] + summary["dropped_total"] == summary["frames_in"]
    assert max(report["queue_high_water"]) <= config.queue_size
    rows = minutes.rows
    assert report["rss_mb_end"] - rows[0]["rss_mb"] < 50  # no growth after the first minute
    assert rows[-1]["e2e_p50_ms"] < 2 * rows[0]["e2e_p50_ms"] + 50  # latency does not creep up
    assert finalised(tmp_path / "soak.mp4")
