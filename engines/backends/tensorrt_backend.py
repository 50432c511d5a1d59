"""TensorRT backend: runs a serialized `.engine` that `polyp-rt build` made from an ONNX file.

torch (already a dependency) holds all device memory, the CUDA stream, the pinned
host buffers and the optional CUDA graph, so no pycuda or cuda-python is needed:
TensorRT gets raw pointers (`tensor.data_ptr()`) and the stream handle
(`stream.cuda_stream`). tensorrt and torch are imported when an engine is opened.
Before deserialising, the engine's sidecar (`NAME.engine.json`) is checked against
this GPU and TensorRT version; a mismatch is one ModelError sentence, not a crash.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from polyp_rt.core.errors import BackendUnavailable, ModelError
from polyp_rt.engines.base import Engine, OpenOptions, canonical_device
from polyp_rt.engines.contract import ModelContract, TensorSpec, check_io, model_file
from polyp_rt.engines.sidecar import read_sidecar, sidecar_mismatch

if TYPE_CHECKING:
    import tensorrt as trt
    import torch

log = logging.getLogger(__name__)

# the graph, then the context, before the engine and the runtime; then the buffers
_RELEASE_ORDER = ("_graph", "_context", "_engine", "_runtime", "_d_in", "_d_out", "_h_in", "_h_out")

TENSORRT_MISSING = (
    "TensorRT is not installed: pip install 'polyp-rt[tensorrt]' (needs an NVIDIA GPU and "
    "NVIDIA's package index) or run the .onnx with --backend onnxruntime"
)
NO_CUDA = (
    "no CUDA GPU is visible to torch here, and TensorRT needs one; "
    "run the .onnx with --backend onnxruntime instead"
)


def require_tensorrt() -> str:
    """TensorRT's version; BackendUnavailable saying how to get it when it is absent."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailable(TENSORRT_MISSING) from exc
    if not hasattr(tensorrt, "Runtime"):  # tensorrt-stubs alone leaves an empty namespace package
        raise BackendUnavailable(TENSORRT_MISSING)
    return str(tensorrt.__version__)


def require_cuda() -> None:
    """BackendUnavailable unless torch is installed and sees a CUDA GPU."""
    try:
        import torch
    except ImportError as exc:  # the TensorRT backend moves its buffers with torch
        raise BackendUnavailable('the TensorRT backend needs PyTorch: pip install "polyp-rt[train]"') from exc
    if not torch.cuda.is_available():
        raise BackendUnavailable(NO_CUDA)


def gpu_identity(device: torch.device | int | None = None) -> tuple[str, str]:
    """(GPU name, compute capability as '8.9') of `device` (default: the current one)."""
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    return torch.cuda.get_device_name(device), f"{major}.{minor}"


def _specs(engine: trt.ICudaEngine) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The engine's (inputs, outputs) as TensorSpecs (-1: a dynamic dimension)."""
    import tensorrt as trt

    inputs: list[TensorSpec] = []
    outputs: list[TensorSpec] = []
    for name in map(engine.get_tensor_name, range(engine.num_io_tensors)):
        dims = engine.get_tensor_shape(name)
        spec = TensorSpec(name, tuple(None if dims[i] < 0 else int(dims[i]) for i in range(len(dims))))
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(spec)
    return inputs, outputs


def _torch_dtype(dtype: trt.DataType, what: str) -> torch.dtype:
    import tensorrt as trt
    import torch

    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16}
    if dtype not in table:
        raise ModelError(f"{what} is {dtype}, not float32/float16; rebuild it with polyp-rt build")
    return table[dtype]


class TensorRTEngine(Engine):
    """A serialized TensorRT engine with its sidecar, on one CUDA GPU (buffers held by torch)."""

    name = "tensorrt"
    suffixes = (".engine", ".plan")
    cuda_graphs = True
    device_tensors = True

    @classmethod
    def read_contract(cls, path: Path) -> ModelContract:
        return ModelContract.from_dict(read_sidecar(model_file(path))["contract"], str(path))

    @classmethod
    def unavailable(cls, device: str) -> str | None:
        try:
            require_tensorrt()
            require_cuda()
        except BackendUnavailable as exc:
            return str(exc)
        if not device.startswith("cuda"):
            return f"--device {device}: TensorRT runs on a CUDA GPU; use cuda:N"
        return None

    @classmethod
    def default_device(cls) -> str:
        return "cuda:0"

    @classmethod
    def open(cls, path: Path, options: OpenOptions) -> TensorRTEngine:
        return cls(path, options.device, cuda_graph=options.cuda_graph, batch_size=options.batch_size)

    def __init__(
        self, path: str | Path, device: str, *, cuda_graph: bool = False, batch_size: int = 1
    ) -> None:
        version = require_tensorrt()
        require_cuda()
        import tensorrt as trt
        import torch

        path = model_file(path, "TensorRT engine")
        if not device.startswith("cuda"):
            raise BackendUnavailable(f"--device {device}: TensorRT runs on a CUDA GPU; use cuda:N")
        self.device = canonical_device(device)
        self._dev = torch.device(self.device)
        sidecar = read_sidecar(path)
        gpu, capability = gpu_identity(self._dev)
        mismatch = sidecar_mismatch(sidecar, version, gpu, capability, engine=str(path))
        if mismatch:
            raise ModelError(mismatch)
        self.contract = ModelContract.from_dict(sidecar["contract"], str(path))
        self.precision = str(sidecar["precision"])
        self.provider = f"TensorRT {trt.__version__}"
        self._in, self._out = self.contract.input_name, self.contract.output_name
        chw = (3, self.contract.height, self.contract.width)

        with torch.cuda.device(self._dev):
            self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise ModelError(
                    f"{path}: TensorRT could not deserialise it (see its log above); "
                    "rebuild it here with `polyp-rt build`"
                )
            self._engine = engine
            check_io(self.contract, *_specs(engine), str(path))
            low = high = int(engine.get_tensor_shape(self._in)[0])
            if low < 0:  # dynamic batch: the range of optimisation profile 0 (min, opt, max)
                profile = engine.get_tensor_profile_shape(self._in, 0)
                low, high = int(profile[0][0]), int(profile[2][0])
            if not low <= batch_size <= high:
                raise ModelError(
                    f"{path}: built for batch sizes {low}..{high}, not {batch_size}; "
                    "rebuild it with `polyp-rt build --max-batch N`"
                )
            self.batch_size, self.max_batch, self.batch_sizes = batch_size, high, (low, high)
            self._context = engine.create_execution_context()
            self._set_batch(high)
            dims = self._context.get_tensor_shape(self._out)
            out_shape = tuple(dims[i] for i in range(len(dims)))
            in_type, out_type = (
                _torch_dtype(engine.get_tensor_dtype(name), f"{path}: tensor {name!r}")
                for name in (self._in, self._out)
            )
            self.stream = torch.cuda.Stream(self._dev)
            self._d_in = torch.empty((high, *chw), dtype=in_type, device=self._dev)
            self._d_out = torch.empty(out_shape, dtype=out_type, device=self._dev)
            self._h_in = torch.empty((high, *chw), dtype=in_type).pin_memory()
            self._h_out = torch.empty(out_shape, dtype=out_type).pin_memory()
            self._context.set_tensor_address(self._in, self._d_in.data_ptr())
            self._context.set_tensor_address(self._out, self._d_out.data_ptr())
            self._graph: torch.cuda.CUDAGraph | None = None
            if cuda_graph:
                self._graph = self._capture(batch_size)

    def _set_batch(self, n: int) -> None:
        shape = (n, 3, self.contract.height, self.contract.width)
        if not self._context.set_input_shape(self._in, shape):
            raise ModelError(f"TensorRT refused input shape {shape} for {self._in!r}")
        self._n = n

    def _run(self, n: int) -> None:
        """Enqueue inference for the first `n` images of the device input on `self.stream`."""
        if self._graph is not None and n == self.batch_size:
            self._graph.replay()  # the caller made self.stream current
            return
        if n != self._n:
            self._set_batch(n)
        if not self._context.execute_async_v3(self.stream.cuda_stream):
            raise ModelError("TensorRT failed to run the engine (see its log above)")

    def _capture(self, n: int) -> torch.cuda.CUDAGraph | None:
        """Record one enqueue at batch `n` as a CUDA graph; None (and a warning) if it fails."""
        import torch

        try:
            with torch.cuda.stream(self.stream):
                self._run(n)  # TensorRT must run once after a shape change before capture
            self.stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                if not self._context.execute_async_v3(self.stream.cuda_stream):
                    raise RuntimeError("enqueue failed while capturing")
            return graph
        except Exception as exc:  # any capture failure means: run without a graph
            log.warning("CUDA graph capture of the TensorRT engine failed (%s); running without", exc)
            return None

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        n = batch.shape[0]
        self._h_in[:n].numpy()[...] = batch  # numpy casts to the engine's input type
        with torch.cuda.device(self._dev), torch.cuda.stream(self.stream):
            self._d_in[:n].copy_(self._h_in[:n], non_blocking=True)
            self._run(n)
            self._h_out[:n].copy_(self._d_out[:n], non_blocking=True)
        self.stream.synchronize()
        return self._h_out[:n].numpy().astype(np.float32)  # astype copies: the buffer is reused

    def _infer_device(self, x: torch.Tensor) -> torch.Tensor:
        """Float32 logits on the GPU for the CUDA batch `x`, ordered on the current stream."""
        import torch

        n = x.shape[0]
        caller = torch.cuda.current_stream(self._dev)
        self.stream.wait_stream(caller)  # x is written, and the last result has been copied out
        with torch.cuda.device(self._dev), torch.cuda.stream(self.stream):
            self._d_in[:n].copy_(x)
            self._run(n)
        caller.wait_stream(self.stream)
        return self._d_out[:n].to(torch.float32, copy=True)

    def _release(self) -> None:
        if hasattr(self, "stream"):
            self.stream.synchronize()
        for attr in _RELEASE_ORDER:
            self.__dict__.pop(attr, None)
