"""The OpenVINO backend against ONNX Runtime on the same files (skips where openvino is absent)."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")

from polyp_rt.core.errors import BackendUnavailable, ModelError  # noqa: E402
from polyp_rt.engines.backends.onnxruntime_backend import OnnxRuntimeEngine  # noqa: E402
from polyp_rt.engines.backends.openvino_backend import OpenVinoEngine  # noqa: E402
from polyp_rt.engines.contract import contract_from_onnx  # noqa: E402
from polyp_rt.engines.imaging import mask_at, preprocess  # noqa: E402
from polyp_rt.train.synthetic import synth_image  # noqa: E402


def scenes(contract, n=3):
    return np.stack([preprocess(synth_image(seed, 200)[0], contract) for seed in range(n)])


def write_rgb_output_onnx(path: Path, size: int = 32) -> Path:
    """A contract-bearing ONNX file whose `logits` output has 3 channels (an RGB-to-RGB model)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from polyp_rt.engines.contract import ModelContract

    w = numpy_helper.from_array(np.zeros((3, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["logits"])],
        "rgb",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, size, size])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    helper.set_model_props(model, ModelContract(size, size).to_metadata())
    onnx.save(model, str(path))
    return path


def test_openvino_gives_onnxruntime_logits_on_a_real_unetpp(tiny_onnx):
    with OpenVinoEngine(tiny_onnx) as ov, OnnxRuntimeEngine(tiny_onnx, "cpu") as ort:
        assert (ov.name, ov.device, ov.precision) == ("openvino", "cpu", "fp32")
        assert ov.provider.startswith("OpenVINO ") and "CPU (latency hint, " in ov.provider
        assert ov.contract == ort.contract and ov.input_shape == (1, 3, 64, 64)
        for x in scenes(ov.contract):
            a, b = ov.infer(x[None]), ort.infer(x[None])
            assert a.shape == b.shape == (1, 1, 64, 64) and a.dtype == np.float32
            assert np.abs(a - b).max() < 1e-4
            assert np.array_equal(mask_at(a[0], 200, 200, 0.5), mask_at(b[0], 200, 200, 0.5))


def test_a_compiled_model_is_kept_and_gives_the_same_logits(tiny_onnx, tmp_path, monkeypatch):
    from polyp_rt.engines.backends.openvino_backend import CACHE_ENV

    x = scenes(contract_from_onnx(tiny_onnx), 1)
    monkeypatch.setenv(CACHE_ENV, "off")
    with OpenVinoEngine(tiny_onnx) as ov:
        assert ov.cache_dir is None
        uncached = ov.infer(x)
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    for _ in range(2):  # the first compiles and keeps the blob, the second loads it
        with OpenVinoEngine(tiny_onnx) as ov:
            assert ov.cache_dir == cache
            assert np.array_equal(ov.infer(x), uncached)
        blobs = sorted(p.name for p in cache.iterdir() if p.suffix == ".blob")
        assert len(blobs) == 1
    with OpenVinoEngine(tiny_onnx, batch_size=2) as ov:  # another input shape: a blob of its own
        assert np.abs(ov.infer(np.concatenate([x, x]))[1] - uncached[0]).max() < 1e-4
    assert len([p for p in cache.iterdir() if p.suffix == ".blob"]) == 2


def test_a_cut_short_cached_model_is_compiled_again(tiny_onnx, tmp_path, monkeypatch):
    """A blob cut short (a full disk, a killed process) is not trusted: OpenVINO compiles again."""
    from polyp_rt.engines.backends.openvino_backend import CACHE_ENV

    x = scenes(contract_from_onnx(tiny_onnx), 1)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with OpenVinoEngine(tiny_onnx) as ov:
        first = ov.infer(x)
    (blob,) = tmp_path.glob("*.blob")
    whole = blob.stat().st_size
    blob.chmod(0o600)
    blob.write_bytes(blob.read_bytes()[: whole // 3])
    with OpenVinoEngine(tiny_onnx) as ov:
        assert np.array_equal(ov.infer(x), first)
    assert blob.stat().st_size > whole // 2, "compiled and kept whole again"


def test_a_cache_folder_that_cannot_be_made_means_compiling_each_time(tiny_onnx, tmp_path, monkeypatch):
    from polyp_rt.engines.backends.openvino_backend import CACHE_ENV

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    with OpenVinoEngine(tiny_onnx) as ov:
        assert ov.cache_dir is None
        assert ov.infer(scenes(ov.contract, 1)).shape == (1, 1, 64, 64)
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with OpenVinoEngine(tiny_onnx) as ov:
        assert ov.cache_dir == tmp_path / "xdg" / "polyp-rt" / "openvino"


def test_a_batch_and_a_thread_count_are_honoured(tiny_onnx):
    x = scenes(contract_from_onnx(tiny_onnx), 2)
    with OpenVinoEngine(tiny_onnx, batch_size=2, threads=1) as ov, OnnxRuntimeEngine(tiny_onnx, "cpu") as ort:
        assert ov.input_shape == (2, 3, 64, 64)
        assert ov.provider.endswith("(latency hint, 1 thread)")
        got = ov.infer(x)
        for i in range(2):
            assert np.abs(got[i] - ort.infer(x[i : i + 1])[0]).max() < 1e-4


def test_a_three_channel_output_is_refused_in_one_line(tmp_path):
    path = write_rgb_output_onnx(tmp_path / "rgb.onnx")
    import onnxruntime

    onnxruntime.InferenceSession(str(path))  # a valid ONNX model ...
    with pytest.raises(ModelError, match=r"expected one output 'logits' \[N,1,H,W\]") as info:
        OpenVinoEngine(path)  # ... but not a one-logit-per-pixel segmentation model
    assert "\n" not in str(info.value) and "[1,3,32,32]" in str(info.value)


def test_a_gpu_device_is_refused_in_one_line(micro_onnx):
    with pytest.raises(BackendUnavailable, match="runs on the CPU only, not --device cuda:0") as info:
        OpenVinoEngine(micro_onnx, "cuda:0")
    assert "\n" not in str(info.value)
    assert OpenVinoEngine.unavailable("cuda:0") == str(info.value)
    assert OpenVinoEngine.unavailable("cpu") is None


def test_a_file_without_the_contract_is_refused(tmp_path):
    import onnx

    bare = onnx.load(str(write_rgb_output_onnx(tmp_path / "rgb.onnx")))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(ModelError, match="no polyp-rt model contract"):
        OpenVinoEngine(tmp_path / "bare.onnx")
