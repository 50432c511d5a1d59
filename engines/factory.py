"""`open_engine`: the one way to get an Engine from a model file."""

from __future__ import annotations

from pathlib import Path

from polyp_rt.engines.base import Engine
from polyp_rt.engines.errors import InputFileError, PolypRtError

BACKENDS = (
    "auto",
    "torch",
    "onnxruntime",
    "onnxruntime-cpu",
    "onnxruntime-cuda",
    "onnxruntime-tensorrt",
    "tensorrt",
)
SUFFIX_BACKEND = {
    ".pt": "torch",
    ".pth": "torch",
    ".onnx": "onnxruntime",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
}


def auto_backend(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIX_BACKEND:
        raise PolypRtError(
            f"{path}: unknown model type {suffix or '(no suffix)'!r}; "
            "pass a checkpoint (.pt), an ONNX file (.onnx) or a TensorRT engine (.engine/.plan)"
        )
    return SUFFIX_BACKEND[suffix]


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def default_device() -> str:
    return "cuda:0" if cuda_available() else "cpu"


def open_engine(
    path: str | Path,
    backend: str = "auto",
    device: str | None = None,
    *,
    fp16: bool = False,
    cuda_graph: bool = False,
    batch_size: int = 1,
) -> Engine:
    """Open `path` with `backend` ("auto" picks by suffix) on `device` (default: cuda:0 if present)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: model file not found")
    if backend not in BACKENDS:
        raise PolypRtError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    family = auto_backend(path)
    chosen = family if backend == "auto" else backend
    if chosen.split("-")[0] != family:
        raise PolypRtError(
            f"{path}: the {chosen} backend cannot run a {path.suffix} file; "
            f"it runs {', '.join(s for s, b in SUFFIX_BACKEND.items() if b == chosen.split('-')[0])} files "
            "(`polyp-rt export` makes .onnx from a checkpoint, `polyp-rt build` makes .engine from .onnx)"
        )
    device = device or default_device()
    if device.startswith("cuda") and not cuda_available():
        raise PolypRtError(f"--device {device}: no CUDA GPU is visible to torch here; use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise PolypRtError(f"--device {device!r}: use cpu, cuda or cuda:N")
    if device == "cuda":
        device = "cuda:0"

    if fp16 and family != "torch":
        raise PolypRtError(
            f"{path}: --fp16 is for the torch backend; a {path.suffix} file's precision is set when it "
            "is made (`polyp-rt export --fp16`, `polyp-rt build --fp16`)"
        )
    if cuda_graph and family == "onnxruntime":
        raise PolypRtError(f"{path}: --cuda-graph is for the torch and TensorRT backends, not ONNX Runtime")
    if family == "torch":
        from polyp_rt.engines.torch_backend import TorchEngine

        return TorchEngine.from_checkpoint(
            path, device, fp16=fp16, cuda_graph=cuda_graph, batch_size=batch_size
        )
    if family == "onnxruntime":
        from polyp_rt.engines.onnxruntime_backend import OnnxRuntimeEngine

        provider = chosen.removeprefix("onnxruntime").lstrip("-") or "best"
        return OnnxRuntimeEngine(path, device, provider=provider, batch_size=batch_size)
    from polyp_rt.engines.tensorrt_backend import TensorRTEngine

    return TensorRTEngine(path, device, cuda_graph=cuda_graph, batch_size=batch_size)
