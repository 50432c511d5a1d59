"""Bad models at the command line: each is one `error:` line naming the file and what to do,
exit 2, before any frame is read. (The engines room's own tests check the same refusals one
level down: tests/engines/test_backends.py, tests/engines/test_tensorrt.py,
tests/train/test_training.py.)"""

from __future__ import annotations

import importlib.util

import numpy as np
import onnx
import pytest

from polyp_rt.cli.main import main


def truncated_onnx(model, tmp_path):
    path = tmp_path / "cut.onnx"
    path.write_bytes(model.read_bytes()[:200])
    return path


def renamed_input(model, tmp_path):
    proto = onnx.load(str(model))
    proto.graph.input[0].name = "input_1"
    for node in proto.graph.node:
        node.input[:] = ["input_1" if name == "image" else name for name in node.input]
    path = tmp_path / "renamed.onnx"
    onnx.save(proto, str(path))
    return path


def rank3_input(model, tmp_path):
    proto = onnx.load(str(model))
    flat = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("Identity", ["image"], ["logits"])],
            "flat",
            [onnx.helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, [1, 3, 64])],
            [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 3, 64])],
        ),
        opset_imports=[onnx.helper.make_opsetid("", 17)],
    )
    flat.ir_version = 9
    flat.metadata_props.extend(proto.metadata_props)
    path = tmp_path / "rank3.onnx"
    onnx.save(flat, str(path))
    return path


def without_contract(model, tmp_path):
    proto = onnx.load(str(model))
    del proto.metadata_props[:]
    path = tmp_path / "bare.onnx"
    onnx.save(proto, str(path))
    return path


def empty_onnx(model, tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    return path


def three_channel_logits(model, tmp_path):
    """A real model whose `logits` has 3 channels, not the contract's one (the same contract)."""
    proto = onnx.load(str(model))
    weights = next(t for t in proto.graph.initializer if t.name == "w")
    bias = next(t for t in proto.graph.initializer if t.name == "b")
    w = onnx.numpy_helper.to_array(weights)
    weights.CopyFrom(onnx.numpy_helper.from_array(np.concatenate([w, w, w]), "w"))
    bias.CopyFrom(onnx.numpy_helper.from_array(np.zeros(3, np.float32), "b"))
    proto.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 3
    path = tmp_path / "rgb_logits.onnx"
    onnx.save(proto, str(path))
    return path


def random_checkpoint_bytes(model, tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(np.random.default_rng(5).integers(0, 256, 3000, np.uint8).tobytes())
    return path


def not_our_checkpoint(model, tmp_path):
    import torch

    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    return path


def truncated_checkpoint(model, tmp_path):
    import torch

    path = tmp_path / "cut.pt"
    torch.save({"format": "polyp-rt-checkpoint/1", "weights": torch.zeros(4096)}, path)
    path.write_bytes(path.read_bytes()[:5000])
    return path


class Payload:
    """Unpickling this runs code: it creates the file `ran`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_with_code(model, tmp_path):
    import torch

    path = tmp_path / "evil.pt"
    torch.save({"format": "polyp-rt-checkpoint/1", "payload": Payload(tmp_path / "ran")}, path)
    return path


CASES = {  # name: (make the file, words the line must hold besides the file name)
    "truncated onnx": (truncated_onnx, ["not a readable ONNX model", "is the file complete?"]),
    "wrong input name": (renamed_input, ["expected one input 'image'", "polyp-rt export"]),
    "wrong input rank": (rank3_input, ["expected one input 'image'", "polyp-rt export"]),
    "onnx without contract": (without_contract, ["no polyp-rt model contract", "polyp-rt export"]),
    "empty onnx": (empty_onnx, ["the file is empty (0 bytes)", "polyp-rt export"]),
    "logits with 3 channels": (
        three_channel_logits,
        ["expected one output 'logits' [N,1,H,W]", "polyp-rt export"],
    ),
    "random bytes as a checkpoint": (
        random_checkpoint_bytes,
        ["not a torch checkpoint", "is it the right file, and complete?", "polyp-rt train"],
    ),
    "checkpoint not ours": (not_our_checkpoint, ["not a polyp-rt checkpoint", "polyp-rt train"]),
    "truncated checkpoint": (
        truncated_checkpoint,
        ["not a readable torch checkpoint", "is the file complete?"],
    ),
    "pickle with code": (pickle_with_code, ["refused to load", "weights_only=True", "polyp-rt train"]),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_model_is_one_line_naming_the_file(micro_onnx, tmp_path, capsys, one_error_line, case):
    make, words = CASES[case]
    model = make(micro_onnx, tmp_path)
    code = main(["--source", "synthetic:96x80@30", "--model", str(model), "--device", "cpu", "--headless"])
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(model) in line
    for word in words:
        assert word in line
    if case == "random bytes as a checkpoint":
        assert "Python objects" not in line  # random bytes hold no objects: they are not a checkpoint
    assert not (tmp_path / "ran").exists()  # no code in a checkpoint ever runs


@pytest.mark.parametrize("case", ["truncated onnx", "empty onnx", "random bytes as a checkpoint"])
def test_info_on_a_bad_model_is_one_line(micro_onnx, tmp_path, capsys, one_error_line, case):
    make, words = CASES[case]
    model = make(micro_onnx, tmp_path)
    assert main(["info", "--model", str(model)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(model) in line and words[0] in line


def tensorrt_and_gpu() -> bool:
    if importlib.util.find_spec("tensorrt") is None:
        return False
    import tensorrt
    import torch

    return hasattr(tensorrt, "Runtime") and torch.cuda.is_available()


def test_engine_built_for_another_gpu_is_one_line(tmp_path, capsys, one_error_line):
    from polyp_rt.engines.contract import ModelContract
    from polyp_rt.engines.sidecar import write_sidecar

    engine = tmp_path / "model.engine"
    engine.write_bytes(b"never deserialised")
    sidecar = {
        "tensorrt_version": "8.6.1",
        "gpu_name": "NVIDIA Imaginary GPU",
        "compute_capability": "7.5",
        "precision": "fp16",
        "input_shape": [1, 3, 64, 64],
        "profile": {"min": [1, 3, 64, 64], "opt": [1, 3, 64, 64], "max": [1, 3, 64, 64]},
        "onnx_path": "model.onnx",
        "onnx_sha256": "0" * 64,
        "built_at": "2025-01-01T00:00:00+00:00",
        "contract": ModelContract(64, 64).to_dict(),
    }
    write_sidecar(engine, sidecar)
    code = main(["--source", "synthetic:96x80@30", "--model", str(engine), "--headless"])
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    if tensorrt_and_gpu():  # the sidecar is checked before the engine is deserialised
        assert f"{engine} was built for NVIDIA Imaginary GPU (sm_75) with TensorRT 8.6.1" in line
        assert "rebuild it here with `polyp-rt build" in line
    else:  # without TensorRT the engine cannot be opened at all, and the line says what to do
        assert "TensorRT is not installed" in line and "--backend onnxruntime" in line
