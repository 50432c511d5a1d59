"""Outputs never destroy inputs or each other: every path the run writes (the recording, the masks
folder, the stats JSON and the histogram beside it) is resolved and checked against every input
(source, --truth, model) and every other output before anything is opened for writing. A clash,
a masks folder that already holds files, or a path that cannot be written is one line, exit 2,
and nothing is touched."""

from __future__ import annotations

import hashlib
import os
import shutil

import cv2
import numpy as np
import pytest

from polyp_rt.cli.main import main
from polyp_rt.core.errors import PolypRtError
from polyp_rt.engines.registry import open_engine
from polyp_rt.realtime.compose import compose
from polyp_rt.realtime.config import RunConfig
from tests.conftest import write_checkpoint


def snapshot(root) -> dict[str, str]:
    """Every file under `root`, by relative path: its sha256 (a symlink: where it points)."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = "-> " + os.readlink(path)
        elif path.is_file():
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[key] = "folder"
    return out


@pytest.fixture
def case(tmp_path, synthetic_clip, micro_onnx):
    """A work folder with real inputs: x/clip.mp4 with its ground truth x/clip_masks/, a model,
    and a folder of images."""
    x = tmp_path / "x"
    x.mkdir()
    shutil.copy(synthetic_clip, x / "clip.mp4")
    shutil.copytree(synthetic_clip.with_name("clip_masks"), x / "clip_masks")
    shutil.copy(micro_onnx, x / "model.onnx")
    frames = x / "frames"
    frames.mkdir()
    for i in range(4):
        cv2.imwrite(str(frames / f"{i:06d}.png"), np.full((64, 80, 3), 40 * i, np.uint8))
    return x


def run_in(x, *args):
    base = ["--model", str(x / "model.onnx"), "--device", "cpu", "--headless", "--max-frames", "900"]
    return main([*base, *args])


# (flags with X for the work folder, words the one line holds)
CLASHES = {
    "record over the source": (
        ["--source", "X/clip.mp4", "--record", "X/clip.mp4"],
        "--record would overwrite --source",
    ),
    "record over the source by a relative path": (
        ["--source", "X/clip.mp4", "--record", "X/frames/../clip.mp4"],
        "--record would overwrite --source",
    ),
    "record over the source through a symlink": (
        ["--source", "X/clip.mp4", "--record", "X/link.mp4"],
        "--record would overwrite --source",
    ),
    "record over the model": (
        ["--source", "X/clip.mp4", "--record", "X/model.onnx"],
        "--record would overwrite --model",
    ),
    "masks over the ground truth": (
        ["--source", "X/clip.mp4", "--masks-out", "X/clip_masks", "--truth", "X/clip_masks"],
        "--masks-out would overwrite --truth",
    ),
    "masks into the image folder played": (
        ["--source", "X/frames", "--masks-out", "X/frames", "--overwrite"],
        "--masks-out would overwrite --source",
    ),
    "stats JSON over the recording": (
        ["--source", "X/clip.mp4", "--record", "X/out.mp4", "--stats-json", "X/out.mp4"],
        "--stats-json and --record are the same path",
    ),
    "stats JSON named .png: the histogram would replace it": (
        ["--source", "X/clip.mp4", "--stats-json", "X/stats.png"],
        "name the statistics file .json",
    ),
    "histogram over the ground truth": (
        ["--source", "X/clip.mp4", "--truth", "X/clip_masks", "--stats-json", "X/clip_masks/000001.json"],
        "--stats-json lies in the folder of --truth",
    ),
    "recording into the masks folder": (
        ["--source", "X/clip.mp4", "--masks-out", "X/new_masks", "--record", "X/new_masks/000000.png"],
        "lies in the folder of --masks-out",
    ),
}


@pytest.mark.parametrize("name", CLASHES)
def test_an_output_never_replaces_an_input_or_another_output(case, capsys, one_error_line, name):
    flags, words = CLASHES[name]
    (case / "link.mp4").symlink_to(case / "clip.mp4")
    before = snapshot(case)
    code = run_in(case, *(flag.replace("X", str(case)) for flag in flags))
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert words in line
    assert snapshot(case) == before  # nothing touched, nothing created


def test_the_check_is_in_compose_for_every_caller(case):
    """`bench --pipeline`, `batch` and the tests get their pipeline from compose(): the same check."""
    config = RunConfig(source=str(case / "clip.mp4"), record=case / "clip.mp4", headless=True)
    before = snapshot(case)
    with (
        open_engine(case / "model.onnx", device="cpu") as engine,
        pytest.raises(PolypRtError, match="overwrite"),
    ):
        compose(config, engine)
    assert snapshot(case) == before


def test_a_masks_folder_that_holds_files_is_refused_unless_overwrite(case, capsys, one_error_line):
    masks = case / "masks"
    assert run_in(case, "--source", str(case / "clip.mp4"), "--masks-out", str(masks)) == 0
    held = snapshot(masks)
    assert len(held) == 36
    capsys.readouterr()

    # a shorter run into the same folder would leave 26 stale masks beside its own 10
    assert (
        run_in(case, "--source", str(case / "clip.mp4"), "--masks-out", str(masks), "--max-frames", "10") == 2
    )
    line = one_error_line(capsys.readouterr().err)
    assert "--masks-out already holds 36 files" in line and "--overwrite" in line
    assert snapshot(masks) == held

    flags = ["--source", str(case / "clip.mp4"), "--masks-out", str(masks), "--max-frames", "10"]
    assert run_in(case, *flags, "--overwrite") == 0  # asked for: written into it


@pytest.mark.parametrize(
    ("flag", "where", "said"),
    [
        ("--stats-json", "/proc/polyp-rt-stats.json", "cannot be written in /proc"),
        ("--stats-json", "FOLDER", "--stats-json is a folder; give a file name"),
        ("--stats-json", "FILE/stats.json", "cannot be created: FILE is a file, not a folder"),
        ("--record", "/proc/polyp-rt.mp4", "cannot be written in /proc"),
        ("--masks-out", "/proc/polyp-rt-masks", "cannot be written in /proc"),
        ("--masks-out", "FILE", "--masks-out is a file, not a folder"),
    ],
)
def test_every_output_is_checked_writable_before_the_first_frame(
    tmp_path, micro_onnx, capsys, one_error_line, flag, where, said
):
    (tmp_path / "FOLDER").mkdir()
    (tmp_path / "FILE").write_text("a file")
    path = where if where.startswith("/") else str(tmp_path / where)
    said = said.replace("FILE", str(tmp_path / "FILE"))
    out = tmp_path / "out.mp4"
    # a live source: were the path checked after the run, this would run to --max-frames first
    args = ["--source", "synthetic:96x80@30", "--model", str(micro_onnx), "--device", "cpu", "--headless"]
    args += ["--max-frames", "900", flag, path]
    if flag != "--record":
        args += ["--record", str(out)]
    assert main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {path}: ") and said in line
    assert "disk full" not in line
    assert not out.exists()  # nothing was opened for writing


# the other commands that write files: (argv with X for the work folder, words the line holds)
OTHER_COMMANDS = {
    "bench --plot over the model": (
        ["bench", "--model", "X/model.onnx", "--plot", "X/model.onnx", "--iterations", "1"],
        "--plot would overwrite --model",
    ),
    "bench --plot where it cannot be written, before the timing": (
        ["bench", "--model", "X/model.onnx", "--plot", "/proc/polyp-rt-plot.png", "--iterations", "1"],
        "--plot cannot be written in /proc",
    ),
    "export over the checkpoint": (
        ["export", "--checkpoint", "X/model.onnx", "-o", "X/model.onnx"],
        "--output would overwrite --checkpoint",
    ),
    "build over the ONNX": (
        ["build", "--onnx", "X/model.onnx", "-o", "X/model.onnx"],
        "--output would overwrite --onnx",
    ),
    "build: the sidecar over the ONNX": (
        ["build", "--onnx", "X/model.onnx", "-o", "X/model"],
        "its sidecar would overwrite --onnx",
    ),
}


@pytest.mark.parametrize("name", OTHER_COMMANDS)
def test_other_commands_never_write_over_their_inputs(case, capsys, one_error_line, name):
    argv, words = OTHER_COMMANDS[name]
    if name == "build: the sidecar over the ONNX":  # -o X/model writes X/model.json beside it
        (case / "model.onnx").rename(case / "model.json")
        argv = [a.replace("model.onnx", "model.json") for a in argv]
    before = snapshot(case)
    assert main([arg.replace("X", str(case)) for arg in argv]) == 2
    assert words in one_error_line(capsys.readouterr().err)
    assert snapshot(case) == before


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["export", "--checkpoint", "X/run/best.pt", "-o", "X/old.onnx"], "--output"),
        (["quantize", "--onnx", "X/model.onnx", "--calibrate", "X/frames", "-o", "X/old.onnx"], "--output"),
        (["build", "--onnx", "X/model.onnx", "-o", "X/old.onnx"], "--output"),
        (["bench", "--model", "X/model.onnx", "--iterations", "1", "--plot", "X/old.png"], "--plot"),
        (
            [
                "eval",
                "--video",
                "X/clip.mp4",
                "--truth",
                "X/clip_masks",
                "--model",
                "X/model.onnx",
                "--plot",
                "X/old.svg",
            ],
            "--plot",
        ),
    ],
    ids=["export", "quantize", "build", "bench", "eval"],
)
def test_a_file_that_exists_is_replaced_only_with_overwrite(case, capsys, one_error_line, argv, flag):
    (case / "run").mkdir()
    write_checkpoint(case / "run" / "best.pt")
    old = case / argv[-1].removeprefix("X/")
    old.write_bytes(b"an earlier output")
    before = snapshot(case)
    argv = [arg.replace("X", str(case)) for arg in argv]
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{old}: {flag} exists already" in line and "--overwrite" in line
    assert snapshot(case) == before
    if argv[0] in ("export", "bench"):  # asked for: replaced by the new output
        assert main([*argv, "--overwrite"]) == 0
        assert old.read_bytes() != b"an earlier output"


def test_training_never_writes_over_the_checkpoint_it_starts_from(
    case, synthetic_data, capsys, one_error_line
):
    run = case / "run"
    run.mkdir()
    shutil.copy(case / "model.onnx", run / "best.pt")  # any file: it is refused before it is read
    before = snapshot(case)
    args = ["train", "--data", str(synthetic_data), "--init", str(run / "best.pt"), "--out", str(run)]
    assert main([*args, "--device", "cpu"]) == 2
    assert "the run's best.pt would overwrite --init" in one_error_line(capsys.readouterr().err)
    assert snapshot(case) == before
