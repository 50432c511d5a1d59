"""OpenVINO backend: the project's ONNX file compiled for the CPU with the latency hint, or, opened
with two or more requests, the throughput hint (that many requests in flight, `submit`).

OpenVINO reads the .onnx directly (FP32, FP16 or the INT8 QDQ file of `polyp_rt.export.int8`;
it runs the quantised convolutions in INT8). The graph is compiled with a static input shape
[batch_size,3,H,W] and, for an FP32 file, FP32 arithmetic: left alone, the CPU plugin picks
bfloat16 on CPUs that have it, and the logits would then no longer be the file's.

Compiled models are kept between runs (`compile_cache`): compiling the bundled INT8 model takes
about 0.8 s on two cores, loading it from the cache about 0.2 s, and the logits are the same
bit for bit. OpenVINO keys each cached blob by the model's graph and weights, the settings and
its own version, so a changed model or setting compiles anew.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from polyp_rt.core.errors import BackendUnavailable, ModelError, PolypRtError
from polyp_rt.engines.base import Engine, OpenOptions, Pending
from polyp_rt.engines.contract import ModelContract, TensorSpec, check_io, contract_from_onnx

INSTALL = 'pip install "polyp-rt[openvino]"'
CACHE_ENV = "POLYP_RT_OPENVINO_CACHE"  # a folder for the compiled models, or "off"

log = logging.getLogger(__name__)


def compile_cache() -> Path | None:
    """The folder OpenVINO keeps compiled models in: $POLYP_RT_OPENVINO_CACHE, else
    $XDG_CACHE_HOME/polyp-rt/openvino (~/.cache/polyp-rt/openvino); None when that is "off" or
    the folder cannot be made or written (the model is then compiled each time)."""
    chosen = os.environ.get(CACHE_ENV, "").strip()
    if chosen.lower() == "off":
        return None
    if chosen:
        folder = Path(chosen).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
        folder = Path(base) / "polyp-rt" / "openvino"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.debug("no OpenVINO compile cache at %s (%s)", folder, exc)
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        log.debug("no OpenVINO compile cache at %s (not writable)", folder)
        return None
    return folder


class OpenVinoEngine(Engine):
    """An .onnx file compiled by OpenVINO for the CPU, for a fixed batch."""

    name = "openvino"
    suffixes = (".onnx",)

    @classmethod
    def read_contract(cls, path: Path) -> ModelContract:
        return contract_from_onnx(path)

    @classmethod
    def unavailable(cls, device: str) -> str | None:
        if device != "cpu":
            return (
                f"the OpenVINO backend runs on the CPU only, not --device {device}; use --device cpu "
                "(or the onnxruntime or tensorrt backend on a GPU)"
            )
        try:
            import openvino  # noqa: F401
        except ImportError:
            return f"OpenVINO is not installed: {INSTALL}"
        return None

    @classmethod
    def open(cls, path: Path, options: OpenOptions) -> OpenVinoEngine:
        return cls(
            path,
            options.device,
            batch_size=options.batch_size,
            threads=options.threads,
            requests=options.requests,
        )

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        *,
        batch_size: int = 1,
        threads: int | None = None,
        requests: int = 1,
    ) -> None:
        if device != "cpu":
            raise BackendUnavailable(str(self.unavailable(device)))
        if batch_size < 1 or requests < 1 or (threads is not None and threads < 1):
            raise PolypRtError(
                f"batch size ({batch_size}), requests ({requests}) and threads ({threads}) must be at least 1"
            )
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendUnavailable(f"OpenVINO is not installed: {INSTALL}") from exc

        path = Path(path)
        self.contract = contract_from_onnx(path)
        self.device, self.batch_size, self.precision = device, batch_size, self.contract.precision
        self.batch_sizes = (batch_size, batch_size)  # compiled for this batch

        core = ov.Core()
        self.cache_dir = compile_cache()
        if self.cache_dir is not None:
            core.set_property({"CACHE_DIR": str(self.cache_dir)})
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long texts
            raise ModelError(f"{path}: OpenVINO cannot read it ({str(exc).strip().splitlines()[0]})") from exc
        c = self.contract
        inputs = [_spec(port, c.input_name) for port in model.inputs]
        check_io(c, inputs, [_spec(port, c.output_name) for port in model.outputs], str(path))
        try:
            model.reshape({model.inputs[0]: [batch_size, 3, c.height, c.width]})
        except Exception as exc:
            raise ModelError(
                f"{path}: OpenVINO cannot fix its input to [{batch_size},3,{c.height},{c.width}] "
                f"({str(exc).strip().splitlines()[0]}); export it with --dynamic-batch for batches other than 1"
            ) from exc
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if requests > 1:  # streams: the cores split between requests that run side by side
            config = {"PERFORMANCE_HINT": "THROUGHPUT", "PERFORMANCE_HINT_NUM_REQUESTS": requests}
        if self.precision != "fp16":  # FP32 arithmetic for FP32 files and the float parts of INT8 ones
            config["INFERENCE_PRECISION_HINT"] = "f32"
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self._compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise ModelError(
                f"{path}: OpenVINO cannot compile it for the CPU ({str(exc).strip().splitlines()[0]})"
            ) from exc
        self.requests = requests
        self._requests = [self._compiled.create_infer_request() for _ in range(requests)]
        self._request = self._requests[0]
        self._turn = 0  # the request `submit` starts next
        self._input_dtype = self._compiled.input(0).get_element_type().to_dtype()
        self._output = self._compiled.output(c.output_name)
        self.threads = int(self._compiled.get_property("INFERENCE_NUM_THREADS"))
        version = ov.get_version().split("-")[0]
        plural = "" if self.threads == 1 else "s"
        hint = "latency hint"
        if requests > 1:
            streams = int(self._compiled.get_property("NUM_STREAMS"))
            hint = f"throughput hint, {requests} requests, {streams} stream{'' if streams == 1 else 's'}"
        self.provider = f"OpenVINO {version} CPU ({hint}, {self.threads} thread{plural})"

    def _input(self, batch: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(batch, dtype=self._input_dtype)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        result = self._request.infer({0: self._input(batch)}, share_inputs=True, share_outputs=False)
        return np.asarray(result[self._output], dtype=np.float32)

    def submit(self, batch: np.ndarray) -> Pending:
        """Start the next of the requests in turn (the previous use of it must have been waited for)."""
        if self.requests == 1:
            return Pending(self.infer(batch))
        self._check_batch(tuple(batch.shape))
        request = self._requests[self._turn]
        self._turn = (self._turn + 1) % self.requests
        x = self._input(batch)
        request.start_async({0: x}, share_inputs=True)  # x is read while it runs: _AsyncResult keeps it
        return _AsyncResult(request, x, self._output)

    def _release(self) -> None:
        for request in self._requests:
            request.wait()  # none may still be running when the compiled model goes
        self._requests, self._request = [], None
        self._compiled = None


def _spec(port: Any, wanted: str) -> TensorSpec:
    """An OpenVINO port as a TensorSpec, named `wanted` where that is one of its names."""
    name = wanted if wanted in port.get_names() else port.get_any_name()
    shape = port.get_partial_shape()
    if shape.rank.is_dynamic:
        return TensorSpec(name, ())
    return TensorSpec(name, tuple(d.get_length() if d.is_static else None for d in shape))


class _AsyncResult(Pending):
    """An OpenVINO request started by `submit`; its input array lives until the result is taken."""

    def __init__(self, request: Any, batch: np.ndarray, output: Any) -> None:
        self.request, self.batch, self.output = request, batch, output

    def wait(self) -> np.ndarray:
        self.request.wait()
        logits = np.array(self.request.get_tensor(self.output).data, dtype=np.float32)  # a copy
        self.batch = None  # type: ignore[assignment]
        return logits
