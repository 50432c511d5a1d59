import json

import numpy as np
import pytest

from polyp_rt.realtime.frame import Frame, Stamp
from polyp_rt.realtime.overlay import PresenceIndicator
from polyp_rt.realtime.queues import EndOfStream, FrameQueue, Stopped
from polyp_rt.realtime.stats import STAGES, LatencyStats, summarise


def test_percentiles_on_known_samples():
    s = summarise([float(v) for v in range(1, 101)])
    assert s["count"] == 100
    assert s["mean"] == pytest.approx(50.5)
    assert s["p50"] == pytest.approx(50.5)
    assert s["p90"] == pytest.approx(90.1)
    assert s["p99"] == pytest.approx(99.01)
    assert s["max"] == 100.0
    one = summarise([7.0])
    assert one["p50"] == one["p99"] == one["max"] == 7.0
    assert summarise([])["count"] == 0


def test_stages_follow_the_stamps_in_order():
    assert [(name, start.value, end.value) for name, start, end in STAGES] == [
        ("queue", "captured", "dequeued"),
        ("preprocess", "dequeued", "preprocessed"),
        ("infer", "preprocessed", "inferred"),
        ("postprocess", "inferred", "postprocessed"),
        ("output queue", "postprocessed", "handed"),
        ("overlay", "handed", "overlaid"),
    ]
    frame = Frame(0, 0.0, 0, np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(AttributeError):
        frame.stamp(Stamp.OVERLAYED)  # a misspelt stamp is an error, not a silent count of 0


def test_stage_durations_from_frame_stamps():
    stats = LatencyStats()
    ms = 1_000_000
    for i in range(4):
        frame = Frame(i, i / 30, 0, np.zeros((2, 2, 3), np.uint8))
        frame.stamps |= {Stamp.DEQUEUED: 2 * ms, Stamp.PREPROCESSED: 3 * ms, Stamp.INFERRED: (13 + i) * ms}
        frame.stamps |= {Stamp.POSTPROCESSED: (14 + i) * ms, Stamp.HANDED: (18 + 2 * i) * ms}
        frame.stamps |= {Stamp.OVERLAID: (20 + 2 * i) * ms}
        stats.add(frame)
    s = stats.summary()
    assert s["frames_processed"] == 4
    assert s["stages_ms"]["queue"]["mean"] == pytest.approx(2.0)
    assert s["stages_ms"]["preprocess"]["max"] == pytest.approx(1.0)
    assert s["stages_ms"]["infer"]["mean"] == pytest.approx(11.5)
    # waits of 4, 5, 6, 7 ms behind the output thread, then 2 ms to draw
    assert s["stages_ms"]["output queue"]["mean"] == pytest.approx(5.5)
    assert s["stages_ms"]["overlay"]["p50"] == pytest.approx(2.0)
    assert s["e2e_ms"]["max"] == pytest.approx(26.0)
    assert s["e2e_ms"]["p50"] == pytest.approx(23.0)
    # a frame's own time, without either queue: 1 + (10..13) + 1 + 2 ms
    assert s["processing_ms"]["mean"] == pytest.approx(15.5)
    assert s["processing_ms"]["max"] == pytest.approx(17.0)
    json.dumps(s)  # the summary is what --stats-json writes


def test_video_and_annotation_delay_apart():
    """Four frames shown in the passthrough display at 30 fps, by hand: the first without a mask,
    the next two with frame 0's, the last with frame 2's."""
    ms = 1_000_000
    stats = LatencyStats()
    shown = [  # (captured, overlaid, mask from frame, that frame's capture), ms
        (0, 2, None, None),
        (33, 35, 0, 0),
        (66, 69, 0, 0),
        (100, 101, 2, 66),
    ]
    for i, (captured, overlaid, source, source_captured) in enumerate(shown):
        frame = Frame(i, i / 30, captured * ms, np.zeros((2, 2, 3), np.uint8))
        frame.stamps[Stamp.OVERLAID] = overlaid * ms
        if source is not None:
            frame.mask = np.zeros((2, 2), np.uint8)
            frame.mask_from, frame.mask_captured_ns = source, source_captured * ms
        stats.add(frame)
    s = stats.summary()
    assert s["video_delay_ms"] == s["e2e_ms"]
    assert s["video_delay_ms"]["count"] == 4 and s["video_delay_ms"]["max"] == pytest.approx(3.0)
    # frame 0's mask first shown on frame 1 (35 - 0 ms), frame 2's on frame 3 (101 - 66 ms)
    assert s["annotation_delay_ms"]["count"] == 2 and s["annotation_delay_ms"]["mean"] == pytest.approx(35.0)
    # the frames drawn with a mask: 33 - 0, 66 - 0, 100 - 66 ms
    assert s["mask_age_ms"]["count"] == 3
    assert s["mask_age_ms"]["max"] == pytest.approx(66.0) and s["mask_age_ms"]["p50"] == pytest.approx(34.0)


def test_queue_blocks_or_drops_and_never_exceeds_its_size():
    import threading

    stop = threading.Event()
    live = FrameQueue(2, drop_oldest=True, stop=stop)
    for i in range(5):
        live.put(i)
    assert (live.dropped, len(live), live.high_water) == (3, 2, 2)
    assert [live.get(), live.get()] == [3, 4]
    live.close()
    with pytest.raises(EndOfStream):
        live.get()

    blocking = FrameQueue(1, drop_oldest=False, stop=stop)
    blocking.put("a")
    stop.set()
    with pytest.raises(Stopped):
        blocking.put("b")  # full, and the pipeline is stopping: the producer returns


def test_presence_indicator_has_hysteresis():
    ind = PresenceIndicator(on=3, window=5, off=4)
    seen = [ind.update(p) for p in [1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]]
    # on once 3 of the last 5 are positive; a lone positive while on restarts the count of clear frames
    assert seen == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
