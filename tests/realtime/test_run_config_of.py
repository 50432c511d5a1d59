"""`run_config_of`: the pipeline of `batch`, `bench --pipeline` and `eval --video` is built from the
command's configuration whole, so an option a command shares with `run` reaches its pipeline."""

from __future__ import annotations

from pathlib import Path

from polyp_rt.batch.config import BatchConfig
from polyp_rt.cli.config import BenchConfig, EvalCommandConfig
from polyp_rt.realtime.config import OverlayConfig, run_config_of


def test_shared_names_are_taken_left_ones_are_not_and_fixed_ones_win() -> None:
    bench = BenchConfig(
        source="synthetic:320x240@25",
        backend="onnxruntime",
        device="cpu",
        fp16=True,
        stages="cpu",
        display="passthrough",
        inference="throughput",
        alert_min_frames=7,
        alert_hold=1,
        frames=42,
    )
    run = run_config_of(bench, model=Path("m.onnx"), headless=True, max_frames=bench.frames)
    assert (run.source, run.backend, run.device, run.fp16) == (
        "synthetic:320x240@25",
        "onnxruntime",
        "cpu",
        True,
    )
    assert (run.stages, run.display, run.inference) == ("cpu", "passthrough", "throughput")
    assert (run.overlay.alert_min_frames, run.overlay.alert_hold) == (7, 1), "flat overlay options gathered"
    assert run.overlay.min_area == OverlayConfig().min_area, "what bench has not: the default"
    assert (run.model, run.headless, run.max_frames) == (Path("m.onnx"), True, 42)

    video = EvalCommandConfig(
        record=Path("frames.jsonl"),
        truth=Path("truth"),
        threshold=0.3,
        threads=1,
        min_area=0.01,
        smoothing=0.4,
    )
    run = run_config_of(video, leave=("record", "truth"), source="clip.mp4")
    assert run.record is None and run.truth is None, "the command's inputs are not the pipeline's outputs"
    assert (run.threshold, run.threads, run.overlay.min_area, run.smoothing) == (0.3, 1, 0.01, 0.4)


def test_a_batch_hands_its_pipeline_options_on_and_decides_its_outputs(tmp_path: Path) -> None:
    from polyp_rt.batch.config import MASKS

    overlay = OverlayConfig(min_area=0.01, alert_min_frames=5)
    batch = BatchConfig(
        inputs=[tmp_path], out=tmp_path / "out", model=tmp_path / "m.onnx", device="cpu",
        threshold=0.3, smoothing=0.5, overlay=overlay, truth=tmp_path / "truth", record=True,
    )  # fmt: skip
    run = batch.run_config()
    assert (run.threshold, run.smoothing, run.overlay, run.device) == (0.3, 0.5, overlay, "cpu")
    assert run.truth is None, "--truth scores the batch's results; the pipeline scores nothing itself"
    assert (run.masks_out, run.record, run.threads, run.headless) == (MASKS, Path("annotated.mp4"), 2, True)
