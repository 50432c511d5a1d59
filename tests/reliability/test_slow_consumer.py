"""A slow consumer in the synced display: inference busier than a live source. The oldest frames are dropped and
counted, queues stay within their limit, frames in flight stay bounded, the newest frame is
never the one dropped."""

from __future__ import annotations

import weakref

from polyp_rt.engines.registry import open_engine
from polyp_rt.realtime.compose import compose
from polyp_rt.realtime.config import RunConfig
from polyp_rt.realtime.sinks import Sink

FRAMES, QUEUE = 300, 2


class Indices(Sink):
    """Keeps the source index of every frame that came out, and how many frames were alive then."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.alive = 0  # frames the source made that still exist somewhere
        self.most_alive = 0

    def write(self, frame) -> None:
        self.seen.append(frame.index)


def test_live_source_under_busy_inference_drops_oldest_and_stays_bounded(
    micro_onnx, held_engine, no_pipeline_threads
):
    indices, pipeline = Indices(), None

    def hundred_dropped():  # inference holds its first frame while the source runs on
        return pipeline.captured.wait_for(lambda: pipeline.captured.dropped >= 100, 60)

    config = RunConfig(source="synthetic:320x240@120", queue_size=QUEUE, max_frames=FRAMES, display="synced")
    with open_engine(micro_onnx, device="cpu") as engine:
        pipeline = compose(config, held_engine(engine, hold=hundred_dropped), extra_sinks=[indices])

        def tracked_read(read=pipeline.source.read):  # every frame the source made, while it exists
            frame = read()
            if frame is not None:
                indices.alive += 1
                indices.most_alive = max(indices.most_alive, indices.alive)
                weakref.finalize(frame, lambda: setattr(indices, "alive", indices.alive - 1))
            return frame

        pipeline.source.read = tracked_read
        with pipeline:
            outcome = pipeline.run()
    summary = outcome.stats.summary()

    assert outcome.error is None and outcome.reason == "max frames" and summary["frames_in"] == FRAMES
    assert summary["dropped"]["capture queue"] >= 100  # counted, not lost silently
    assert summary["frames_processed"] + summary["dropped_total"] == FRAMES
    assert pipeline.captured.high_water <= QUEUE and pipeline.inferred.high_water <= QUEUE
    # the oldest are dropped: what comes out is in order and ends with the newest frame
    assert indices.seen == sorted(set(indices.seen)) and indices.seen[-1] == FRAMES - 1
    # frames alive at once: the queues, the one in each thread's hands and the last shown
    assert indices.most_alive <= 2 * QUEUE + 4, indices.most_alive
    assert no_pipeline_threads() == []
