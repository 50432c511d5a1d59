"""The live pipeline doing its job. Its faults (signals, SIGKILL, failing engines and disks,
damaged and vanishing sources) are in tests/reliability/."""

import hashlib
import json
import threading
from pathlib import Path

import pytest

from polyp_rt.cli.main import main
from polyp_rt.engines.registry import open_engine
from polyp_rt.realtime.compose import compose
from polyp_rt.realtime.config import CaptureConfig, RunConfig
from polyp_rt.realtime.frame import Frame
from polyp_rt.realtime.sinks import Sink, TruthScorer


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Watch(Sink):
    """A sink of the test's own: whether each frame reached the sinks drawn, and its indicator."""

    def __init__(self) -> None:
        self.drawn: list[bool] = []
        self.indicator: list[bool] = []

    def write(self, frame: Frame) -> None:
        self.drawn.append(frame.overlay is not None)
        self.indicator.append(frame.polyp)


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
    for stage in ("queue", "preprocess", "infer", "postprocess", "output queue", "overlay"):
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
    assert report["model"] == {"path": str(tiny_onnx), "bundled": False, "sha256": sha256_of(tiny_onnx)}
    assert report["pacing"] == "as fast as possible"
    assert report["processing_ms"]["count"] == 36
    assert report["processing_ms"]["p50"] <= report["e2e_ms"]["p50"], "the queue wait left out"
    # a frame's own time is its stages but the two queues', frame by frame, so in the mean too
    own = sum(report["stages_ms"][s]["mean"] for s in ("preprocess", "infer", "postprocess", "overlay"))
    assert report["processing_ms"]["mean"] == pytest.approx(own, abs=1e-6)
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


def test_a_run_that_shows_and_records_nothing_draws_nothing_but_scores_and_counts(
    micro_onnx, synthetic_clip, tmp_path
):
    truth = synthetic_clip.with_name("clip_masks")
    runs = {}
    for record in (None, tmp_path / "out.mp4"):
        config = RunConfig(
            source=str(synthetic_clip), model=micro_onnx, headless=True, truth=truth, record=record
        )
        watch = Watch()
        with (
            open_engine(micro_onnx, device="cpu") as engine,
            compose(config, engine, extra_sinks=[watch]) as pipeline,
        ):
            outcome = pipeline.run()
            scores = next(s.summary()["truth"] for s in pipeline.sinks if isinstance(s, TruthScorer))
        runs[record is not None] = (pipeline.pictures, watch, scores, outcome.stats.summary())
    pictures, watch, scores, summary = runs[False]
    assert not pictures and watch.drawn == [False] * 36, "nothing shown or recorded: nothing drawn"
    assert scores["images"] == 36 and summary["frames_processed"] == summary["e2e_ms"]["count"] == 36
    pictures, drawn_watch, drawn_scores, _ = runs[True]
    assert pictures and drawn_watch.drawn == [True] * 36, "a recording: every frame drawn"
    assert drawn_scores == scores and drawn_watch.indicator == watch.indicator, "same masks, same indicator"


def test_the_closing_table_of_a_file_read_flat_out_shows_throughput_and_latency_apart(
    micro_onnx, synthetic_clip, tmp_path, capsys
):
    stats = tmp_path / "stats.json"
    args = [
        "--source",
        str(synthetic_clip),
        "--model",
        str(micro_onnx),
        "--headless",
        "--stats-json",
        str(stats),
    ]
    assert main(args) == 0
    table = " ".join(capsys.readouterr().out.split())
    assert "throughput" in table and "back-pressure, not latency" in table and "latency" in table
    assert "queue (read-ahead)" in table and "output queue (wait)" in table
    assert main([*args, "--realtime", "--overwrite"]) == 0
    paced = " ".join(capsys.readouterr().out.split())
    assert "back-pressure" not in paced and "throughput" not in paced and "video delay" in paced
    assert "output queue" in paced and "(wait)" not in paced, "live, the waits are latency"
    assert json.loads(stats.read_text())["pacing"] == "at its own rate"
