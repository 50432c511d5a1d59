"""The model contract is read from untrusted files: one reader checks every field, `check_io`
compares it with the graph each backend loaded, and `open_engine` probes the model once.
Real ONNX files built here with onnx.helper, opened in real ONNX Runtime and OpenVINO sessions."""

from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import onnx
import pytest

from polyp_rt.core.errors import InputFileError, ModelError, PolypRtError
from polyp_rt.engines.backends.onnxruntime_backend import OnnxRuntimeEngine
from polyp_rt.engines.base import canonical_device
from polyp_rt.engines.contract import (
    METADATA_PREFIX,
    ModelContract,
    TensorSpec,
    check_io,
    contract_from_onnx,
    model_file,
)
from polyp_rt.engines.registry import open_engine, read_contract
from tests.conftest import write_micro_onnx

OPENVINO = importlib.util.find_spec("openvino") is not None


# ------------------------------------------------------------------ every field, checked once


BAD_FIELDS = {  # case: (field, its raw metadata text, words the one line must hold)
    "metadata that is not JSON": ("mean", "[0.485, 0.456", "is not JSON"),
    "mean of two numbers": ("mean", "[0.5, 0.5]", "three numbers, one per RGB channel"),
    "mean on the 0-255 scale": ("mean", "[123.7, 116.3, 103.5]", "from 0 to 1"),
    "std of 0": ("std", "[0.229, 0.0, 0.225]", "above 0 and at most 1"),
    "std that is NaN": ("std", "[NaN, 0.2, 0.2]", "above 0 and at most 1"),
    "threshold NaN": ("threshold", "NaN", "a probability strictly between 0 and 1"),
    "threshold 1.5": ("threshold", "1.5", "a probability strictly between 0 and 1"),
    "threshold 0": ("threshold", "0", "a probability strictly between 0 and 1"),
    "threshold a string": ("threshold", '"0.5"', "a probability strictly between 0 and 1"),
    "absurd input size": ("height", "100000", "a whole number of pixels from 8 to 4096"),
    "negative input size": ("width", "-64", "a whole number of pixels from 8 to 4096"),
    "fractional input size": ("width", "64.5", "a whole number of pixels from 8 to 4096"),
    "BGR": ("color", '"BGR"', "one of 'RGB'"),
    "unknown precision": ("precision", '"int4"', "one of 'fp32', 'fp16', 'int8'"),
    "empty input name": ("input_name", '""', "a non-empty string"),
    "decoder widths of 0": ("decoder_channels", "[64, 0]", "a list of whole numbers above 0"),
}


@pytest.mark.parametrize("case", BAD_FIELDS)
def test_a_bad_contract_field_is_one_line_naming_it(tmp_path, case):
    field, text, words = BAD_FIELDS[case]
    path = write_micro_onnx(tmp_path / "bad.onnx", fields={field: text})
    with pytest.raises(ModelError) as info:
        contract_from_onnx(path)
    line = str(info.value)
    assert "\n" not in line and line.startswith(f"{path}: its model contract field '{field}' ")
    assert words in line and "polyp-rt export" in line
    for backend in ("onnxruntime", "openvino") if OPENVINO else ("onnxruntime",):  # the same reader
        with pytest.raises(ModelError, match=f"field '{field}'"):
            open_engine(path, backend, device="cpu")


def test_the_reader_checks_checkpoint_and_sidecar_dicts_too():
    good = ModelContract(64, 64).to_dict()
    assert ModelContract.from_dict(good, "x.pt") == ModelContract(64, 64)
    with pytest.raises(
        ModelError, match=r"x\.pt: its model contract field 'threshold' is NaN; .*polyp-rt train"
    ):
        ModelContract.from_dict({**good, "threshold": float("nan")}, "x.pt")
    with pytest.raises(ModelError, match=r"m\.engine: .*lacks the field 'width'.*polyp-rt build"):
        ModelContract.from_dict({"height": 64}, "m.engine")
    with pytest.raises(ModelError, match="not a JSON object"):
        ModelContract.from_dict([64, 64], "x.pt")
    assert ModelContract.from_dict({**good, "added_later": 1}, "x.pt") == ModelContract(64, 64)  # ignored


def test_the_one_writer_round_trips_every_field(tmp_path):
    contract = ModelContract(
        96, 128, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), threshold=0.4, precision="fp16"
    )
    path = write_micro_onnx(tmp_path / "m.onnx", contract=contract, graph_side="S")
    assert contract_from_onnx(path) == contract
    proto = onnx.load(str(path))
    assert proto.producer_name == "polyp-rt"
    assert {p.key for p in proto.metadata_props} == {METADATA_PREFIX + k for k in contract.to_dict()}
    assert json.loads(next(p.value for p in proto.metadata_props if p.key.endswith(".threshold"))) == 0.4


# ------------------------------------------------------------------ the graph against the contract


def backends():
    return ["onnxruntime", "openvino"] if OPENVINO else ["onnxruntime"]


@pytest.mark.parametrize("backend", backends())
def test_an_input_size_that_disagrees_with_the_graph_is_refused_at_open(tmp_path, backend):
    """Before: ONNX Runtime opened it and failed on the first frame; OpenVINO reshaped the model
    to the contract's size without a word and ran it."""
    path = write_micro_onnx(tmp_path / "m.onnx", contract=ModelContract(96, 96), graph_side=64)
    with pytest.raises(ModelError) as info:
        open_engine(path, backend, device="cpu")
    assert str(info.value) == (
        f"{path}: its graph takes image[?,3,64,64] but its model contract says input size 96x96 "
        "(fields 'height' and 'width'); re-export the model with `polyp-rt export`"
    )


@pytest.mark.parametrize("backend", backends())
def test_a_graph_of_any_size_runs_at_the_contracts_size(tmp_path, backend):
    path = write_micro_onnx(tmp_path / "m.onnx", contract=ModelContract(96, 64), graph_side="S")
    with open_engine(path, backend, device="cpu") as engine:
        assert engine.input_shape == (1, 3, 96, 64)
        assert engine.infer(np.zeros((1, 3, 96, 64), np.float32)).shape == (1, 1, 96, 64)


def test_check_io_names_what_differs():
    c = ModelContract(64, 64)
    good_in, good_out = TensorSpec("image", (None, 3, 64, 64)), TensorSpec("logits", (None, 1, 64, 64))
    check_io(c, [good_in], [TensorSpec("aux", (1,)), good_out], "m")  # other outputs may be there
    for inputs, outputs, words in [
        ([], [good_out], "expected one input 'image' [N,3,64,64], found none"),
        ([good_in, good_in], [good_out], "expected one input"),
        ([TensorSpec("input_1", (1, 3, 64, 64))], [good_out], "found input_1[1,3,64,64]"),
        ([TensorSpec("image", (1, 1, 64, 64))], [good_out], "expected one input"),
        ([TensorSpec("image", (1, 3, 64))], [good_out], "expected one input"),
        ([TensorSpec("image", (1, 3, 64, 32))], [good_out], "graph takes image[1,3,64,32]"),
        ([good_in], [TensorSpec("logits", (1, 3, 64, 64))], "found logits[1,3,64,64]"),
        ([good_in], [TensorSpec("mask", (1, 1, 64, 64))], "expected one output 'logits' [N,1,H,W]"),
    ]:
        with pytest.raises(ModelError, match=words.replace("[", r"\[")):
            check_io(c, inputs, outputs, "m")


# ------------------------------------------------------------------ the batch, checked in the base


@pytest.mark.parametrize("backend", backends())
def test_a_batch_that_does_not_fit_is_one_line_from_the_base(tmp_path, backend):
    path = write_micro_onnx(tmp_path / "m.onnx", batch=1)
    with open_engine(path, backend, device="cpu") as engine:
        assert engine.batch_sizes == (1, 1)
        for shape in [(1, 3, 32, 32), (2, 3, 64, 64), (3, 64, 64), (1, 4, 64, 64)]:
            with pytest.raises(ModelError) as info:
                engine.infer(np.zeros(shape, np.float32))
            assert str(info.value) == (
                f"a batch of shape {list(shape)} does not fit this {backend} engine: "
                "it takes [N,3,64,64] with N = 1"
            )
        with pytest.raises(ModelError, match="takes a float batch, not uint8"):
            engine.infer(np.zeros((1, 3, 64, 64), np.uint8))


def test_a_fixed_batch_other_than_the_one_asked_for_is_refused(tmp_path):
    path = write_micro_onnx(tmp_path / "m.onnx", batch=2)
    with pytest.raises(
        ModelError, match=r"takes batches of 2 only, not 1; export it with `polyp-rt export --dynamic-batch`"
    ):
        OnnxRuntimeEngine(path, "cpu")
    with OnnxRuntimeEngine(path, "cpu", batch_size=2) as engine:
        assert engine.infer(np.zeros((2, 3, 64, 64), np.float32)).shape == (2, 1, 64, 64)


# ------------------------------------------------------------------ the probe at open


@pytest.mark.parametrize("backend", backends())
def test_a_model_whose_logits_are_nan_is_refused_when_opened(tmp_path, backend):
    path = write_micro_onnx(tmp_path / "nan.onnx", weight=float("nan"))
    with OnnxRuntimeEngine(path, "cpu") as raw:  # what the run got before: a model that opens
        assert np.isnan(raw.infer(np.zeros((1, 3, 64, 64), np.float32))).all()
    with pytest.raises(ModelError) as info:
        open_engine(path, backend, device="cpu")
    line = str(info.value)
    assert line.startswith(
        f"{path}: the model's logits are not finite (NaN or infinity) even on a plain frame"
    )
    assert "its weights are broken" in line and "\n" not in line


# ------------------------------------------------------------------ files and devices, one place each


def test_model_files_are_checked_in_one_place(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "run").mkdir()
    cases = {
        tmp_path / "none.onnx": "model file not found",
        tmp_path / "empty.onnx": "the file is empty (0 bytes)",
        tmp_path / "run": "a folder, not a model file",
    }
    for path, words in cases.items():
        for reader in (model_file, read_contract, open_engine):
            with pytest.raises(InputFileError, match=re.escape(words)) as info:
                reader(path)
            assert str(info.value).startswith(f"{path}: ")


def test_cuda_means_cuda_0_in_one_place():
    assert [canonical_device(d) for d in ("cpu", "cuda", "cuda:1")] == ["cpu", "cuda:0", "cuda:1"]
    for bad in ("gpu", "cuda:", "cuda:x", "CPU"):
        with pytest.raises(PolypRtError, match="use cpu, cuda or cuda:N"):
            canonical_device(bad)
