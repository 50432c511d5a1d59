"""ONNX -> TensorRT engine: `build_engine(BuildConfig(onnx=..., output=...))`, plus its JSON sidecar.

The engine is tuned for this GPU and this TensorRT version only; the sidecar
(`NAME.engine.json`, see polyp_rt.engines.sidecar) records both, with the model
contract read from the ONNX metadata, so the engine is self-describing.
tensorrt, torch and onnx are imported when a build starts.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyp_rt.core.errors import ModelError, PolypRtError
from polyp_rt.core.paths import make_parent
from polyp_rt.engines.backends.tensorrt_backend import gpu_identity, require_cuda, require_tensorrt
from polyp_rt.engines.checkpoint import sha256_file
from polyp_rt.engines.contract import TensorSpec, check_io, contract_from_onnx, model_file
from polyp_rt.engines.sidecar import sidecar_path, write_sidecar
from polyp_rt.export.config import BuildConfig

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
"""Called with (phase, overall fraction done in [0, 1]); drives the CLI's progress bar."""

# Shares of the whole run: parsing is quick, building is nearly all of it.
PARSED, BUILT = 0.05, 0.95


def _monitor(progress: Progress) -> trt.IProgressMonitor:
    """A TensorRT progress monitor turning its nested phases into one overall fraction."""
    import tensorrt as trt

    class BuildMonitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._lock = threading.Lock()  # TensorRT may call from several threads
            self._phases: dict[str, list[Any]] = {}  # name -> [parent, steps, steps done]
            self._done = PARSED

        def _fraction(self, name: str) -> float:
            _, steps, done = self._phases[name]
            child = next((c for c, p in self._phases.items() if p[0] == name), None)
            inner = self._fraction(child) if child is not None else 0.0
            return min(1.0, (done + inner) / max(int(steps), 1))

        def _report(self, name: str) -> None:
            roots = [n for n, p in self._phases.items() if p[0] is None]
            if roots:
                fraction = PARSED + (BUILT - PARSED) * self._fraction(roots[0])
                self._done = max(self._done, fraction)
            try:
                progress(name, self._done)
            except Exception:  # a failing progress bar must not fail the build
                log.exception("progress callback failed")

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            with self._lock:
                self._phases[phase_name] = [parent_phase, num_steps, 0]
                self._report(phase_name)

        def step_complete(self, phase_name: str, step: int) -> bool:
            with self._lock:
                if phase_name in self._phases:
                    self._phases[phase_name][2] = step + 1
                    self._report(phase_name)
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            with self._lock:
                self._phases.pop(phase_name, None)

    return BuildMonitor()


def _parse(
    builder: trt.Builder, onnx_path: Path, logger: trt.ILogger
) -> tuple[trt.INetworkDefinition, trt.OnnxParser]:
    """(network, parser): the parser owns the weights, so it must outlive the build."""
    import tensorrt as trt

    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"{onnx_path}: TensorRT cannot parse it: {errors or 'no details'}")
    return network, parser


def _spec(tensor: trt.ITensor) -> TensorSpec:
    """A network input or output as a TensorSpec (-1: a dynamic dimension)."""
    dims = tensor.shape
    return TensorSpec(tensor.name, tuple(None if dims[i] < 0 else int(dims[i]) for i in range(len(dims))))


def _builder_config(
    builder: trt.Builder,
    input_name: str,
    shapes: dict[str, list[int]],
    fp16: bool,
    workspace_gb: float,
    cache_path: Path | None,
) -> trt.IBuilderConfig:
    """The build settings: workspace, precision, the one optimisation profile, the timing cache."""
    import tensorrt as trt

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if fp16:
        if not builder.platform_has_fast_fp16:
            log.warning("this GPU has no fast FP16; the FP16 engine may be no faster than FP32")
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    low, opt, high = (trt.Dims(shapes[k]) for k in ("min", "opt", "max"))
    profile.set_shape(input_name, low, opt, high)
    config.add_optimization_profile(profile)
    cache_bytes = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    if not config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False):
        log.warning("timing cache %s does not fit this GPU/TensorRT; starting afresh", cache_path)
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    return config


def build_engine(settings: BuildConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Build `settings.output` (a TensorRT engine) from `settings.onnx` as `polyp-rt build`'s flags
    say, and write its sidecar; return it."""
    version = require_tensorrt()  # both checks before any heavy work
    require_cuda()
    import tensorrt as trt

    if settings.onnx is None or settings.output is None:
        raise PolypRtError("building an engine needs an ONNX file and an output path")
    onnx_path, out_path = model_file(settings.onnx, "ONNX file"), Path(settings.output)
    fp16 = settings.fp16
    min_batch, opt_batch, max_batch = settings.min_batch, settings.opt_batch, settings.max_batch
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise PolypRtError(
            f"batch sizes must satisfy 1 <= min ({min_batch}) <= opt ({opt_batch}) <= max ({max_batch})"
        )
    make_parent(out_path, "--output")
    report = progress or (lambda phase, fraction: None)
    report("parsing ONNX", 0.0)
    contract = contract_from_onnx(onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(builder, onnx_path, logger)
    inputs = [_spec(network.get_input(i)) for i in range(network.num_inputs)]
    check_io(
        contract, inputs, [_spec(network.get_output(i)) for i in range(network.num_outputs)], str(onnx_path)
    )
    batch = inputs[0].shape[0]
    if batch is not None and (min_batch, opt_batch, max_batch) != (batch, batch, batch):
        log.warning("%s has a fixed batch of %d; building for that batch only", onnx_path, batch)
        min_batch = opt_batch = max_batch = batch
    chw = [3, contract.height, contract.width]
    shapes = {"min": [min_batch, *chw], "opt": [opt_batch, *chw], "max": [max_batch, *chw]}

    cache_path = settings.timing_cache
    config = _builder_config(builder, contract.input_name, shapes, fp16, settings.workspace_gb, cache_path)
    monitor = _monitor(report) if progress and hasattr(trt, "IProgressMonitor") else None
    if monitor is not None:
        config.progress_monitor = monitor

    report("building engine", PARSED)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelError(
            f"{onnx_path}: TensorRT could not build an engine (see its log above); "
            "try a larger --workspace-gb, or build without FP16"
        )
    report("writing engine", BUILT)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(serialized)
    # A failed or interrupted run never leaves half an engine, nor a new one with an old sidecar.
    sidecar_path(out_path).unlink(missing_ok=True)
    os.replace(tmp, out_path)
    if cache_path is not None:
        cache_path.write_bytes(config.get_timing_cache().serialize())

    gpu, capability = gpu_identity()  # the current device, which TensorRT built for
    sidecar: dict[str, Any] = {
        "tensorrt_version": version,
        "gpu_name": gpu,
        "compute_capability": capability,
        "precision": "fp16" if fp16 else "fp32",
        "input_shape": shapes["opt"],
        "profile": shapes,
        "onnx_path": str(onnx_path),
        "onnx_sha256": sha256_file(onnx_path),
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "contract": contract.to_dict(),
    }
    write_sidecar(out_path, sidecar)
    report("done", 1.0)
    return sidecar
