"""The TensorRT room: the engine sidecar, clear errors where TensorRT is missing, and,
where TensorRT and a CUDA GPU are present, a real engine checked against ONNX Runtime."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polyp_rt.core.errors import BackendUnavailable, ModelError
from polyp_rt.engines import open_engine
from polyp_rt.engines.backends.tensorrt_backend import NO_CUDA, TENSORRT_MISSING, TensorRTEngine
from polyp_rt.engines.contract import ModelContract
from polyp_rt.engines.sidecar import read_sidecar, sidecar_mismatch, sidecar_path, write_sidecar
from polyp_rt.export.config import BuildConfig
from polyp_rt.export.trt_build import build_engine

REPO = Path(__file__).resolve().parents[2]
SIZE = 64


def tensorrt_installed() -> bool:
    """True only for the real wheel: tensorrt-stubs alone makes `import tensorrt` succeed."""
    try:
        import tensorrt
    except ImportError:
        return False
    return hasattr(tensorrt, "Runtime")


def sidecar_for(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "tensorrt_version": "10.3.0",
        "gpu_name": "NVIDIA A100-SXM4-80GB",
        "compute_capability": "8.0",
        "precision": "fp16",
        "input_shape": [1, 3, SIZE, SIZE],
        "profile": {
            "min": [1, 3, SIZE, SIZE],
            "opt": [1, 3, SIZE, SIZE],
            "max": [4, 3, SIZE, SIZE],
        },
        "onnx_path": "model.onnx",
        "onnx_sha256": "0" * 64,
        "built_at": "2025-01-01T00:00:00+00:00",
        "contract": ModelContract(SIZE, SIZE).to_dict(),
    }
    data.update(changes)
    return data


# ----------------------------------------------------------------------------- the sidecar


def test_sidecar_round_trip(tmp_path: Path) -> None:
    engine = tmp_path / "model.engine"
    data = sidecar_for()
    written = write_sidecar(engine, data)
    assert written == sidecar_path(engine) == tmp_path / "model.engine.json"
    assert read_sidecar(engine) == json.loads(json.dumps(data))
    assert ModelContract.from_dict(read_sidecar(engine)["contract"]) == ModelContract(SIZE, SIZE)


def test_sidecar_matches_its_own_machine() -> None:
    assert sidecar_mismatch(sidecar_for(), "10.3.0", "NVIDIA A100-SXM4-80GB", "8.0") is None


@pytest.mark.parametrize(
    ("machine", "named"),
    [
        (("10.3.0", "NVIDIA A100-PCIE-40GB", "8.0"), "different GPU model"),
        (("10.3.0", "NVIDIA A100-SXM4-80GB", "8.6"), "different compute capability"),
        (("10.13.0.35", "NVIDIA A100-SXM4-80GB", "8.0"), "different TensorRT version"),
    ],
)
def test_sidecar_mismatch_names_what_differs(machine: tuple[str, str, str], named: str) -> None:
    version, gpu, capability = machine
    sentence = sidecar_mismatch(sidecar_for(), version, gpu, capability, engine="model.engine")
    assert sentence is not None
    assert sentence.startswith(
        "model.engine was built for NVIDIA A100-SXM4-80GB (sm_80) with TensorRT 10.3.0, "
        f"this machine has {gpu} (sm_{capability.replace('.', '')}) with TensorRT {version}"
    )
    assert named in sentence
    assert sentence.endswith("rebuild it here with `polyp-rt build --onnx model.onnx -o model.engine`")
    assert "\n" not in sentence


def test_sidecar_mismatch_names_every_difference() -> None:
    sentence = sidecar_mismatch(sidecar_for(), "10.13.0", "NVIDIA H100 80GB HBM3", "9.0")
    assert sentence is not None
    assert "different GPU model, compute capability and TensorRT version" in sentence
    assert "(sm_90)" in sentence


def test_read_sidecar_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model\.engine\.json is missing.*polyp-rt build"):
        read_sidecar(tmp_path / "model.engine")


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"gpu_name": "x"}', "\udcff"])
def test_read_sidecar_garbled(tmp_path: Path, text: str) -> None:
    engine = tmp_path / "model.engine"
    sidecar_path(engine).write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ModelError, match="polyp-rt build"):
        read_sidecar(engine)


# ------------------------------------------------------- where TensorRT or CUDA is missing


@pytest.mark.skipif(tensorrt_installed(), reason="TensorRT is installed here")
def test_build_engine_without_tensorrt(tmp_path: Path) -> None:
    # raised before the (missing) ONNX file is even looked at
    with pytest.raises(BackendUnavailable) as info:
        build_engine(BuildConfig(onnx=tmp_path / "missing.onnx", output=tmp_path / "model.engine"))
    assert str(info.value) == TENSORRT_MISSING
    assert "\n" not in str(info.value)


@pytest.mark.skipif(tensorrt_installed(), reason="TensorRT is installed here")
def test_engine_without_tensorrt(tmp_path: Path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    write_sidecar(engine, sidecar_for())
    with pytest.raises(BackendUnavailable) as info:
        TensorRTEngine(engine, "cuda:0")
    assert str(info.value) == TENSORRT_MISSING
    with pytest.raises(BackendUnavailable, match="TensorRT is not installed"):
        open_engine(engine)  # the factory picks the TensorRT backend for .engine


def test_no_cuda_is_reported_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With TensorRT importable but no GPU, both entry points stop with one line."""
    import torch

    if not tensorrt_installed():  # a stand-in module, only so the import check passes
        fake = types.ModuleType("tensorrt")
        fake.Runtime = object  # type: ignore[attr-defined]
        fake.__version__ = "10.0.0"  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendUnavailable) as info:
        build_engine(BuildConfig(onnx=tmp_path / "missing.onnx", output=tmp_path / "model.engine"))
    assert str(info.value) == NO_CUDA
    with pytest.raises(BackendUnavailable, match="no CUDA GPU"):
        TensorRTEngine(tmp_path / "model.engine", "cuda:0")


# ----------------------------------------------------------- the type check of this room


def test_type_check_catches_tensorrt_api_misuse(tmp_path: Path) -> None:
    """`make typecheck` runs mypy over engines/ and export/; this proves the stubs bite."""
    pytest.importorskip("mypy")
    try:
        importlib.metadata.distribution("tensorrt-stubs")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("tensorrt-stubs is not installed (pip install --no-deps tensorrt-stubs)")
    subprocess.run([sys.executable, "scripts/typings.py"], cwd=REPO, check=True, capture_output=True)
    misuse = tmp_path / "misuse.py"
    misuse.write_text(
        "import tensorrt as trt\n"
        "def run(context: trt.IExecutionContext, stream: int) -> None:\n"
        "    context.set_tensor_address('image', 'not a pointer')\n"
        "    context.execute_async_v4(stream)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", str(misuse)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'has no attribute "execute_async_v4"' in result.stdout
    assert 'incompatible type "str"; expected "int"' in result.stdout


# ------------------------------------------------------ a real engine (TensorRT + CUDA only)


@pytest.fixture(scope="module")
def gpu() -> None:
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    if not hasattr(trt, "Runtime"):
        pytest.skip("only tensorrt-stubs is installed, not TensorRT")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")


def export_tiny_unetpp(path: Path) -> ModelContract:
    """A small random-weight UNet++ as ONNX with a dynamic batch and the contract metadata."""
    import onnx
    import torch

    from polyp_rt.engines.models import create_model, model_config

    torch.manual_seed(0)
    config = model_config("cpu", size=SIZE)
    model = create_model(config).eval()
    contract = ModelContract(
        SIZE, SIZE, preset="cpu", encoder=config.encoder, decoder_channels=config.decoder_channels
    )
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, SIZE, SIZE),),
        str(path),
        input_names=[contract.input_name],
        output_names=[contract.output_name],
        dynamic_axes={contract.input_name: {0: "N"}, contract.output_name: {0: "N"}},
        opset_version=17,
        dynamo=False,
    )
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, contract.to_metadata())
    onnx.save(proto, str(path))
    return contract


def images(contract: ModelContract, n: int, seed: int) -> np.ndarray:
    from polyp_rt.engines.imaging import to_batch
    from polyp_rt.train.scenes import synth_image

    frames = [synth_image(seed + i, SIZE)[0] for i in range(n)]
    return to_batch(frames, contract)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    both = a.sum() + b.sum()
    return 1.0 if both == 0 else float(2 * np.logical_and(a, b).sum() / both)


def masks(logits: np.ndarray, threshold: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float64))) > threshold


@pytest.fixture(scope="module")
def tiny_model(gpu: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelContract]:
    path = tmp_path_factory.mktemp("tensorrt") / "tiny.onnx"
    return path, export_tiny_unetpp(path)


@pytest.fixture(scope="module", params=[True, False], ids=["fp16", "fp32"])
def built(
    request: pytest.FixtureRequest, tiny_model: tuple[Path, ModelContract]
) -> tuple[Path, dict[str, Any], list[tuple[str, float]]]:
    onnx_path, _ = tiny_model
    engine = onnx_path.with_name(f"tiny-{request.param_index}.engine")
    calls: list[tuple[str, float]] = []
    settings = BuildConfig(
        onnx=onnx_path,
        output=engine,
        fp16=request.param,
        workspace_gb=1.0,
        timing_cache=onnx_path.with_name("timing.cache"),
        max_batch=4,
    )
    sidecar = build_engine(settings, lambda phase, fraction: calls.append((phase, fraction)))
    return engine, sidecar, calls


def reference(onnx_path: Path, batch: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"image": batch})[0])


@pytest.mark.tensorrt
def test_build_writes_engine_sidecar_and_cache(
    built: tuple[Path, dict[str, Any], list[tuple[str, float]]],
    tiny_model: tuple[Path, ModelContract],
) -> None:
    import tensorrt as trt
    import torch

    engine, sidecar, calls = built
    onnx_path, contract = tiny_model
    assert engine.stat().st_size > 0
    assert read_sidecar(engine) == sidecar
    major, minor = torch.cuda.get_device_capability()
    assert sidecar["tensorrt_version"] == trt.__version__
    assert sidecar["compute_capability"] == f"{major}.{minor}"
    assert sidecar["gpu_name"] == torch.cuda.get_device_name()
    assert sidecar["profile"]["max"] == [4, 3, SIZE, SIZE]
    assert ModelContract.from_dict(sidecar["contract"]) == contract
    assert onnx_path.with_name("timing.cache").stat().st_size > 0
    fractions = [f for _, f in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.mark.tensorrt
@pytest.mark.parametrize("n", [1, 3])
def test_engine_masks_match_onnxruntime(
    built: tuple[Path, dict[str, Any], list[tuple[str, float]]],
    tiny_model: tuple[Path, ModelContract],
    n: int,
) -> None:
    engine_path, sidecar, _ = built
    onnx_path, contract = tiny_model
    batch = images(contract, n, seed=n)
    expected = reference(onnx_path, batch)
    with TensorRTEngine(engine_path, "cuda:0") as engine:
        assert engine.precision == sidecar["precision"]
        assert engine.provider.startswith("TensorRT 10")
        got = engine.infer(batch)
    assert got.dtype == np.float32 and got.shape == (n, 1, SIZE, SIZE)
    assert dice(masks(got, contract.threshold), masks(expected, contract.threshold)) >= 0.99
    if sidecar["precision"] == "fp32":  # TF32 may be on: loose, but far tighter than FP16
        np.testing.assert_allclose(got, expected, atol=1e-2 * float(np.abs(expected).max()))


@pytest.mark.tensorrt
def test_cuda_graph_and_device_path_agree(
    built: tuple[Path, dict[str, Any], list[tuple[str, float]]],
    tiny_model: tuple[Path, ModelContract],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import torch

    engine_path, _, _ = built
    onnx_path, contract = tiny_model
    batch = images(contract, 2, seed=7)
    expected = masks(reference(onnx_path, batch), contract.threshold)
    with TensorRTEngine(engine_path, "cuda:0", cuda_graph=True, batch_size=2) as engine:
        assert engine.input_shape == (2, 3, SIZE, SIZE)
        graphed = engine.infer(batch)  # the captured batch size replays the graph
        single = engine.infer(batch[:1])  # another batch size runs without it
        again = engine.infer(batch)
        device = engine.infer_device(torch.from_numpy(batch).cuda()).cpu().numpy()
    assert "CUDA graph capture" not in caplog.text  # it was captured, not skipped
    assert dice(masks(graphed, contract.threshold), expected) >= 0.99
    np.testing.assert_array_equal(graphed, again)
    assert dice(masks(single, contract.threshold), expected[:1]) >= 0.99
    np.testing.assert_array_equal(device, graphed)


@pytest.mark.tensorrt
def test_engine_for_another_gpu_is_refused_before_loading(gpu: None, tmp_path: Path) -> None:
    import tensorrt as trt
    import torch

    engine = tmp_path / "model.engine"
    engine.write_bytes(b"never deserialised")
    major, minor = torch.cuda.get_device_capability()
    write_sidecar(
        engine,
        sidecar_for(
            tensorrt_version=trt.__version__,
            gpu_name="NVIDIA Imaginary GPU",
            compute_capability=f"{major}.{minor}",
        ),
    )
    with pytest.raises(ModelError, match="was built for NVIDIA Imaginary GPU .*different GPU model"):
        TensorRTEngine(engine, "cuda:0")
