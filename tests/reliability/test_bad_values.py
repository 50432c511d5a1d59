"""Bad values: every numeric flag of every command has a valid range, checked when the flags are
parsed (one line naming the flag and the range, exit 2); a config built in code is checked too;
bad source specs, a video too small to use and odd clip sizes are one line, never an internal
error (exit 1), and nothing is left behind."""

from __future__ import annotations

import dataclasses
import json
import typing

import numpy as np
import pytest

from polyp_rt.cli.main import COMMANDS, _flag_type, load, main
from polyp_rt.core.errors import PolypRtError


def numeric_fields(cls: type, command: str) -> typing.Iterator[tuple[str, dataclasses.Field[typing.Any]]]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from numeric_fields(hints[f.name], command)
        elif _flag_type(hints[f.name]) in (int, float):
            yield command, f


def test_every_numeric_flag_of_every_command_has_a_range():
    fields = [row for name, (_, config, _) in COMMANDS.items() for row in numeric_fields(load(config), name)]
    assert len(fields) > 40
    missing = [
        f"{command} --{f.name.replace('_', '-')}" for command, f in fields if "range" not in f.metadata
    ]
    assert missing == []


# (argv, the flag and range the line names); X is the test's folder
OUT_OF_RANGE = {
    "run --max-frames 0": (["--max-frames", "0"], "--max-frames: 0 is out of range: must be >= 1"),
    "run --max-frames -5": (["--max-frames", "-5"], "--max-frames: -5 is out of range: must be >= 1"),
    "run --min-area -1": (["--min-area", "-1"], "--min-area: -1 is out of range: must be (0, 1]"),
    "run --min-area 2": (["--min-area", "2"], "--min-area: 2 is out of range: must be (0, 1]"),
    "run --threshold 2": (["--threshold", "2"], "--threshold: 2 is out of range: must be (0, 1)"),
    "run --threshold nan": (["--threshold", "nan"], "--threshold: nan is out of range: must be (0, 1)"),
    "run --reconnects -1": (["--reconnects", "-1"], "--reconnects: -1 is out of range: must be >= 0"),
    "run --queue-size 0": (["--queue-size", "0"], "--queue-size: 0 is out of range: must be [1, 100]"),
    "run --queue-size -1": (["--queue-size", "-1"], "--queue-size: -1 is out of range"),
    "run --smoothing 1.5": (["--smoothing", "1.5"], "--smoothing: 1.5 is out of range: must be [0, 1)"),
    "run --smoothing 1": (["--smoothing", "1"], "--smoothing: 1 is out of range: must be [0, 1)"),
    "run --smoothing -0.5": (["--smoothing", "-0.5"], "--smoothing: -0.5 is out of range"),
    "run --stall-timeout -1": (["--stall-timeout", "-1"], "--stall-timeout: -1 is out of range"),
    "run --fps 0": (["--fps", "0"], "--fps: 0 is out of range: must be (0, 1000]"),
    "bench --iterations 0": (["bench", "--iterations", "0"], "--iterations: 0 is out of range: must be >= 1"),
    "bench --batch 0": (["bench", "--batch", "0"], "--batch: 0 is out of range: must be >= 1"),
    "train --batch-size 0": (
        ["train", "--data", "X/data", "--out", "X/run", "--batch-size", "0"],
        "--batch-size: 0 is out of range: must be >= 1",
    ),
    "train --batch-size -2": (
        ["train", "--data", "X/data", "--out", "X/run", "--batch-size", "-2"],
        "--batch-size: -2 is out of range",
    ),
    "train --epochs 0": (
        ["train", "--data", "X/data", "--out", "X/run", "--epochs", "0"],
        "--epochs: 0 is out of range: must be >= 1",
    ),
    "train --lr 0": (["train", "--data", "X/data", "--out", "X/run", "--lr", "0"], "--lr: 0 is out of range"),
    "train --workers -1": (
        ["train", "--data", "X/data", "--out", "X/run", "--workers", "-1"],
        "--workers: -1 is out of range",
    ),
    "eval --threshold 2": (["eval", "--masks", "X", "--truth", "X", "--threshold", "2"], "--threshold: 2"),
    "synth --size 0": (
        ["synth", "--out", "X/set", "--size", "0"],
        "--size: 0 is out of range: must be [8, 8192]",
    ),
    "synth --count 0": (["synth", "--out", "X/set", "--count", "0"], "--count: 0 is out of range"),
    "synth --fps 0": (["synth", "--video", "X/v.mp4", "--fps", "0"], "--fps: 0 is out of range"),
    "synth --width 2": (
        ["synth", "--video", "X/v.mp4", "--width", "2", "--height", "2"],
        "--width: 2 is out of range: must be [8, 8192]",
    ),
    "synth --frames 0": (["synth", "--video", "X/v.mp4", "--frames", "0"], "--frames: 0 is out of range"),
    "synth --seed -1": (["synth", "--out", "X/set", "--seed", "-1"], "--seed: -1 is out of range"),
    "export --opset 5": (
        ["export", "--checkpoint", "X/c.pt", "-o", "X/m.onnx", "--opset", "5"],
        "--opset: 5",
    ),
    "build --max-batch 0": (
        ["build", "--onnx", "X/m.onnx", "-o", "X/m.engine", "--max-batch", "0"],
        "--max-batch: 0 is out of range: must be >= 1",
    ),
    "build --workspace-gb 0": (
        ["build", "--onnx", "X/m.onnx", "-o", "X/m.engine", "--workspace-gb", "0"],
        "--workspace-gb: 0 is out of range",
    ),
}


@pytest.mark.parametrize("case", OUT_OF_RANGE)
def test_an_out_of_range_flag_is_one_line_naming_the_flag_and_range(tmp_path, capsys, case):
    argv, said = OUT_OF_RANGE[case]
    if argv[0] not in COMMANDS:
        argv = ["--source", "synthetic:96x80@30", "--headless", *argv]
    argv = [arg.replace("X", str(tmp_path)) for arg in argv]
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: argument ") and said in lines[0], lines
    assert list(tmp_path.iterdir()) == []  # nothing made: no run folder, no split.json, no clip


def test_a_config_built_in_code_is_checked_too(micro_onnx, tmp_path):
    from polyp_rt.engines.registry import open_engine
    from polyp_rt.realtime.compose import compose
    from polyp_rt.realtime.config import RunConfig
    from polyp_rt.train.config import TrainConfig
    from polyp_rt.train.trainer import train

    with open_engine(micro_onnx, device="cpu") as engine:
        for config in (
            RunConfig(source="synthetic:96x80@30", queue_size=0),
            RunConfig(source="synthetic:96x80@30", smoothing=1.0),
        ):
            with pytest.raises(PolypRtError, match="must be"):
                compose(config, engine)
    with pytest.raises(PolypRtError, match="--batch-size 0: must be >= 1"):
        train(TrainConfig(data=[tmp_path], out=tmp_path / "run", batch_size=0))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("synthetic:0x0@30", "a synthetic scene is 8 to 8192 pixels wide and high (got 0x0)"),
        ("synthetic:7x7@30", "a synthetic scene is 8 to 8192 pixels wide and high (got 7x7)"),
        ("synthetic:100000x100000@30", "(got 100000x100000)"),
        ("synthetic:320x240@0", "the frame rate must be > 0"),
        ("synthetic:320x240@1.2.3", "'1.2.3' is not a frame rate"),
        ("synthetic:320x240@30?seed=abc", "seed='abc' is not a whole number"),
        ("synthetic:320x240@30?seed=-1", "seed=-1 must be 0 or more"),
        (
            "synthetic:320x240@30?stall_at=abc",
            "unknown parameter 'stall_at'; a synthetic source takes seed, loop",
        ),
        ("synthetic:1920x1080@30?loop=100000", "at most 2.1 GB: use fewer frames"),
    ],
)
def test_a_bad_synthetic_source_is_one_line(micro_onnx, capsys, one_error_line, spec, said):
    args = [
        "--source",
        spec,
        "--model",
        str(micro_onnx),
        "--device",
        "cpu",
        "--headless",
        "--max-frames",
        "3",
    ]
    assert main(args) == 2
    assert said in one_error_line(capsys.readouterr().err)


def test_a_video_too_small_to_use_is_one_line(micro_onnx, tmp_path, capsys, one_error_line):
    import av

    clip = tmp_path / "dot.mkv"  # a 1x1 video (FFV1, which takes any size)
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = 1, 1, "yuv444p"
        for _ in range(5):
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(np.full((1, 1, 3), 99, np.uint8), format="rgb24"))
            )
        container.mux(stream.encode(None))
    out = tmp_path / "out.mp4"
    args = ["--source", str(clip), "--model", str(micro_onnx), "--device", "cpu", "--headless"]
    assert main([*args, "--record", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == "error: file dot.mkv: frames are 1x1; polyp-rt needs at least 8x8 pixels"
    assert not out.exists()


def test_an_odd_clip_size_gives_a_clip_and_masks_of_one_size(micro_onnx, tmp_path, capsys):
    import av
    import cv2

    clip = tmp_path / "odd.mp4"
    args = ["synth", "--video", str(clip), "--width", "321", "--height", "241", "--frames", "4", "--fps", "8"]
    assert main(args) == 0
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
    masks = sorted(clip.with_name("odd_masks").glob("*.png"))  # and truth.json, which names the clip
    assert len(masks) == 4 and all(
        cv2.imread(str(m), cv2.IMREAD_GRAYSCALE).shape == (240, 320) for m in masks
    )
    # and the clip scores against its own masks
    stats = tmp_path / "stats.json"
    run = ["--source", str(clip), "--model", str(micro_onnx), "--device", "cpu", "--headless"]
    assert main([*run, "--truth", str(clip.with_name("odd_masks")), "--stats-json", str(stats)]) == 0
    assert json.loads(stats.read_text())["truth"]["images"] == 4


def test_an_unknown_bench_backend_is_one_line_listing_the_names(micro_onnx, capsys, one_error_line):
    assert main(["bench", "--model", str(micro_onnx), "--backends", "bogus", "--iterations", "1"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "unknown backend 'bogus'; choose one of: auto," in line and "onnxruntime" in line
