"""Bad models at the command line: each is one `error:` line naming the file and what to do,
exit 2, before any frame is read. (The engines room's own tests check the same refusals one
level down: tests/engines/test_backends.py, tests/engines/test_contract.py,
tests/engines/test_checkpoint.py, tests/engines/test_tensorrt.py, tests/train/test_training.py.)"""

from __future__ import annotations

import importlib.util
import os
import pickle
import shutil

import numpy as np
import onnx
import pytest

from polyp_rt.cli.main import main
from tests.conftest import write_checkpoint, write_micro_onnx


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


def contract_field(field, text, **options):
    """A micro model whose contract field `field` holds the raw metadata text `text`."""

    def make(model, tmp_path):
        return write_micro_onnx(tmp_path / f"{field}.onnx", fields={field: text}, **options)

    return make


def size_other_than_the_graph(model, tmp_path):
    """The contract says 96x96, the graph takes 64x64: ONNX Runtime used to fail on the first
    frame (exit 1), OpenVINO to reshape the model to 96x96 without a word."""
    return write_micro_onnx(tmp_path / "sized.onnx", 64, fields={"height": "96", "width": "96"})


def nan_onnx(model, tmp_path):
    """A model whose weights are all NaN: it used to run, exit 0, with empty masks."""
    return write_micro_onnx(tmp_path / "nan.onnx", weight=float("nan"))


class Shell:
    """Unpickling this would run a shell command (posix.system, a module torch blocks by name):
    it creates the file `ran`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def shell_in_older_format(model, tmp_path):
    """torch 2.14 reported this as 'neither torch's format nor a pickle'."""
    import torch

    path = tmp_path / "shell.pt"
    data = {"format": "polyp-rt-checkpoint/2", "payload": Shell(tmp_path / "ran")}
    torch.save(data, path, _use_new_zipfile_serialization=False)
    return path


def shell_in_plain_pickle(model, tmp_path):
    path = tmp_path / "shell.pkl.pt"
    path.write_bytes(pickle.dumps({"payload": Shell(tmp_path / "ran")}, protocol=4))
    return path


def plain_pickle(model, tmp_path):
    path = tmp_path / "dict.pt"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    return path


def nan_checkpoint(model, tmp_path):
    return write_checkpoint(tmp_path / "diverged.pt", nan=True)


def checkpoint_without_weights(model, tmp_path):
    return write_checkpoint(tmp_path / "hollow.pt", lambda data: data.pop("state_dict"))


def checkpoint_with_a_bad_threshold(model, tmp_path):
    return write_checkpoint(tmp_path / "threshold.pt", lambda data: data["contract"].update(threshold=2.0))


def checkpoint_naming_no_encoder(model, tmp_path):
    return write_checkpoint(tmp_path / "anonymous.pt", lambda data: data["contract"].update(encoder=""))


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
    "contract that is not JSON": (
        contract_field("mean", "[0.485, 0.456"),
        ["model contract field 'mean' is not JSON", "polyp-rt export"],
    ),
    "mean of two numbers": (
        contract_field("mean", "[0.5, 0.5]"),
        ["field 'mean' is [0.5, 0.5]", "three numbers, one per RGB channel"],
    ),
    "std of 0": (contract_field("std", "[0.2, 0.0, 0.2]"), ["field 'std'", "above 0 and at most 1"]),
    "threshold NaN": (
        contract_field("threshold", "NaN"),
        ["field 'threshold' is NaN", "strictly between 0 and 1"],
    ),
    "threshold above 1": (
        contract_field("threshold", "1.5"),
        ["field 'threshold' is 1.5", "between 0 and 1"],
    ),
    "absurd input size": (
        contract_field("height", "100000"),
        ["field 'height' is 100000", "a whole number of pixels from 8 to 4096"],
    ),
    "input size other than the graph's": (
        size_other_than_the_graph,
        ["its graph takes image[?,3,64,64] but its model contract says input size 96x96", "polyp-rt export"],
    ),
    "onnx whose logits are NaN": (
        nan_onnx,
        ["logits are not finite (NaN or infinity)", "weights are broken"],
    ),
    "shell command in torch's older format": (
        shell_in_older_format,
        [
            "refused to load: a file in torch's older format",
            "posix.system",
            "weights_only=True",
            "polyp-rt train",
        ],
    ),
    "shell command in a plain pickle": (
        shell_in_plain_pickle,
        ["refused to load: a plain Python pickle", "posix.system", "polyp-rt train"],
    ),
    "plain pickle of data": (
        plain_pickle,
        ["a plain Python pickle", "not written by torch.save", "polyp-rt train"],
    ),
    "checkpoint whose weights are NaN": (
        nan_checkpoint,
        ["weight tensors hold NaN or infinity", "segmentation_head.0.weight", "diverged"],
    ),
    "checkpoint without weights": (checkpoint_without_weights, ["without its weights", "polyp-rt train"]),
    "checkpoint with a threshold of 2": (
        checkpoint_with_a_bad_threshold,
        ["field 'threshold' is 2.0", "polyp-rt train"],
    ),
    "checkpoint naming no encoder": (checkpoint_naming_no_encoder, ["does not name its encoder"]),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_model_is_one_line_naming_the_file(micro_onnx, tmp_path, capsys, one_error_line, case):
    make, words = CASES[case]
    model = make(micro_onnx, tmp_path)
    args = ["--source", "synthetic:96x80@30", "--model", str(model), "--device", "cpu", "--headless"]
    code = main([*args, "--max-frames", "3"])  # a model that is not refused runs three frames, not forever
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(model) in line
    for word in words:
        assert word in line
    if case == "random bytes as a checkpoint":
        assert "Python code" not in line  # random bytes hold no objects: they are not a checkpoint
    if "pickle" in case or "shell" in case:
        assert "neither torch's format nor a pickle" not in line  # it is a pickle: say so
    assert not (tmp_path / "ran").exists()  # no code in a checkpoint ever runs


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_an_input_size_other_than_the_graphs_is_refused_by_each_backend(
    tmp_path, capsys, one_error_line, backend
):
    if backend == "openvino" and importlib.util.find_spec("openvino") is None:
        pytest.skip("openvino is not installed")
    model = size_other_than_the_graph(None, tmp_path)
    run = ["--source", "synthetic:96x80@30", "--model", str(model), "--backend", backend, "--headless"]
    assert main([*run, "--device", "cpu", "--max-frames", "3"]) == 2
    assert "input size 96x96 (fields 'height' and 'width')" in one_error_line(capsys.readouterr().err)


def test_a_last_pt_away_from_its_run_says_so_before_training(tiny_run, tmp_path, capsys, one_error_line):
    """It used to train to the end, then stop with 'copy/best.pt: model file not found'."""
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(tiny_run / "last.pt", copy / "last.pt")
    assert main(["train", "--resume", str(copy / "last.pt"), "--epochs", "3", "--workers", "0"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {copy / 'last.pt'}: a training checkpoint away from its run folder")
    assert "has no best.pt or split.json" in line and f"--init {copy / 'last.pt'}" in line
    assert sorted(p.name for p in copy.iterdir()) == ["last.pt"]  # nothing trained, nothing written


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
