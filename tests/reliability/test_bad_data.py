"""Bad data for train and eval at the command line: a missing mask, sizes that differ, an empty
folder, a mask that is not binary. Each stops with one line naming the file (exit 2), or with
--skip-bad is skipped and counted. (tests/train/test_data.py checks the same one level down.)"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from polyp_rt.cli.main import main

PAIRS = 8


@pytest.fixture
def dataset(tmp_path, make_pair):
    root = tmp_path / "data"
    for i in range(PAIRS):
        make_pair(root / "images", root / "masks", f"img{i}", seed=i)
    return root


def mask_missing(root):
    (root / "masks" / "img3.png").unlink()
    return "img3.png: image without a mask"


def sizes_differ(root):
    cv2.imwrite(str(root / "masks" / "img3.png"), np.zeros((10, 10), np.uint8))
    return "img3.png: mask is 10x10 but its image img3.png is 64x48"


def not_binary(root):
    cv2.imwrite(str(root / "masks" / "img3.png"), np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1)))
    return "img3.png: mask is not binary"


BREAKS = {"mask missing": mask_missing, "sizes differ": sizes_differ, "mask not binary": not_binary}


def evaluate(data, model, *extra):
    return main(
        ["eval", "--data", str(data), "--model", str(model), "--device", "cpu", "--split", "all", *extra]
    )


@pytest.mark.parametrize("fault", BREAKS)
def test_eval_stops_with_one_line_or_skips_and_counts(dataset, micro_onnx, capsys, one_error_line, fault):
    said = BREAKS[fault](dataset)
    assert evaluate(dataset, micro_onnx, "--json") == 2
    line = one_error_line(capsys.readouterr().err)
    assert said in line and "--skip-bad" in line

    assert evaluate(dataset, micro_onnx, "--json", "--skip-bad") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["skipped"] == 1 and result["images"] == PAIRS - 1


def test_eval_of_an_empty_folder_is_one_line(tmp_path, micro_onnx, capsys, one_error_line):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    assert evaluate(tmp_path, micro_onnx) == 2
    assert "no usable image/mask pairs found" in one_error_line(capsys.readouterr().err)
    assert evaluate(tmp_path / "images", micro_onnx) == 2  # no data layout at all
    assert "no images/ + masks/ (Kvasir-SEG)" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("fault", ["mask missing", "empty folder"])
def test_train_stops_before_training_with_one_line(dataset, tmp_path, capsys, one_error_line, fault):
    if fault == "empty folder":
        data = tmp_path / "empty"
        (data / "images").mkdir(parents=True)
        (data / "masks").mkdir()
        said = "no usable image/mask pairs found"
    else:
        data, said = dataset, BREAKS[fault](dataset)
    run = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(data),
        "--epochs",
        "1",
        "--size",
        "64",
        "--device",
        "cpu",
        "--out",
        str(run),
    ]
    assert main(args) == 2
    assert said in one_error_line(capsys.readouterr().err)
    assert not (run / "best.pt").exists()
