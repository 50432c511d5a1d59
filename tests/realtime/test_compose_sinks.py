"""The sinks a run makes are closed even when a later one cannot be made."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from polyp_rt.core.errors import PolypRtError
from polyp_rt.realtime.compose import make_sinks
from polyp_rt.realtime.config import CaptureConfig, RunConfig
from polyp_rt.realtime.modes import Modes
from polyp_rt.realtime.sources.spec import open_source


def test_a_recording_made_before_a_sink_that_fails_is_closed_and_leaves_no_file(tmp_path):
    recording = tmp_path / "run.mp4"
    blocker = tmp_path / "masks"
    blocker.write_text("a file where the mask folder should go")
    config = RunConfig(source="synthetic:64x48@30", record=recording, masks_out=blocker)
    source = open_source(config.source, CaptureConfig())
    try:
        with pytest.raises(PolypRtError), ExitStack() as stack:
            make_sinks(config, source, stack, Modes())
            assert recording.exists()  # not reached: the mask writer fails first
    finally:
        source.close()
    assert not recording.exists(), "the recorder was closed: a recording without frames is removed"
    assert blocker.read_text().startswith("a file")
