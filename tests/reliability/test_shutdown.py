"""Shutdown: Ctrl-C again while a stopped run finishes does not cut the finishing short (exit 130,
the recording finalised, the stats JSON and its histogram written; a third Ctrl-C would quit at
once), and however a run stops, every frame in is counted: frames in = processed + dropped."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess

import pytest

import polyp_rt.engines.registry
from polyp_rt.cli.main import main


def test_ctrl_c_while_the_run_finishes_still_writes_everything(
    micro_onnx, tmp_path, capsys, finalised, decoded, no_pipeline_threads
):
    out, stats = tmp_path / "live.mp4", tmp_path / "stats.json"
    # the user's Ctrl-C after 20 frames, and again while the stopped run finishes: after the
    # recording is finalised, before the statistics are written
    source = "faulty:96x80@30?interrupt_at=20&interrupts_on_close=1"
    args = ["--source", source, "--model", str(micro_onnx), "--device", "cpu", "--headless"]
    code = main([*args, "--max-frames", "900", "--record", str(out), "--stats-json", str(stats)])

    assert code == 130
    err = capsys.readouterr().err
    assert "still finalising the recording and the statistics" in err
    report = json.loads(stats.read_text())
    assert report["reason"] == "interrupted" and report["exit_code"] == 130
    assert stats.with_suffix(".png").is_file()
    assert finalised(out) and decoded(out)[0] == report["recording"]["frames"] >= 1
    assert no_pipeline_threads() == []


@pytest.mark.parametrize("gap_s", [0.0, 0.05, 0.4])
def test_two_ctrl_c_while_recording_end_with_130_and_everything_written(
    micro_onnx, tmp_path, cli, wait, finalised, gap_s
):
    out, masks, stats = tmp_path / "live.mp4", tmp_path / "masks", tmp_path / "stats.json"
    args = ["--source", "synthetic:160x128@30", "--model", str(micro_onnx), "--device", "cpu", "--headless"]
    proc = cli([*args, "--record", str(out), "--masks-out", str(masks), "--stats-json", str(stats)])
    wait(lambda: masks.is_dir() and len(list(masks.iterdir())) >= 20, 90, "20 frames recorded", proc)
    proc.send_signal(signal.SIGINT)
    seen = []
    while not seen or (seen[-1] and "stopping and finalising" not in seen[-1]):
        seen.append(proc.stderr.readline())  # the first Ctrl-C was taken: the run is stopping
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=gap_s)  # the user's hand: the run may end before the second Ctrl-C
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, "".join(seen) + err
    report = json.loads(stats.read_text())
    assert report["reason"] == "interrupted"
    assert stats.with_suffix(".png").is_file()
    assert finalised(out)


@pytest.mark.parametrize("display", ["synced", "passthrough"])
def test_an_error_stop_counts_the_frames_in_flight(micro_onnx, held_engine, tmp_path, monkeypatch, display):
    real_open_engine = polyp_rt.engines.registry.open_engine
    monkeypatch.setattr(  # the run's own engine, wrapped so that its 13th inference raises
        polyp_rt.engines.registry,
        "open_engine",
        lambda *args, **kwargs: held_engine(real_open_engine(*args, **kwargs), fail_after=12),
    )
    stats = tmp_path / "stats.json"
    args = ["--source", "synthetic:96x80@30", "--model", str(micro_onnx), "--device", "cpu", "--headless"]
    assert main([*args, "--max-frames", "900", "--stats-json", str(stats), "--display", display]) == 1
    report = json.loads(stats.read_text())
    assert report["reason"] == "error" and report["modes"]["display"] == display
    assert report["frames_in"] == report["frames_processed"] + report["dropped_total"]
    if display == "synced":  # passthrough: the model fails on its own copy, the frame itself was shown
        assert report["dropped"]["at shutdown"] >= 1  # the frame the engine failed on, at least
