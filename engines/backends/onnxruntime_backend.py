"""ONNX Runtime backend: TensorRT EP, then CUDA EP, then CPU, as available (or as forced).

On the CPU, opened with two or more requests, it runs them side by side: `submit` hands each to
a worker thread that calls `session.run` (thread-safe; it releases the GIL), and the cores are
split between them (intra-op threads per request = threads / requests), as OpenVINO's streams do.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from polyp_rt.core.errors import BackendUnavailable, ModelError
from polyp_rt.engines.base import Engine, OpenOptions, Pending
from polyp_rt.engines.contract import (
    ModelContract,
    TensorSpec,
    check_io,
    contract_from_onnx,
    contract_from_session,
    model_file,
)

log = logging.getLogger(__name__)

PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


class OnnxRuntimeEngine(Engine):
    """An .onnx file in an ONNX Runtime session (TensorRT, CUDA or CPU execution provider)."""

    name = "onnxruntime"
    suffixes = (".onnx",)
    variants = tuple(PROVIDERS)

    @classmethod
    def read_contract(cls, path: Path) -> ModelContract:
        return contract_from_onnx(path)

    @classmethod
    def unavailable(cls, device: str) -> str | None:
        try:
            import onnxruntime
        except ImportError:
            return "onnxruntime is not installed: pip install onnxruntime (or onnxruntime-gpu)"
        if device.startswith("cuda") and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            return (
                f"--device {device}: this ONNX Runtime has no CUDA provider (pip install onnxruntime-gpu); "
                "use --device cpu"
            )
        return None

    @classmethod
    def default_device(cls) -> str:
        import onnxruntime

        return "cuda:0" if "CUDAExecutionProvider" in onnxruntime.get_available_providers() else "cpu"

    @classmethod
    def open(cls, path: Path, options: OpenOptions) -> OnnxRuntimeEngine:
        return cls(
            path,
            options.device,
            provider=options.variant or "best",
            batch_size=options.batch_size,
            threads=options.threads,
            requests=options.requests,
        )

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        *,
        provider: str = "best",
        batch_size: int = 1,
        threads: int | None = None,
        requests: int = 1,
        cache_dir: str | Path | None = None,
    ) -> None:
        import onnxruntime as ort

        path = model_file(path)
        self.device = device
        self.batch_size = batch_size

        gpu_index = int(device.split(":")[1]) if ":" in device else 0  # a settled device: cuda:N
        chosen = self._providers(ort.get_available_providers(), device, provider)
        cache = Path(cache_dir) if cache_dir else path.parent / ".ort-trt-cache"
        options = {
            "TensorrtExecutionProvider": {
                "device_id": gpu_index,
                "trt_fp16_enable": True,
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(cache),
            },
            "CUDAExecutionProvider": {"device_id": gpu_index},
            "CPUExecutionProvider": {},
        }
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.requests = requests if device == "cpu" else 1  # on a GPU one request at a time
        cores = threads or max(1, len(os.sched_getaffinity(0)))
        so.intra_op_num_threads = max(1, cores // self.requests)
        so.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), so, providers=[(p, options[p]) for p in chosen])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise ModelError(
                f"{path}: not a readable ONNX model ({str(exc).splitlines()[0][:160]}); is the file complete?"
            ) from exc
        self.contract = contract_from_session(self.session, path)
        self.provider = self.session.get_providers()[0]
        inputs = [_spec(t) for t in self.session.get_inputs()]
        check_io(self.contract, inputs, [_spec(t) for t in self.session.get_outputs()], str(path))
        fixed = inputs[0].shape[0]
        if fixed is not None and fixed != batch_size:
            raise ModelError(
                f"{path}: its graph takes batches of {fixed} only, not {batch_size}; "
                "export it with `polyp-rt export --dynamic-batch` for other batch sizes"
            )
        self.batch_sizes = (1, None) if fixed is None else (fixed, fixed)
        input_type = self.session.get_inputs()[0].type
        self._input_dtype = np.float16 if input_type == "tensor(float16)" else np.float32
        self.precision = self.contract.precision
        self._binding = self.session.io_binding() if self.provider != "CPUExecutionProvider" else None
        self._gpu_index = gpu_index
        self._workers: ThreadPoolExecutor | None = None  # runs the requests `submit` starts

    @staticmethod
    def _providers(available: list[str], device: str, provider: str) -> list[str]:
        if device == "cpu":
            if provider not in ("best", "cpu"):
                raise BackendUnavailable(f"onnxruntime-{provider} needs a CUDA device, not --device cpu")
            return ["CPUExecutionProvider"]
        if provider != "best":
            wanted = PROVIDERS[provider]
            if wanted not in available:
                raise BackendUnavailable(
                    f"ONNX Runtime here has no {wanted} (available: {', '.join(available)}); "
                    "pip install onnxruntime-gpu for CUDA and TensorRT"
                )
            return [wanted, "CPUExecutionProvider"] if wanted != "CPUExecutionProvider" else [wanted]
        chosen = [p for p in PROVIDERS.values() if p in available]
        if chosen == ["CPUExecutionProvider"]:
            log.warning(
                "ONNX Runtime has no CUDA provider here (pip install onnxruntime-gpu); running on CPU"
            )
        return chosen

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=self._input_dtype)
        if self._binding is None:
            (out,) = self.session.run([self.contract.output_name], {self.contract.input_name: x})
            return np.asarray(out, dtype=np.float32)
        self._binding.bind_cpu_input(self.contract.input_name, x)
        self._binding.bind_output(self.contract.output_name, "cuda", self._gpu_index)
        self.session.run_with_iobinding(self._binding)
        (out,) = self._binding.copy_outputs_to_cpu()
        return np.asarray(out, dtype=np.float32)

    def submit(self, batch: np.ndarray) -> Pending:
        if self.requests == 1:
            return Pending(self.infer(batch))
        if self._workers is None:
            self._workers = ThreadPoolExecutor(self.requests, thread_name_prefix="onnxruntime request")
        self._check_batch(tuple(batch.shape))
        x = np.ascontiguousarray(batch, dtype=self._input_dtype)
        feed = {self.contract.input_name: x}
        return _Running(self._workers.submit(self.session.run, [self.contract.output_name], feed))

    def _release(self) -> None:
        if self._workers is not None:
            self._workers.shutdown(wait=True)  # no request may still run when the session goes
            self._workers = None
        self.session = None  # type: ignore[assignment]
        self._binding = None


def _spec(tensor: Any) -> TensorSpec:
    """An onnxruntime NodeArg as a TensorSpec (a named or unknown dimension is dynamic)."""
    return TensorSpec(tensor.name, tuple(d if isinstance(d, int) else None for d in tensor.shape or []))


class _Running(Pending):
    """A request `submit` handed to a worker thread."""

    def __init__(self, future: Future[list[np.ndarray]]) -> None:
        self.future = future

    def wait(self) -> np.ndarray:
        (out,) = self.future.result()
        return np.asarray(out, dtype=np.float32)
