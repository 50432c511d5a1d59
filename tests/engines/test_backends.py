import numpy as np
import onnx
import pytest

from polyp_rt.core.errors import InputFileError, ModelError, PolypRtError
from polyp_rt.engines.base import OpenOptions
from polyp_rt.engines.imaging import mask_at, preprocess
from polyp_rt.engines.registry import open_engine
from polyp_rt.train.scenes import synth_image


def batch_of_scenes(contract, n=3):
    return np.stack([preprocess(synth_image(seed, 200)[0], contract) for seed in range(n)])


def test_torch_and_onnxruntime_give_the_same_masks(tiny_run, tiny_onnx):
    with (
        open_engine(tiny_run / "best.pt", device="cpu") as torch_engine,
        open_engine(tiny_onnx, "onnxruntime", device="cpu") as ort,
    ):
        assert (torch_engine.name, ort.name) == ("torch", "onnxruntime")
        assert ort.provider == "CPUExecutionProvider"
        assert torch_engine.input_shape == ort.input_shape == (1, 3, 64, 64)
        for x in batch_of_scenes(ort.contract):
            a, b = torch_engine.infer(x[None]), ort.infer(x[None])
            assert a.shape == b.shape == (1, 1, 64, 64) and a.dtype == b.dtype == np.float32
            assert np.abs(a - b).max() < 1e-4
            assert np.array_equal(mask_at(a[0], 200, 200, 0.5), mask_at(b[0], 200, 200, 0.5))


def test_factory_picks_backend_by_suffix_and_refuses_mismatches(tiny_run, tiny_onnx, tmp_path):
    with open_engine(tiny_onnx, backend="onnxruntime-cpu", device="cpu") as engine:
        assert engine.describe()["provider"] == "CPUExecutionProvider"
    with pytest.raises(PolypRtError, match="torch backend cannot run a .onnx file"):
        open_engine(tiny_onnx, backend="torch", device="cpu")
    with pytest.raises(PolypRtError, match="unknown backend"):
        open_engine(tiny_onnx, backend="tflite", device="cpu")
    with pytest.raises(InputFileError, match="model file not found"):
        open_engine(tmp_path / "none.onnx")
    odd = tmp_path / "model.h5"
    odd.write_bytes(b"x")
    with pytest.raises(PolypRtError, match="unknown model type"):
        open_engine(odd)


def test_cuda_request_without_gpu_is_one_clear_error(tiny_onnx):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(PolypRtError, match="no CUDA provider"):
        open_engine(tiny_onnx, device="cuda:0")


def test_torch_only_flags_on_an_onnx_model_are_refused_not_ignored(tiny_onnx):
    with pytest.raises(PolypRtError, match="--fp16 is for the torch backend"):
        open_engine(tiny_onnx, device="cpu", fp16=True)
    for backend in ("onnxruntime", "openvino"):
        with pytest.raises(
            PolypRtError, match=f"--cuda-graph is for the tensorrt and torch backends, not {backend}"
        ):
            open_engine(tiny_onnx, backend, device="cpu", cuda_graph=True)


def test_auto_picks_openvino_on_a_cpu_where_it_is_installed_else_onnxruntime(tiny_onnx, monkeypatch):
    from polyp_rt.engines.backends.openvino_backend import OpenVinoEngine
    from polyp_rt.engines.registry import choose

    expected = "openvino" if OpenVinoEngine.unavailable("cpu") is None else "onnxruntime"
    assert choose(tiny_onnx, "auto", "cpu")[0].name == expected
    with open_engine(tiny_onnx, device="cpu") as engine:
        assert engine.name == expected
    # on a GPU, OpenVINO (CPU only here) steps aside for ONNX Runtime
    assert choose(tiny_onnx, "auto", "cuda:0")[0].name == "onnxruntime"
    # without openvino installed, auto falls back to ONNX Runtime
    monkeypatch.setitem(__import__("sys").modules, "openvino", None)
    assert OpenVinoEngine.unavailable("cpu") is not None
    assert choose(tiny_onnx, "auto", "cpu")[0].name == "onnxruntime"


def test_truncated_onnx_is_refused(tiny_onnx, tmp_path):
    cut = tmp_path / "cut.onnx"
    data = tiny_onnx.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match=r"cut\.onnx: not a readable ONNX model"):
        open_engine(cut, device="cpu")


def test_onnx_with_wrong_input_name_or_rank_is_refused(tiny_onnx, tmp_path):
    proto = onnx.load(str(tiny_onnx))
    old = proto.graph.input[0].name
    proto.graph.input[0].name = "input_1"
    for node in proto.graph.node:
        node.input[:] = ["input_1" if i == old else i for i in node.input]
    renamed = tmp_path / "renamed.onnx"
    onnx.save(proto, str(renamed))
    with pytest.raises(ModelError, match="expected one input 'image'"):
        open_engine(renamed, device="cpu")

    flat = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("Identity", ["image"], ["logits"])],
            "flat",
            [onnx.helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, [1, 3, 64])],
            [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 3, 64])],
        )
    )
    flat.metadata_props.extend(proto.metadata_props)
    path = tmp_path / "rank3.onnx"
    onnx.save(flat, str(path))
    with pytest.raises(ModelError, match="expected one input 'image'"):
        open_engine(path, device="cpu")


def test_onnx_without_contract_says_to_export(tiny_onnx, tmp_path):
    proto = onnx.load(str(tiny_onnx))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(ModelError, match="no polyp-rt model contract.*polyp-rt export"):
        open_engine(bare, device="cpu")


def test_torch_backend_from_contract_has_the_same_architecture(tiny_run, tiny_onnx):
    from polyp_rt.engines.backends.torch_backend import TorchEngine

    with (
        open_engine(tiny_onnx, device="cpu") as ort,
        TorchEngine.from_contract(ort.contract, OpenOptions()) as random,
    ):
        assert "random weights" in random.provider
        assert random.infer(np.zeros(ort.input_shape, np.float32)).shape == (1, 1, 64, 64)


@pytest.mark.gpu
def test_torch_fp16_cuda_graph_agrees_with_fp32(tiny_run):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from polyp_rt.train.metrics import Counts

    with (
        open_engine(tiny_run / "best.pt", device="cuda:0") as fp32,
        open_engine(tiny_run / "best.pt", device="cuda:0", fp16=True, cuda_graph=True) as fp16,
    ):
        for x in batch_of_scenes(fp32.contract):
            a, b = fp32.infer(x[None]), fp16.infer(x[None])
            assert Counts.of(a > 0, b > 0).ratios()["dice"] >= 0.99
