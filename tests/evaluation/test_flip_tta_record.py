"""scripts/flip_tta_record.py: a clip's masks with or without flip TTA, as a record `eval --record`
scores. On the scripted clip, with a model that marks bright pixels, the plain record scores what
`eval --video` scores (the script's figures, worked out in tests/evaluation/test_scorer.py), and
the flips change nothing: the model looks at each pixel alone, so a flipped frame's mask flipped
back is the frame's own (a flip left undone would move the top-left squares to the top right)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from polyp_rt.cli.main import main
from polyp_rt.train.data import read_mask
from tests.scripts import SCRIPTS, load_script


def test_the_plain_record_is_the_pipelines_and_the_flips_are_undone(
    scripted_clip, brightness_onnx, tmp_path, capsys
):
    script = load_script("flip_tta_record")
    records = {}
    for tta in (False, True):
        out = tmp_path / ("tta" if tta else "plain")
        assert script.write_record(scripted_clip, out, brightness_onnx, "onnxruntime", 1, tta) == 100
        truth = str(scripted_clip.with_name("scripted_masks"))
        assert main(["eval", "--record", str(out), "--truth", truth, "--gates", "3:0", "--json"]) == 0
        records[tta] = json.loads(capsys.readouterr().out)["scores"]
    plain = records[False]["ungated"]
    # the script: A found after 3 frames, B after 4; six false alarms, one of 0.5 s or more
    assert [lesion["delay_frames"] for lesion in plain["per_lesion"]] == [3, 4]
    assert [a["count"] for a in plain["false_alarms"]] == [6, 1, 0, 0]
    assert [lesion["delay_frames"] for lesion in records[False]["gate 3:0"]["per_lesion"]] == [5, 6]
    for name in ("ungated", "gate 3:0"):
        for key in ("lesions_found", "per_lesion", "false_alarms", "frame_sensitivity", "frame_specificity"):
            assert records[True][name][key] == records[False][name][key], (name, key)
    for i in (20, 50, 90):
        a, b = (read_mask(tmp_path / kind / "masks" / f"{i:06d}.png") for kind in ("plain", "tta"))
        assert a.any() and np.mean(a != b) < 0.01


def test_a_clip_that_is_not_a_video_is_one_line(brightness_onnx, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 300)
    out = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "flip_tta_record.py"),
            str(bad),
            str(tmp_path / "out"),
            "--model",
            str(brightness_onnx),
            "--backend",
            "onnxruntime",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [
        f"error: {bad}: cannot read the clip (Invalid data found when processing input)"
    ]
