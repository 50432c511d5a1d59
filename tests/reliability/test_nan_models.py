"""A model that outputs NaN used to pass for a working one: `run` exited 0 with empty masks, `eval`
gave plausible scores, `export` and `quantize` "verified" it (a NaN drops out of a Python max,
and two empty masks score Dice 1). Now a model that gives NaN on a plain frame is refused when
it is opened; one that gives NaN on some frames is counted (`nonfinite_frames` in the stats, one
warning); and the verifications fail on non-finite logits and on masks that are empty on both
sides."""

from __future__ import annotations

import json
import logging

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from polyp_rt.cli.main import main
from polyp_rt.engines.backends.torch_backend import TorchEngine
from polyp_rt.engines.contract import ModelContract, write_onnx_contract
from polyp_rt.realtime.cpu_stage import CpuStage
from polyp_rt.realtime.frame import Frame, now_ns
from polyp_rt.realtime.gpu_stage import TorchStage
from tests.conftest import write_checkpoint, write_micro_onnx

WARNING = "the model gave NaN or infinite logits"


def dark_is_nan_onnx(path):
    """logits = sqrt(mean over RGB of the normalised image): 0 on the probe's frame of the mean
    colour, NaN wherever a pixel is darker than that colour (every synthetic scene has some)."""
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["grey"], axes=[1], keepdims=1),
            helper.make_node("Sqrt", ["grey"], ["logits"]),
        ],
        "dark_is_nan",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1, 64, 64])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    write_onnx_contract(model, ModelContract(64, 64))
    onnx.save(model, str(path))
    return path


def test_a_run_counts_the_frames_with_nan_logits_and_warns_once(tmp_path, capsys):
    model, stats = dark_is_nan_onnx(tmp_path / "dark.onnx"), tmp_path / "stats.json"
    args = ["--source", "synthetic:96x80@30", "--model", str(model), "--device", "cpu", "--headless"]
    assert main([*args, "--max-frames", "12", "--stats-json", str(stats)]) == 0
    report = json.loads(stats.read_text())
    assert report["frames_processed"] >= 1
    assert report["nonfinite_frames"] == report["frames_processed"]  # every scene has dark pixels
    captured = capsys.readouterr()
    assert captured.err.count(WARNING) == 1
    assert f"NaN logits in {report['nonfinite_frames']} frames" in " ".join(
        (captured.out + captured.err).split()
    )


class DarkIsNaN(torch.nn.Module):
    """Logit +10 everywhere on an image brighter than the mean colour, NaN everywhere on a darker one."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = torch.full_like(x[:, :1], 10.0)
        return torch.where(x.mean(dim=(1, 2, 3), keepdim=True) < 0, float("nan"), bright)


@pytest.mark.parametrize("stage_class", [CpuStage, TorchStage])
def test_nan_frames_do_not_poison_smoothing_and_are_counted(stage_class, caplog):
    """With smoothing 0.3 a white frame after two NaN frames is still marked (0.3 x 0.09 + 0.7 x 1
    = 0.73 >= 0.5); before, the NaN stayed in the smoothed probability and every later mask was empty."""
    engine = TorchEngine(DarkIsNaN(), ModelContract(32, 32))
    stage = stage_class(engine, smoothing=0.3)
    white, black = np.full((40, 48, 3), 255, np.uint8), np.zeros((40, 48, 3), np.uint8)
    caplog.set_level(logging.WARNING, "polyp_rt")
    marked = []
    for i, rgb in enumerate([white, black, black, white]):
        frame = stage(Frame(i, i / 30, now_ns(), rgb))
        marked.append(float(frame.mask.mean()))
    assert marked == [1.0, 0.0, 0.0, 1.0]
    assert stage.nonfinite_frames == 2
    assert sum(WARNING in r.getMessage() for r in caplog.records) == 1


def test_eval_of_a_model_whose_logits_are_nan_is_one_line(synthetic_data, tmp_path, capsys, one_error_line):
    model = write_micro_onnx(tmp_path / "nan.onnx", weight=float("nan"))
    assert main(["eval", "--data", str(synthetic_data), "--model", str(model), "--device", "cpu"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"{model}: the model's logits are not finite" in line


def test_export_of_a_checkpoint_whose_weights_are_nan_is_refused(tmp_path, capsys, one_error_line):
    checkpoint, out = write_checkpoint(tmp_path / "diverged.pt", nan=True), tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "-o", str(out)]) == 2
    assert "weight tensors hold NaN or infinity" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"bias": -100.0}, "neither the FP32 nor the INT8 model marks a single pixel"),
        ({"weight": float("nan")}, "the model's logits are not finite"),
    ],
)
def test_quantize_refuses_a_model_that_predicts_nothing_or_nan(
    synthetic_data, tmp_path, capsys, one_error_line, options, words
):
    pytest.importorskip("onnxruntime.quantization")
    model, out = write_micro_onnx(tmp_path / "fp32.onnx", **options), tmp_path / "int8.onnx"
    assert main(["quantize", "--onnx", str(model), "-o", str(out), "--calibrate", str(synthetic_data)]) == 2
    assert words in one_error_line(capsys.readouterr().err)
    assert not out.exists() and not list(tmp_path.glob(".int8-*"))
