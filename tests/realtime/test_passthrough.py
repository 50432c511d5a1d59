"""The passthrough display: every captured frame goes to the sinks at once, drawn with the newest
finished mask; the model, made slow by waiting on the pipeline's own progress (frames shown), takes
the newest frame whenever it is free. Real threads, a real ONNX Runtime engine, a real recording."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from polyp_rt.engines.registry import open_engine
from polyp_rt.realtime.compose import compose
from polyp_rt.realtime.config import CaptureConfig, OverlayConfig, RunConfig
from polyp_rt.realtime.cpu_stage import CpuStage
from polyp_rt.realtime.frame import Frame, Stamp
from polyp_rt.realtime.pipeline import VIDEO_QUEUE
from polyp_rt.realtime.sinks import Sink

LIVE = "synthetic:160x128@30"
HUD_ROWS = 48  # the HUD's line, the alert line below it (about 21 rows each at 128 rows) and the indicator


class Seen(Sink):
    """Every frame the sinks get, as they get it, with its picture drawn."""

    needs_picture = True

    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def write(self, frame: Frame) -> None:
        self.frames.append(frame)


def passthrough(max_frames: int, **options) -> RunConfig:
    return RunConfig(
        source=LIVE,
        max_frames=max_frames,
        display="passthrough",
        capture=CaptureConfig(reconnects=0),
        **options,
    )


def frames_shown_later(box: list, frames: int, timeout: float = 60.0) -> None:
    """Wait until `frames` more frames have been shown (or the run stops): an inference that long."""
    pipeline = box[0]
    target = pipeline.stats.frames_out + frames

    def done() -> bool:
        return pipeline.stats.frames_out >= target or pipeline.stop.is_set()

    waited = 0.0
    while not pipeline.video.wait_for(done, 0.05):  # woken by each frame the capture thread puts
        waited += 0.05
        assert waited < timeout, f"{frames} frames were not shown within {timeout} s"


def run(config: RunConfig, engine, box: list, seen: Seen):
    pipeline = compose(config, engine, extra_sinks=[seen])
    box.append(pipeline)
    with pipeline:
        outcome = pipeline.run()
    assert outcome.error is None, outcome.error
    return pipeline, outcome.stats.summary()


def test_every_frame_is_shown_with_the_newest_mask_of_a_slow_model(micro_onnx, gated_engine):
    box: list = []
    seen = Seen()
    with open_engine(micro_onnx, device="cpu") as engine:
        slow = gated_engine(engine, lambda call: frames_shown_later(box, 4))  # 4 frames a mask
        pipeline, summary = run(passthrough(45), slow, box, seen)

        assert summary["modes"] == {"display": "passthrough", "inference": "latency", "requests": 1}
        assert summary["frames_in"] == summary["frames_processed"] == 45 and summary["dropped_total"] == 0
        assert [f.index for f in seen.frames] == list(range(45))  # every frame, in order
        # the model saw a few of them: one each 4 frames shown (the first may start before frame 0 is
        # shown: 12 by frame 44), and one more the gate lets through at once when the run has stopped
        assert summary["frames_inferred"] <= 45 // 4 + 2 < 45
        assert pipeline.captured.high_water <= 1 and pipeline.video.high_water <= VIDEO_QUEUE

        drawn = [f for f in seen.frames if f.mask is not None]
        assert drawn and summary["frames_unannotated"] == 45 - len(drawn)
        sources = [f.mask_from for f in drawn]
        assert sources == sorted(sources) and all(f.mask_from < f.index for f in drawn)
        # the mask drawn is the model's for the frame it names, placed as it is
        by_index = {f.index: f for f in seen.frames}
        for m in sorted(set(sources)):
            own = CpuStage(engine)(Frame(m, 0.0, 0, by_index[m].rgb)).mask
            assert all(np.array_equal(f.mask, own) for f in drawn if f.mask_from == m)

    # the two delays, worked out from the frames' own stamps
    video = [(f.stamps[Stamp.OVERLAID] - f.t_capture_ns) / 1e6 for f in seen.frames]
    first = {}
    for f in drawn:
        first.setdefault(f.mask_from, (f.stamps[Stamp.OVERLAID] - by_index[f.mask_from].t_capture_ns) / 1e6)
    assert summary["video_delay_ms"]["count"] == 45
    assert summary["video_delay_ms"]["max"] == pytest.approx(max(video))
    assert summary["annotation_delay_ms"]["count"] == len(first)
    assert summary["annotation_delay_ms"]["max"] == pytest.approx(max(first.values()))
    ages = [(f.t_capture_ns - by_index[f.mask_from].t_capture_ns) / 1e6 for f in drawn]
    assert summary["mask_age_ms"]["max"] == pytest.approx(max(ages)) and min(ages) > 0


def test_pixels_outside_the_drawn_overlay_are_the_inputs(micro_onnx):
    from polyp_rt.train.scenes import SyntheticClip

    clip = SyntheticClip(160, 128, seed=0, fps=30)  # what the source renders, frame by frame
    kernel = np.ones((9, 9), np.uint8)  # the outline (2 px at this height) and its anti-aliasing
    for overlay in (OverlayConfig(), OverlayConfig(hud=False, mask_alpha=0.0, contours=False)):
        seen = Seen()
        with open_engine(micro_onnx, device="cpu") as engine:
            run(passthrough(30, overlay=overlay), engine, [], seen)
        assert len(seen.frames) == 30
        for f in seen.frames:
            source = clip.frame(f.index)[0]
            assert np.array_equal(f.rgb, source)  # the frame the sinks got holds the input as it came
            changed = np.any(f.overlay != source, axis=2)
            if not overlay.hud:  # nothing drawn: the picture is the input, bit for bit
                assert not changed.any()
                continue
            allowed = np.zeros_like(changed)
            allowed[:HUD_ROWS] = True
            if f.mask is not None:
                allowed |= cv2.dilate(f.mask, kernel).astype(bool)
            assert not (changed & ~allowed).any(), f"frame {f.index}: pixels changed outside the overlay"


def test_a_stalled_model_leaves_the_video_whole_says_so_and_comes_back(
    micro_onnx, gated_engine, tmp_path, decoded
):
    box: list = []
    seen = Seen()
    out = tmp_path / "stall.mp4"

    def stall_once(call: int) -> None:
        if call == 5:
            frames_shown_later(box, 60)  # 2 s of video at 30 fps

    with open_engine(micro_onnx, device="cpu") as engine:
        _, summary = run(passthrough(120, record=out), gated_engine(engine, stall_once), box, seen)

    assert summary["frames_in"] == summary["frames_processed"] == 120 and summary["dropped_total"] == 0
    assert decoded(out) == (120, 30.0)  # nothing missing from the recording
    alerts = [f for f in seen.frames if f.hud.alert]
    assert alerts and all(f.hud.alert.startswith("MODEL STALLED: no mask for") for f in alerts)
    assert all(f.mask is None for f in alerts)
    stalled = [i for i, f in enumerate(seen.frames) if f.hud.alert]
    assert stalled == list(range(stalled[0], stalled[-1] + 1)) and len(stalled) >= 40  # one stall, on screen
    after = seen.frames[stalled[-1] + 1 :]
    assert after and all(f.mask is not None and f.mask_age_ms <= 200 for f in after)  # masks came back
    assert after[-1].mask_from > seen.frames[stalled[-1]].index
    events = summary["events"]
    assert any(e.startswith("model stalled") for e in events)
    assert any(e.startswith("the model is back") for e in events)
    assert summary["frames_unannotated"] == sum(f.mask is None for f in seen.frames)


@pytest.mark.parametrize("max_age_ms", [200.0, 1000.0])
def test_a_model_far_too_slow_for_the_source(micro_onnx, gated_engine, max_age_ms):
    box: list = []
    seen = Seen()
    with open_engine(micro_onnx, device="cpu") as engine:
        slow = gated_engine(engine, lambda call: frames_shown_later(box, 12))  # 12 frames (0.4 s) a mask
        _, summary = run(passthrough(60, max_mask_age=max_age_ms), slow, box, seen)

    assert summary["frames_in"] == summary["frames_processed"] == 60 and summary["dropped_total"] == 0
    drawn = [f for f in seen.frames if f.mask is not None]
    if max_age_ms == 200.0:  # every mask is older than it may be: none drawn, the HUD says why
        assert not drawn
        assert seen.frames[-1].hud.alert.startswith("MODEL STALLED")
    else:  # drawn, each as old as the model is slow
        assert drawn and all(300 <= f.mask_age_ms <= max_age_ms for f in drawn)
        assert all(f.hud.mask_age_ms == f.mask_age_ms for f in drawn)
