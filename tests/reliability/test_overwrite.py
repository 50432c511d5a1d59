"""Outputs are never replaced silently, and each has one writer.

An earlier output (a recording, a stats JSON or its histogram, a synthetic data set or clip, a
training run) is refused without --overwrite, one line, exit 2, and left as it was; with
--overwrite it is replaced whole (synth and train remove the files of their own names first,
never others). A second writer of an output that is being written (real processes) is refused
with one line naming the path and the writer's pid; the lock goes with its process (SIGKILL too).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from polyp_rt.cli.main import main
from polyp_rt.core.errors import OutputError

LIVE = "synthetic:96x80@30"


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root`, by relative path: its sha256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def run_args(model: Path, source: str, *extra: str) -> list[str]:
    return ["--source", source, "--model", str(model), "--device", "cpu", "--headless", *extra]


# ------------------------------------------------------------------ polyp-rt run


@pytest.mark.parametrize(
    ("first", "flags", "said"),
    [
        ("rec.mp4", ["--record", "X/rec.mp4"], "X/rec.mp4: --record exists already"),
        ("stats.json", ["--stats-json", "X/stats.json"], "X/stats.json: --stats-json exists already"),
        (
            "stats.png",
            ["--stats-json", "X/stats.json"],
            "X/stats.png: the latency histogram written beside --stats-json exists already",
        ),
    ],
    ids=["recording", "stats JSON", "histogram"],
)
def test_an_existing_run_output_is_refused_unless_overwrite(
    tmp_path, synthetic_clip, micro_onnx, capsys, one_error_line, decoded, first, flags, said
):
    (tmp_path / first).write_bytes(b"an earlier output: not to be replaced without --overwrite")
    before = snapshot(tmp_path)
    flags = [f.replace("X", str(tmp_path)) for f in flags]
    assert main(run_args(micro_onnx, str(synthetic_clip), *flags)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: " + said.replace("X", str(tmp_path))) and "--overwrite" in line
    assert snapshot(tmp_path) == before

    assert main(run_args(micro_onnx, str(synthetic_clip), *flags, "--overwrite")) == 0
    if first == "rec.mp4":
        assert decoded(tmp_path / "rec.mp4")[0] == 36  # replaced whole by the new recording
    else:
        assert json.loads((tmp_path / "stats.json").read_text())["frames_processed"] == 36


def masks_in(folder: Path) -> int:
    return len(list(folder.iterdir())) if folder.is_dir() else 0


def test_a_second_run_recording_to_the_same_path_is_refused_naming_the_first(
    tmp_path, micro_onnx, cli, wait, decoded, one_error_line
):
    out, masks, stats = tmp_path / "rec.mp4", tmp_path / "masks", tmp_path / "stats.json"
    first = cli(
        run_args(
            micro_onnx, LIVE, "--record", str(out), "--masks-out", str(masks), "--stats-json", str(stats)
        )
    )
    wait(lambda: masks_in(masks) >= 10, 90, "the first run recording", first)

    second = cli(run_args(micro_onnx, LIVE, "--record", str(out), "--max-frames", "30"))
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2
    assert one_error_line(err).startswith(f"error: {out}: --record exists already")

    second = cli(run_args(micro_onnx, LIVE, "--record", str(out), "--max-frames", "30", "--overwrite"))
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2
    assert one_error_line(err) == (
        f"error: {out}: --record is being written by another process (pid {first.pid}); "
        "wait for it to finish, or choose another path"
    )

    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    frames = json.loads(stats.read_text())["recording"]["frames"]
    assert decoded(out)[0] == frames >= 10  # the first run's recording, whole


def test_two_runs_started_together_leave_one_whole_recording(
    tmp_path, synthetic_clip, micro_onnx, cli, decoded, one_error_line
):
    out = tmp_path / "rec.mp4"
    procs = [cli(run_args(micro_onnx, str(synthetic_clip), "--record", str(out))) for _ in range(2)]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    line = one_error_line(refused)
    assert line.startswith(f"error: {out}: ")
    assert "--record exists already" in line or "is being written by another process (pid" in line
    assert decoded(out)[0] == 36


def test_the_lock_goes_with_a_killed_writer(tmp_path, synthetic_clip, micro_onnx, cli, wait, decoded):
    out, masks = tmp_path / "rec.mkv", tmp_path / "masks"
    first = cli(run_args(micro_onnx, LIVE, "--record", str(out), "--masks-out", str(masks)))
    wait(lambda: masks_in(masks) >= 5, 90, "the first run recording", first)
    first.kill()  # SIGKILL: nothing of ours runs, the kernel drops the lock
    first.communicate(timeout=30)
    again = cli(run_args(micro_onnx, str(synthetic_clip), "--record", str(out), "--overwrite"))
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert decoded(out)[0] == 36  # the clip's every frame: the new recording alone


def test_one_writer_per_recording_and_masks_folder_in_one_process(tmp_path):
    from polyp_rt.core.locks import lock_output
    from polyp_rt.realtime.recorder import Recorder
    from polyp_rt.realtime.sinks import MaskWriter

    path = tmp_path / "rec.mp4"
    with Recorder(path, 64, 48, 30) as recorder:
        with pytest.raises(
            OutputError, match=rf"the recording is being written by another process \(pid {os.getpid()}\)"
        ):
            Recorder(path, 64, 48, 30)
        assert recorder.frames_written == 0
    assert not path.exists()  # made here and closed without a frame: removed again
    with Recorder(path, 64, 48, 30) as again:  # released at close
        again.write(np.zeros((48, 64, 3), np.uint8))
    assert path.is_file()

    writer = MaskWriter(tmp_path / "masks")
    with pytest.raises(OutputError, match="the mask folder is being written by another process"):
        MaskWriter(tmp_path / "masks")
    writer.close()
    MaskWriter(tmp_path / "masks").close()

    with lock_output(Path("/dev/null"), "a device"):  # a device is not locked, and not refused
        lock_output(Path("/dev/null"), "a device").close()
    fifo = tmp_path / "fifo.mp4"
    os.mkfifo(fifo)
    lock_output(fifo, "a pipe").close()  # not opened: without a reader, that would block


# ------------------------------------------------------------------ polyp-rt synth


def test_synth_out_over_a_data_set_is_refused_unless_overwrite(tmp_path, capsys, one_error_line):
    ds, fresh = tmp_path / "ds", tmp_path / "fresh"
    assert main(["synth", "--out", str(ds), "--count", "4", "--size", "32", "--seed", "1"]) == 0
    (ds / "images" / "notes.txt").write_text("not synth's: stays")
    before = snapshot(ds)
    capsys.readouterr()

    assert main(["synth", "--out", str(ds), "--count", "2", "--size", "32", "--seed", "2"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {ds / 'images'}: --out images/ already holds 5 files")
    assert "--overwrite" in line
    assert snapshot(ds) == before

    argv = ["synth", "--out", str(ds), "--count", "2", "--size", "32", "--seed", "2", "--overwrite"]
    assert main(argv) == 0
    assert names(ds / "images") == ["00000.jpg", "00001.jpg", "notes.txt"]  # no stale pair stays
    assert names(ds / "masks") == ["00000.png", "00001.png"]
    assert main(["synth", "--out", str(fresh), "--count", "2", "--size", "32", "--seed", "2"]) == 0
    assert snapshot(ds) == {**snapshot(fresh), "images/notes.txt": before["images/notes.txt"]}


def test_synth_video_over_a_clip_is_refused_unless_overwrite_and_then_clears_its_masks(
    tmp_path, capsys, one_error_line, decoded
):
    clip, masks = tmp_path / "clip.mp4", tmp_path / "clip_masks"
    size = ["--width", "64", "--height", "48"]
    assert main(["synth", "--video", str(clip), "--frames", "12", *size]) == 0
    (masks / "README.txt").write_text("not synth's: stays")
    before = snapshot(tmp_path)
    capsys.readouterr()

    assert main(["synth", "--video", str(clip), "--frames", "5", *size]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {clip}: --video exists already") and "--overwrite" in line
    assert snapshot(tmp_path) == before

    assert main(["synth", "--video", str(clip), "--frames", "5", *size, "--overwrite"]) == 0
    assert decoded(clip)[0] == 5
    assert names(masks) == [*(f"{i:06d}.png" for i in range(5)), "README.txt", "truth.json"]  # no stale mask


def test_synth_refuses_a_masks_folder_of_an_earlier_clip(tmp_path, capsys, one_error_line):
    masks = tmp_path / "clip_masks"
    masks.mkdir()
    (masks / "000000.png").write_bytes(b"an earlier clip's mask")
    argv = [
        "synth",
        "--video",
        str(tmp_path / "clip.mp4"),
        "--frames",
        "3",
        "--width",
        "64",
        "--height",
        "48",
    ]
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {masks}: the clip's masks folder already holds 1 files")
    assert not (tmp_path / "clip.mp4").exists()


# ------------------------------------------------------------------ polyp-rt train


def train_argv(data: Path, run: Path, *extra: str) -> list[str]:
    tiny = ["--preset", "cpu", "--encoder", "mobilenet_v2", "--encoder-weights", "none", "--size", "64"]
    return ["train", "--data", str(data), "--out", str(run), *tiny, "--epochs", "1", "--batch-size", "4",
            "--workers", "0", "--device", "cpu", *extra]  # fmt: skip


def test_train_out_over_a_run_is_refused_unless_overwrite(tmp_path, synthetic_data, capsys, one_error_line):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"the best epoch of an earlier run")
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    (run / "notes.txt").write_text("not the run's: stays")
    before = snapshot(run)

    assert main(train_argv(synthetic_data, run)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {run}: holds a run already (best.pt)")
    assert f"--resume {run / 'last.pt'}" in line and "--overwrite" in line
    assert snapshot(run) == before

    broken = tmp_path / "broken"  # refused by its data: the earlier run is still untouched
    shutil.copytree(synthetic_data, broken)
    next((broken / "masks").iterdir()).unlink()
    assert main(train_argv(broken, run, "--overwrite")) == 2
    capsys.readouterr()
    assert snapshot(run) == before

    (run / "best.pt").unlink()  # a run killed before its first checkpoint: nothing to keep
    assert main(train_argv(broken, run)) == 2  # refused for its data only, not for the folder
    assert "holds a run" not in one_error_line(capsys.readouterr().err)


def test_train_overwrite_starts_a_new_run_and_a_run_in_use_is_refused(
    tmp_path, synthetic_data, capsys, one_error_line
):
    from polyp_rt.core.locks import lock_output
    from polyp_rt.engines.checkpoint import load_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"the best epoch of an earlier run")
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    (run / "notes.txt").write_text("not the run's: stays")
    assert main(train_argv(synthetic_data, run, "--overwrite")) == 0
    assert load_checkpoint(run / "best.pt").extra is not None  # a real checkpoint now
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # this run's one epoch
    assert (run / "notes.txt").read_text() == "not the run's: stays"
    capsys.readouterr()

    with lock_output(run, "a run folder", folder=True):  # as a training in progress holds it
        assert main(["train", "--resume", str(run / "last.pt"), "--epochs", "2"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        f"error: {run}: the run folder is being written by another process (pid {os.getpid()}); "
        "wait for it to finish, or choose another path"
    )


def test_a_run_refused_by_a_held_masks_folder_leaves_no_recording(
    tmp_path, synthetic_clip, micro_onnx, capsys, one_error_line
):
    from polyp_rt.core.locks import lock_output

    masks, out = tmp_path / "masks", tmp_path / "rec.mp4"
    masks.mkdir()
    with lock_output(masks, "a masks folder", folder=True):  # as a run writing masks there holds it
        code = main(
            run_args(micro_onnx, str(synthetic_clip), "--record", str(out), "--masks-out", str(masks))
        )
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(
        f"error: {masks}: --masks-out is being written by another process (pid {os.getpid()})"
    )
    assert list(tmp_path.iterdir()) == [masks]  # refused before anything was opened: no recording
