"""A slow consumer: inference slower than a live source. The oldest frames are dropped and
counted, queues stay within their limit, memory and latency stay bounded."""

from __future__ import annotations

import numpy as np

from polyp_rt.engines.factory import open_engine
from polyp_rt.realtime.config import OverlayConfig
from polyp_rt.realtime.overlay import Overlay
from polyp_rt.realtime.pipeline import Pipeline, PipelineOptions
from polyp_rt.realtime.sinks import Sink
from polyp_rt.realtime.sources import SourceOptions, open_source
from polyp_rt.realtime.stages import make_stage

FRAMES, QUEUE = 300, 2


class Indices(Sink):
    """Keeps the source index of every frame that came out."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def write(self, frame) -> None:
        self.seen.append(frame.index)


def test_live_source_under_slow_inference_drops_oldest_and_stays_bounded(
    micro_onnx, slow_engine, rss, no_pipeline_threads
):
    source = open_source("synthetic:320x240@120", SourceOptions())  # 120 fps in, ~30 fps inference
    source.open()
    indices, memory = Indices(), {}

    def sample_memory(stats, status):
        if stats.frames_out == 20:  # after warm-up: arenas, buffers and caches exist
            memory["start"] = rss()
        memory["end"] = rss()

    with open_engine(micro_onnx, device="cpu") as engine:
        pipeline = Pipeline(
            source,
            make_stage(slow_engine(engine, delay_s=0.03)),
            Overlay(OverlayConfig()),
            [indices],
            options=PipelineOptions(queue_size=QUEUE, max_frames=FRAMES),
            on_frame=sample_memory,
        )
        outcome = pipeline.run()
    source.close()
    summary = outcome.stats.summary()

    assert outcome.reason == "max frames" and summary["frames_in"] == FRAMES
    assert summary["dropped"]["capture queue"] > 0  # counted, not lost silently
    assert summary["frames_processed"] + summary["dropped_total"] == FRAMES
    assert pipeline.captured.high_water <= QUEUE and pipeline.inferred.high_water <= QUEUE
    # the oldest are dropped: what comes out is in order and ends with one of the newest frames
    assert indices.seen == sorted(set(indices.seen)) and indices.seen[-1] >= FRAMES - 1 - 2 * QUEUE - 2
    # memory: 300 frames of 320x240 kept anywhere would be 70 MB and more
    assert memory["end"] - memory["start"] < 25, memory
    # latency: the median of the last third is not far above that of the first
    e2e = outcome.stats.samples["e2e"]
    third = len(e2e) // 3
    first, last = np.median(e2e[:third]), np.median(e2e[-third:])
    assert last < 2 * first + 50, (first, last)
    assert no_pipeline_threads() == []
