import json
import sys

import onnx
import pytest

from polyp_rt.cli.main import main
from polyp_rt.core.errors import PolypRtError
from polyp_rt.engines.checkpoint import sha256_file
from polyp_rt.engines.contract import ModelContract
from polyp_rt.export.config import ExportConfig
from polyp_rt.export.onnx_export import export_onnx


def test_onnx_carries_the_contract(tiny_onnx, tiny_run):
    proto = onnx.load(str(tiny_onnx))
    contract = ModelContract.from_metadata({p.key: p.value for p in proto.metadata_props}, "x")
    assert (contract.input_name, contract.output_name, contract.size) == ("image", "logits", (64, 64))
    assert contract.encoder == "mobilenet_v2" and contract.preset == "cpu"
    assert contract.checkpoint_sha256 == sha256_file(tiny_run / "best.pt")
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["logits"]


def test_an_exported_model_names_no_file_of_the_machine_that_made_it(tiny_onnx):
    # the torch exporter notes each node's Python stack trace, which names this checkout's files
    data = tiny_onnx.read_bytes()
    assert b'File "' not in data and sys.prefix.encode() not in data
    proto = onnx.load(str(tiny_onnx))
    assert all(len(node.metadata_props) == 0 for node in proto.graph.node)


def test_export_then_eval_gives_the_checkpoints_dice(tiny_onnx, tiny_run, synthetic_data, capsys):
    scores = {}
    for model in (tiny_run / "best.pt", tiny_onnx):
        split = ["--split-file", str(tiny_run / "split.json")]
        assert main(["eval", "--data", str(synthetic_data), "--model", str(model), "--json", *split]) == 0
        scores[model.suffix] = json.loads(capsys.readouterr().out)
    assert scores[".onnx"]["dice"] == pytest.approx(scores[".pt"]["dice"], abs=1e-3)
    assert scores[".onnx"]["backend"]["backend"] in ("openvino", "onnxruntime")  # auto: the fastest here


def test_dynamic_batch_and_fp16_exports_verify(tiny_run, tmp_path):
    report = export_onnx(
        ExportConfig(checkpoint=tiny_run / "best.pt", output=tmp_path / "dyn.onnx", dynamic_batch=True)
    )
    assert report.max_abs_diff <= 1e-4 and report.dynamic_batch
    dims = onnx.load(str(tmp_path / "dyn.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 64, 64]
    half = export_onnx(
        ExportConfig(checkpoint=tiny_run / "best.pt", output=tmp_path / "half.onnx", fp16=True)
    )
    assert half.precision == "fp16" and half.mask_dice >= 0.999
    elem = onnx.load(str(tmp_path / "half.onnx")).graph.input[0].type.tensor_type.elem_type
    assert elem == onnx.TensorProto.FLOAT16


def test_build_without_tensorrt_is_one_line(tiny_onnx, tmp_path, capsys):
    from polyp_rt.core.errors import BackendUnavailable
    from polyp_rt.engines.backends.tensorrt_backend import require_tensorrt

    try:
        require_tensorrt()
        pytest.skip("TensorRT is installed here; the GPU build is tested in tests/engines/test_tensorrt.py")
    except BackendUnavailable:
        pass
    assert main(["build", "--onnx", str(tiny_onnx), "-o", str(tmp_path / "m.engine")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("error: TensorRT is not installed")
    assert not (tmp_path / "m.engine").exists()


def test_simplify_without_a_simplifier_says_what_to_install(tiny_run, tmp_path):
    import importlib.util

    if importlib.util.find_spec("onnxslim") or importlib.util.find_spec("onnxsim"):
        pytest.skip("a simplifier is installed")
    with pytest.raises(PolypRtError, match=r"pip install 'polyp-rt\[simplify\]'"):
        export_onnx(ExportConfig(checkpoint=tiny_run / "best.pt", output=tmp_path / "s.onnx", simplify=True))


def test_verification_fails_when_onnx_and_torch_disagree(tiny_onnx, tiny_run):
    """verify() is the check export runs; here the torch side has slightly different weights."""
    import torch

    from polyp_rt.core.errors import ModelError
    from polyp_rt.engines.checkpoint import load_checkpoint
    from polyp_rt.export.onnx_export import verify

    checkpoint = load_checkpoint(tiny_run / "best.pt")
    model = checkpoint.build_model().eval()
    diff, dice = verify(model, tiny_onnx, checkpoint.contract, fp16=False, batch=1)
    assert diff < 1e-3 and dice == 1.0
    with torch.no_grad():
        model.segmentation_head[0].bias += 0.01  # every logit moves by 0.01
    with pytest.raises(ModelError, match="verification failed, ONNX Runtime differs from torch by 1.0"):
        verify(model, tiny_onnx, checkpoint.contract, fp16=False, batch=1)


# ------------------------------------------------------------------ NaN and empty masks


def micro_pair(tmp_path, name="m", **options):
    """The suite's one-convolution model twice: as torch (the "checkpoint") and as ONNX, same weights."""
    import numpy as np
    import torch

    from polyp_rt.engines.contract import contract_from_onnx
    from tests.conftest import write_micro_onnx

    path = write_micro_onnx(tmp_path / f"{name}.onnx", **options)
    weights = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    conv = torch.nn.Conv2d(3, 1, 3, padding=1).eval()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.array(weights["w"])))
        conv.bias.copy_(torch.from_numpy(np.array(weights["b"])))
    return conv, path, contract_from_onnx(path)


def test_verification_passes_a_faithful_export_and_reports_its_dice(tmp_path):
    from polyp_rt.export.onnx_export import verify

    conv, path, contract = micro_pair(tmp_path)
    diff, dice = verify(conv, path, contract, fp16=False, batch=1)
    assert diff < 1e-5 and dice == 1.0


def test_verification_fails_on_nan_logits_on_either_side(tmp_path):
    """Before, a NaN dropped out of the Python max (max(0.0, nan) is 0.0) and both masks were
    empty (Dice 1): an all-NaN model was "verified" with max difference 0."""
    import torch

    from polyp_rt.core.errors import ModelError
    from polyp_rt.export.onnx_export import verify

    conv, path, contract = micro_pair(tmp_path)
    _, nan_path, _ = micro_pair(tmp_path, "nan", weight=float("nan"))
    with pytest.raises(
        ModelError, match="ONNX Runtime gives NaN or infinite logits on the random input where"
    ):
        verify(conv, nan_path, contract, fp16=False, batch=1)
    with torch.no_grad():
        conv.bias.fill_(float("nan"))
    for onnx_path in (path, nan_path):
        with pytest.raises(ModelError, match="torch's own logits for the checkpoint are NaN or infinite"):
            verify(conv, onnx_path, contract, fp16=False, batch=1)


def test_the_fp16_gate_fails_when_neither_side_marks_a_pixel(tmp_path):
    from polyp_rt.core.errors import ModelError
    from polyp_rt.export.onnx_export import verify

    conv, path, contract = micro_pair(tmp_path, bias=-100.0)  # every pixel background, on both sides
    assert verify(conv, path, contract, fp16=False, batch=1)[1] is None  # FP32: the logits agree; no Dice
    with pytest.raises(ModelError, match="neither torch FP32 nor the FP16 file marks a single pixel"):
        verify(conv, path, contract, fp16=True, batch=1)


def test_export_of_a_checkpoint_whose_weights_are_nan_writes_nothing(tmp_path):
    from polyp_rt.core.errors import ModelError
    from tests.conftest import write_checkpoint

    with pytest.raises(ModelError, match="weight tensors hold NaN or infinity"):
        export_onnx(
            ExportConfig(
                checkpoint=write_checkpoint(tmp_path / "diverged.pt", nan=True), output=tmp_path / "m.onnx"
            )
        )
    assert not (tmp_path / "m.onnx").exists()
