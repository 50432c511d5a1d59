"""What decides `skipped: unchanged`: every option of the pipeline that changes a video's results
(as this test classifies them, by hand) redoes the video; the options about where and how fast it
runs, a live run's window and reports do not. A field added to RunConfig fails this test until it
is classified here."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from polyp_rt.batch.config import BatchConfig
from polyp_rt.batch.manifest import Fingerprint, Manifest, settings_of
from polyp_rt.realtime.config import RunConfig
from tests.batch.conftest import PIPELINE_CHANGED, changed, option_names
from tests.conftest import write_micro_onnx

# a different value for every option of RunConfig (nested ones as "outer.inner")
CHANGED: dict[str, object] = {
    "source": "/archive/another.mp4",
    **PIPELINE_CHANGED,
    "threads": 2,
    "stages": "cpu",
    "record": Path("annotated.mp4"),
    "masks_out": Path("masks"),
    "truth": Path("/archive/truth"),
    "stats_json": Path("stats.json"),
    "overwrite": True,
    "headless": False,
    "serve": "127.0.0.1:8080",
    "token": "a-token-of-sixteen-plus",
    "max_frames": 10,
    "queue_size": 2,
    "display": "passthrough",
    "max_mask_age": 100.0,
    "inference": "latency",
    "capture.realtime": True,
    "capture.width": 320,
    "capture.height": 240,
    "capture.fps": 30.0,
    "capture.fourcc": "MJPG",
    "capture.stall_timeout": 5.0,
    "capture.reconnects": 1,
}
# the options that do not change a video's results: the video itself (compared by its path and
# content), where and how fast it runs, a live run's window, browser view and reports, how a live
# source is kept
NOT_RESULTS = {
    "source",
    "device",
    "cuda_graph",
    "threads",
    "stages",
    "queue_size",
    "inference",  # the same masks either way (tests/realtime/test_modes.py)
    "headless",
    "serve",
    "token",
    "stats_json",
    "overwrite",
    *(name for name in CHANGED if name.startswith("capture.")),
}


def test_every_option_of_the_run_is_classified() -> None:
    assert option_names(RunConfig) == set(CHANGED) | {"model"}
    assert set(CHANGED) >= NOT_RESULTS


def finished_video(synthetic_clip: Path, out: Path, run: RunConfig) -> Manifest:
    """A manifest that lists the clip as finished with `run`'s settings, its folder in place."""
    manifest = Manifest(out / "manifest.json")
    manifest.record("clip.mp4", synthetic_clip, Fingerprint.of(synthetic_clip), settings_of(run), {})
    (out / "clip.mp4").mkdir(parents=True)
    return manifest


def test_a_changed_result_option_redoes_the_video_and_no_other_does(
    synthetic_clip: Path, micro_onnx: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run = BatchConfig(inputs=[synthetic_clip], out=out, model=micro_onnx).run_config()
    manifest = Manifest.load(finished_video(synthetic_clip, out, run).path)  # as a rerun reads it

    def redone(other: RunConfig) -> bool:
        return manifest.finished("clip.mp4", synthetic_clip, settings_of(other), out) is None

    assert not redone(run), "the same settings: skipped"
    for name, value in CHANGED.items():
        assert redone(changed(run, name, value)) == (name not in NOT_RESULTS), name

    copy = shutil.copy(micro_onnx, tmp_path / "copy.onnx")
    assert not redone(dataclasses.replace(run, model=Path(copy))), "the same model at another path"
    other = write_micro_onnx(tmp_path / "other.onnx", size=32)
    assert redone(dataclasses.replace(run, model=other)), "another model"


def test_cpu_tasks_default_to_two_threads_each_and_as_many_as_the_cpus_hold(tmp_path: Path) -> None:
    from polyp_rt.batch.tasks import fitting_workers

    config = BatchConfig(inputs=[tmp_path], out=tmp_path / "out", device="cpu")
    assert config.run_config().threads == 2  # one video's two requests, one thread each
    assert fitting_workers({"CPU": 2.0}, config) == 1  # this 2-core machine: a video at a time
    assert fitting_workers({"CPU": 16.0}, config) == 8
    assert fitting_workers({"CPU": 1.0}, config) == 1  # never none
    one_each = dataclasses.replace(config, cpus_per_task=1.0)
    assert one_each.run_config().threads == 1 and fitting_workers({"CPU": 2.0}, one_each) == 2
