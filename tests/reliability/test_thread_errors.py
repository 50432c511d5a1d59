"""An error in any thread: the source failing (capture thread), the engine failing mid-stream
(inference thread), the disk filling up under the recording or the masks (output thread).
Every thread stops, the first error is one line, the recording so far is finalised, and no
thread is left behind."""

from __future__ import annotations

import json
import os

import pytest

import polyp_rt.engines.registry
from polyp_rt.cli.main import main

LIVE = "synthetic:160x128@30"


def live_args(model, *extra):
    # bounded: should the fault go unnoticed, the run ends (exit 0) and the test fails, not hangs
    args = ["--source", LIVE, "--model", str(model), "--device", "cpu", "--headless", "--max-frames", "900"]
    return [*args, *extra]


def test_engine_failing_mid_stream_stops_all_and_keeps_the_recording(
    micro_onnx,
    held_engine,
    tmp_path,
    monkeypatch,
    capsys,
    one_error_line,
    decoded,
    finalised,
    no_pipeline_threads,
):
    real_open_engine = polyp_rt.engines.registry.open_engine
    # the run command's own engine, wrapped so that its 13th inference raises
    monkeypatch.setattr(
        polyp_rt.engines.registry,
        "open_engine",
        lambda *args, **kwargs: held_engine(real_open_engine(*args, **kwargs), fail_after=12),
    )
    out, stats = tmp_path / "rec.mp4", tmp_path / "stats.json"
    code = main(live_args(micro_onnx, "--record", str(out), "--stats-json", str(stats)))

    assert code == 1  # not the user's fault: reported as a bug
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: internal error: RuntimeError: engine failed (injected)")
    report = json.loads(stats.read_text())
    assert report["reason"] == "error" and report["error"] == "engine failed (injected)"
    assert finalised(out)
    assert decoded(out)[0] == report["recording"]["frames"] == report["frames_processed"] >= 1
    assert no_pipeline_threads() == []


def test_source_failing_in_the_capture_thread_stops_all_and_keeps_the_recording(
    micro_onnx, tmp_path, capsys, one_error_line, decoded, finalised, no_pipeline_threads
):
    out, stats = tmp_path / "rec.mkv", tmp_path / "stats.json"
    live = "faulty:160x128@30?fail_at=20"  # the device is lost after 20 frames; no reconnects
    args = [
        "--source",
        live,
        "--model",
        str(micro_onnx),
        "--device",
        "cpu",
        "--headless",
        "--reconnects",
        "0",
    ]
    code = main([*args, "--record", str(out), "--stats-json", str(stats)])

    assert code == 2
    assert one_error_line(capsys.readouterr().err) == "error: synthetic source: device lost (injected fault)"
    report = json.loads(stats.read_text())
    assert report["reason"] == "error" and report["frames_in"] == 20
    assert finalised(out)
    assert decoded(out)[0] == report["recording"]["frames"] == report["frames_processed"] >= 1
    assert no_pipeline_threads() == []


def test_recording_to_a_full_disk_stops_with_one_line(
    micro_onnx, tmp_path, capsys, one_error_line, no_pipeline_threads
):
    out, stats = tmp_path / "rec.mp4", tmp_path / "stats.json"
    out.symlink_to("/dev/full")  # every write fails with ENOSPC
    code = main(live_args(micro_onnx, "--record", str(out), "--stats-json", str(stats)))
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {out}: writing the recording failed ([Errno 28] No space left on device")
    assert line.endswith("is the disk full?")
    assert json.loads(stats.read_text())["reason"] == "error"
    assert no_pipeline_threads() == []


def test_masks_to_a_full_disk_stop_with_one_line(
    micro_onnx, synthetic_clip, tmp_path, capsys, one_error_line
):
    masks = tmp_path / "masks"
    masks.mkdir()
    (masks / "000005.png").symlink_to("/dev/full")  # the sixth mask meets a full disk
    args = ["--source", str(synthetic_clip), "--model", str(micro_onnx), "--device", "cpu", "--headless"]
    code = main([*args, "--masks-out", str(masks), "--overwrite"])  # a file source: no frame is dropped
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert (
        line
        == f"error: {masks}/000005.png: writing the mask failed (No space left on device); is the disk full?"
    )
    assert len(list(masks.iterdir())) == 6


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_disk_filling_up_mid_recording_keeps_a_playable_file(
    micro_onnx, tmp_path, cli, one_error_line, decoded, suffix
):
    out, stats = tmp_path / f"rec{suffix}", tmp_path / "stats.json"
    limit = 30_000  # bytes any file may grow to: the recording hits it after a second or two
    proc = cli(live_args(micro_onnx, "--record", str(out), "--stats-json", str(stats)), fsize_limit=limit)
    _, err = proc.communicate(timeout=120)

    assert proc.returncode == 2, err
    line = one_error_line(err)  # the recording's error, not the stats histogram's that came after it
    assert line.startswith(f"error: {out}: writing the recording failed ([Errno 27] File too large")
    report = json.loads(stats.read_text())
    assert report["reason"] == "error"
    # cut back to its last complete fragment: every byte left decodes
    assert os.path.getsize(out) <= limit
    assert 1 <= decoded(out)[0] <= report["recording"]["frames"]
