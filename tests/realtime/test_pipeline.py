"""The live pipeline doing its job. Its faults (signals, SIGKILL, failing engines and disks,
damaged and vanishing sources) are in tests/reliability/."""

import json
import threading

import pytest

from polyp_rt.cli.main import main
from polyp_rt.engines.registry import open_engine
from polyp_rt.realtime.compose import compose
from polyp_rt.realtime.config import CaptureConfig, RunConfig


def pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("polyp-rt")]


def build(source_spec, engine, max_frames=None, queue_size=2, on_frame=None):
    """The synced display's pipeline (the passthrough display has tests/realtime/test_passthrough.py)."""
    config = RunConfig(
        source=source_spec,
        max_frames=max_frames,
        queue_size=queue_size,
        capture=CaptureConfig(reconnects=0),
        display="synced",
    )
    return compose(config, engine, on_frame=on_frame)


def test_clip_run_records_masks_and_stats(tiny_onnx, synthetic_clip, tmp_path, decoded):
    out, masks, stats = tmp_path / "out.mp4", tmp_path / "masks", tmp_path / "stats.json"
    truth = synthetic_clip.with_name("clip_masks")
    args = ["--source", str(synthetic_clip), "--model", str(tiny_onnx), "--headless", "--record", str(out)]
    args += ["--masks-out", str(masks), "--stats-json", str(stats), "--truth", str(truth)]
    assert main(args) == 0

    assert decoded(out) == decoded(synthetic_clip) == (36, 24.0)
    assert sorted(p.name for p in masks.iterdir()) == [f"{i:06d}.png" for i in range(36)]
    report = json.loads(stats.read_text())
    assert report["frames_in"] == report["frames_processed"] == 36
    assert report["dropped_total"] == 0 and report["reason"] == "end of stream"
    for stage in ("queue", "preprocess", "infer", "postprocess", "overlay"):
        assert set(report["stages_ms"][stage]) == {"count", "mean", "p50", "p90", "p99", "max"}
        assert report["stages_ms"][stage]["count"] == 36
    assert report["e2e_ms"]["p50"] <= report["e2e_ms"]["p99"] <= report["e2e_ms"]["max"]
    assert report["fps"] > 0 and report["truth"]["images"] == 36
    assert 0.0 <= report["truth"]["dice"] <= 1.0
    assert report["config"]["source"] == str(synthetic_clip) and "onnxruntime" in report["versions"]
    assert report["recording"]["frames"] == 36
    assert (
        report["threads"]["opencv"] == 1 and report["threads"]["runtime"] == report["threads"]["cores"] >= 1
    )
    assert stats.with_suffix(".png").stat().st_size > 0
    assert pipeline_threads() == []


def test_live_source_drops_oldest_while_inference_is_busy(tiny_onnx, held_engine):
    pipeline = None

    def five_dropped():  # inference holds its first frame until the capture queue has dropped five
        return pipeline.captured.wait_for(lambda: pipeline.captured.dropped >= 5, 30)

    with open_engine(tiny_onnx, device="cpu") as engine:
        pipeline = build("synthetic:96x80@200", held_engine(engine, hold=five_dropped), max_frames=80)
        with pipeline:
            outcome = pipeline.run()
    summary = outcome.stats.summary()
    assert outcome.reason == "max frames" and outcome.exit_code == 0
    assert summary["frames_in"] == 80
    assert summary["dropped"]["capture queue"] >= 5
    assert summary["frames_processed"] + summary["dropped_total"] == 80
    assert pipeline.captured.high_water <= 2 and pipeline.inferred.high_water <= 2
    assert pipeline_threads() == []


def test_file_source_blocks_and_loses_nothing(tiny_onnx, synthetic_clip, held_engine):
    pipeline = None

    def queue_full():  # inference holds its first frame until the capture queue is full
        return pipeline.captured.wait_for(lambda: len(pipeline.captured) == 1, 30)

    with open_engine(tiny_onnx, device="cpu") as engine:
        pipeline = build(str(synthetic_clip), held_engine(engine, hold=queue_full), queue_size=1)
        with pipeline:
            outcome = pipeline.run()
    summary = outcome.stats.summary()
    assert outcome.reason == "end of stream"
    assert summary["frames_in"] == summary["frames_processed"] == 36
    assert summary["dropped_total"] == 0
    assert pipeline.captured.high_water == 1


def test_quit_stops_every_thread(tiny_onnx):
    with open_engine(tiny_onnx, device="cpu") as engine:
        pipeline = None

        def quit_after_ten(stats, status):
            if stats.frames_out == 10:
                pipeline.request_stop("quit")

        pipeline = build("synthetic:96x80@100", engine, on_frame=quit_after_ten)
        with pipeline:
            outcome = pipeline.run()
    assert outcome.reason == "quit" and outcome.exit_code == 0
    assert outcome.stats.frames_out == 10
    assert pipeline_threads() == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/nonexistent/clip.mp4", "no such file or folder"),
        ("99", "camera 99: cannot open it"),
        ("synthetic:abc", "write synthetic sources as"),
    ],
)
def test_bad_sources_are_one_line_errors(tiny_onnx, source, message, capsys):
    assert main(["--source", source, "--model", str(tiny_onnx), "--headless"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and message in err[0]


def test_no_source_suggests_what_to_pass(tiny_onnx, capsys):
    assert main(["--model", str(tiny_onnx)]) == 2
    assert "no --source given" in capsys.readouterr().err
