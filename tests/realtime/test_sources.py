import numpy as np
import pytest

from polyp_rt.core.errors import SourceError
from polyp_rt.realtime.config import CaptureConfig
from polyp_rt.realtime.sources import (
    ImageFolderSource,
    SyntheticSource,
    VideoFileSource,
    open_source,
)


def test_factory_picks_the_source_from_the_string(tmp_path, synthetic_clip):
    options = CaptureConfig()
    assert isinstance(open_source("synthetic:320x240@15", options), SyntheticSource)
    assert isinstance(open_source(str(synthetic_clip), options), VideoFileSource)
    assert isinstance(open_source(str(tmp_path), options), ImageFolderSource)
    with pytest.raises(SourceError, match="WIDTHxHEIGHT@FPS"):
        open_source("synthetic:big", options)


def test_synthetic_loop_renders_once_and_cycles():
    source = open_source("synthetic:160x120@1000?loop=4&seed=2", CaptureConfig())
    source.open()
    frames = [source.read() for _ in range(9)]
    assert [f.index for f in frames] == list(range(9))
    assert np.array_equal(frames[0].rgb, frames[4].rgb) and np.array_equal(frames[1].rgb, frames[5].rgb)
    assert not np.array_equal(frames[0].rgb, frames[1].rgb)
    assert frames[8].pts_s == pytest.approx(8 / 1000)
    assert frames[0].rgb.shape == (120, 160, 3) and frames[0].rgb.dtype == np.uint8


def test_video_file_keeps_pts_and_rgb(synthetic_clip):
    source = open_source(str(synthetic_clip), CaptureConfig())
    source.open()
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    source.close()
    assert len(frames) == 36 and (source.width, source.height, source.fps) == (160, 128, 24.0)
    assert [round(f.pts_s * 24) for f in frames] == list(range(36))
    assert all(f.t_capture_ns <= g.t_capture_ns for f, g in zip(frames, frames[1:], strict=False))


def lender(shape, count):
    """Buffers handed out like the GPU path's pinned ring: one per frame while they last."""
    lent = []

    def frame_buffer(height, width):
        if len(lent) == count or (height, width, 3) != shape:
            return None
        lent.append(np.zeros(shape, np.uint8))
        return lent[-1]

    return frame_buffer, lent


@pytest.mark.parametrize("kind", ["synthetic", "images"])
def test_sources_decode_into_the_buffer_the_stage_lends(tmp_path, kind):
    import cv2

    if kind == "images":
        for i in range(3):
            cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((90, 120, 3), 40 * i + 10, np.uint8))
        spec = str(tmp_path)
    else:
        spec = "synthetic:120x90@1000?loop=3"
    plain, lending = open_source(spec, CaptureConfig()), open_source(spec, CaptureConfig())
    plain.open()
    lending.open()
    lending.frame_buffer, lent = lender((90, 120, 3), count=2)
    pairs = [(plain.read(), lending.read()) for _ in range(3)]
    assert [b.rgb is buffer for (_, b), buffer in zip(pairs, lent, strict=False)] == [True, True]
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in pairs)  # the third, unlent, is read as before
