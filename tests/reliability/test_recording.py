"""A recording is never lost: killed, interrupted or terminated, the file plays."""

from __future__ import annotations

import json
import signal

import pytest

LIVE = "synthetic:160x128@30"


def record_live(cli, model, tmp_path, suffix, display="auto"):
    out, masks, stats = tmp_path / f"live{suffix}", tmp_path / "masks", tmp_path / "stats.json"
    args = ["--source", LIVE, "--model", str(model), "--device", "cpu", "--headless", "--display", display]
    args += ["--record", str(out), "--masks-out", str(masks), "--stats-json", str(stats)]
    return cli(args), out, masks, stats


def masks_written(masks) -> int:
    """Frames the mask writer has been given: the lines of shown.csv (passthrough, one per frame,
    written line by line) or the mask PNGs (synced, one per frame)."""
    shown = masks / "shown.csv"
    if shown.is_file():
        return max(0, len(shown.read_text().splitlines()) - 1)
    return len(list(masks.iterdir())) if masks.is_dir() else 0


@pytest.mark.parametrize(
    ("suffix", "display"), [(".mp4", "passthrough"), (".mkv", "passthrough"), (".mp4", "synced")]
)
def test_sigkill_keeps_nine_tenths_of_the_frames(micro_onnx, tmp_path, cli, wait, decoded, suffix, display):
    proc, out, masks, _ = record_live(cli, micro_onnx, tmp_path, suffix, display)
    wait(lambda: masks_written(masks) >= 90, 90, "90 frames recorded", proc)
    proc.kill()
    proc.communicate(timeout=30)
    # each frame goes to the mask writer right after the recorder took it: at most one more went in
    handed_to_recorder = masks_written(masks) + 1
    frames, _ = decoded(out)
    assert frames >= 0.9 * handed_to_recorder


@pytest.mark.parametrize(
    ("suffix", "signum", "code", "reason"),
    [
        (".mp4", signal.SIGINT, 130, "interrupted"),
        (".mkv", signal.SIGTERM, 143, "terminated"),
        (".mp4", signal.SIGTERM, 143, "terminated"),
    ],
    ids=["mp4-SIGINT", "mkv-SIGTERM", "mp4-SIGTERM"],
)
def test_signals_finalise_the_recording_and_the_stats(
    micro_onnx, tmp_path, cli, wait, decoded, finalised, suffix, signum, code, reason
):
    proc, out, masks, stats = record_live(cli, micro_onnx, tmp_path, suffix)
    wait(lambda: masks_written(masks) >= 20, 90, "20 frames recorded", proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    report = json.loads(stats.read_text())
    assert report["reason"] == reason and report["exit_code"] == code
    assert finalised(out)  # mp4: the closing mfra index; mkv: cues and duration
    frames, rate = decoded(out)
    assert frames == report["recording"]["frames"] >= 20
    assert 0 < rate <= 30.0  # source timestamps kept: frames dropped live leave gaps
