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
