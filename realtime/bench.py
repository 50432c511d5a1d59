"""`polyp-rt bench`: model-only latency per backend, or the whole pipeline per stage.

Backends run one after another in this process on the same input, after a
warm-up. Host latency is wall time around a synchronous `infer` (numpy in, numpy
out: it includes host<->device copies); on CUDA, CUDA events also split it into
H2D, compute and D2H, as trtexec does. A backend that cannot run here is listed
as skipped with the reason.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from polyp_rt.engines.base import Engine
from polyp_rt.engines.errors import PolypRtError
from polyp_rt.realtime.config import DEMO_MODEL, BenchConfig
from polyp_rt.realtime.stats import summarise

log = logging.getLogger(__name__)
console = Console()
ALL_BACKENDS = ("torch", "onnxruntime", "tensorrt")


@dataclass
class BackendResult:
    model: str
    backend: str
    skipped: str | None = None  # the reason, when it could not run here
    provider: str = ""
    device: str = ""
    precision: str = ""
    batch: int = 1
    size: tuple[int, int] = (0, 0)
    latency_ms: dict[str, float | int] = field(default_factory=dict)
    gpu_split_ms: dict[str, float] = field(default_factory=dict)  # mean h2d / compute / d2h (CUDA events)
    samples: list[float] = field(default_factory=list)

    @property
    def fps(self) -> float:
        mean = float(self.latency_ms.get("mean", 0.0))
        return self.batch * 1000.0 / mean if mean else 0.0

    def to_json(self) -> dict[str, Any]:
        out = {
            "model": self.model,
            "backend": self.backend,
            "provider": self.provider,
            "device": self.device,
            "precision": self.precision,
            "batch": self.batch,
            "size": list(self.size),
        }
        if self.skipped:
            return {**out, "skipped": self.skipped}
        return {
            **out,
            **{f"{k}_ms": v for k, v in self.latency_ms.items()},
            "fps": self.fps,
            "gpu_split_ms": self.gpu_split_ms,
        }


def time_engine(
    engine: Engine, batch: np.ndarray, iterations: int, warmup: int
) -> tuple[list[float], dict[str, float]]:
    """Host latency samples (ms) of `engine.infer`, and the mean CUDA-event split where it can be taken."""
    for _ in range(warmup):
        engine.infer(batch)
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        engine.infer(batch)
        samples.append((time.perf_counter() - t0) * 1000.0)
    split = cuda_split(engine, batch, max(10, iterations // 4)) if engine.is_cuda else {}
    return samples, split


def cuda_split(engine: Engine, batch: np.ndarray, iterations: int) -> dict[str, float]:
    """Mean H2D, compute and D2H times (ms) from CUDA events, for engines that take device tensors."""
    infer_device = getattr(engine, "infer_device", None)
    if infer_device is None:
        return {}
    import torch

    stream = getattr(engine, "stream", None) or torch.cuda.current_stream()
    host_in = torch.from_numpy(batch).pin_memory()
    totals = {"h2d": 0.0, "compute": 0.0, "d2h": 0.0}
    with torch.cuda.stream(stream):
        for _ in range(iterations):
            events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
            events[0].record()
            device_in = host_in.to(engine.device, non_blocking=True)
            events[1].record()
            logits = infer_device(device_in)
            events[2].record()
            logits.to("cpu", non_blocking=True)
            events[3].record()
            events[3].synchronize()
            for key, (a, b) in zip(totals, zip(events, events[1:], strict=False), strict=True):
                totals[key] += a.elapsed_time(b)
    return {k: v / iterations for k, v in totals.items()}


# ------------------------------------------------------------------ opening each backend


class Models:
    """Model files for each backend, made on demand (temporary ONNX for presets and checkpoints)."""

    def __init__(self, config: BenchConfig, stack: ExitStack) -> None:
        self.config = config
        self.tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="polyp-rt-bench-")))

    def checkpoint_for_preset(self, preset: str) -> Path:
        import torch

        from polyp_rt.engines.contract import ModelContract
        from polyp_rt.engines.models import create_model, model_config, save_checkpoint

        path = self.tmp / f"{preset}.pt"
        if not path.exists():
            conf = model_config(preset, size=self.config.size)
            contract = ModelContract(
                conf.size,
                conf.size,
                preset=preset,
                encoder=conf.encoder,
                decoder_channels=conf.decoder_channels,
            )
            torch.manual_seed(0)
            save_checkpoint(path, create_model(conf), conf, contract, {"note": "random weights for timing"})
        return path

    def onnx_for(self, checkpoint: Path) -> Path:
        from polyp_rt.export.onnx_export import export_onnx

        path = self.tmp / (checkpoint.stem + ".onnx")
        if not path.exists():
            with console.status(f"exporting {checkpoint.name} to a temporary ONNX for onnxruntime"):
                export_onnx(checkpoint, path, dynamic_batch=True)
        return path


def open_for(backend: str, model: Path, models: Models, config: BenchConfig, device: str) -> Engine:
    from polyp_rt.engines.factory import open_engine
    from polyp_rt.engines.torch_backend import TorchEngine

    family = backend.split("-")[0]
    kind = model.suffix.lower()
    if family == "torch":
        if kind in (".pt", ".pth"):
            return open_engine(
                model,
                "torch",
                device,
                fp16=config.fp16,
                cuda_graph=config.cuda_graph,
                batch_size=config.batch,
            )
        contract = open_engine_contract(model)
        return TorchEngine.from_contract(
            contract, device, fp16=config.fp16, cuda_graph=config.cuda_graph, batch_size=config.batch
        )
    if family == "onnxruntime":
        if kind in (".pt", ".pth"):
            model = models.onnx_for(model)
        elif kind != ".onnx":
            raise PolypRtError(f"onnxruntime needs the .onnx file; {model.name} is a {kind} file")
        return open_engine(model, backend, device, batch_size=config.batch)
    if kind not in (".engine", ".plan"):
        from polyp_rt.engines.tensorrt_backend import require_cuda, require_tensorrt

        require_tensorrt()
        require_cuda()
        raise PolypRtError(
            f"tensorrt needs an engine: run `polyp-rt build --onnx {model} -o model.engine` and bench that"
        )
    return open_engine(model, "tensorrt", device, cuda_graph=config.cuda_graph, batch_size=config.batch)


def open_engine_contract(model: Path) -> Any:
    from polyp_rt.engines.contract import ModelContract
    from polyp_rt.realtime.info import describe_model

    return ModelContract.from_dict(describe_model(model)["contract"], str(model))


# ------------------------------------------------------------------ model-only benchmark


def bench_models(config: BenchConfig) -> list[BackendResult]:
    from polyp_rt.engines.factory import auto_backend, default_device

    device = config.device or default_device()
    results: list[BackendResult] = []
    with ExitStack() as stack:
        models = Models(config, stack)
        if config.presets:
            targets = [
                (name, models.checkpoint_for_preset(name.strip())) for name in config.presets.split(",")
            ]
        else:
            model = Path(config.model or DEMO_MODEL)
            if not model.is_file():
                raise PolypRtError(f"{model}: model not found; pass --model or --presets cpu,fast,accurate")
            targets = [(model.name, model)]
        for label, model in targets:
            if config.backends == "auto":
                backends = [auto_backend(model)]
            elif config.backends == "all":
                backends = list(ALL_BACKENDS)
            else:
                backends = [b.strip() for b in config.backends.split(",")]
            for backend in backends:
                results.append(bench_one(label, backend, model, models, config, device))
    return results


def bench_one(
    label: str, backend: str, model: Path, models: Models, config: BenchConfig, device: str
) -> BackendResult:
    result = BackendResult(label, backend, batch=config.batch)
    try:
        engine = open_for(backend, model, models, config, device)
    except PolypRtError as exc:
        result.skipped = str(exc)
        result.device = device
        log.warning("%s on %s: skipped: %s", backend, label, exc)
        return result
    with engine:
        contract = engine.contract
        if config.size and not config.presets and config.size != contract.height:
            raise PolypRtError(
                f"{model.name} takes {contract.height}x{contract.width} input; --size applies to --presets"
            )
        rng = np.random.default_rng(0)
        batch = rng.standard_normal((config.batch, 3, contract.height, contract.width)).astype(np.float32)
        with console.status(f"timing {backend} on {label} ({config.iterations} iterations)"):
            samples, split = time_engine(engine, batch, config.iterations, config.warmup)
        result.provider, result.device, result.precision = engine.provider, engine.device, engine.precision
        result.size = contract.size
        result.samples = samples
        result.latency_ms = summarise(samples)
        result.gpu_split_ms = split
    return result


def short_provider(provider: str) -> str:
    return provider.replace("ExecutionProvider", " EP").replace(" (random weights)", "*")


def results_table(results: list[BackendResult], title: str) -> Table:
    """One row per model and backend; under each figure, its ratio to the first row that ran."""
    several_models = len({r.model for r in results}) > 1
    with_split = any(r.gpu_split_ms for r in results)
    table = Table(title=title)
    if several_models:
        table.add_column("model")
    table.add_column("backend")
    table.add_column("prec×N")
    for column in ("mean ms", "p50 ms", "p90 ms", "p99 ms", "max ms", "fps") + (
        ("H2D/GPU/D2H ms",) if with_split else ()
    ):
        table.add_column(column, justify="right")
    ran = [r for r in results if not r.skipped]
    first = ran[0] if ran else None
    notes = []
    for r in results:
        head = [r.model] if several_models else []
        if r.skipped or first is None:
            notes.append(escape(f"[{len(notes) + 1}] {r.backend} on {r.model}: {r.skipped}"))
            table.add_row(*head, f"{r.backend}\n[dim]skipped [{len(notes)}][/dim]", style="dim")
            continue
        cells = []
        for value, base in [
            (float(r.latency_ms[k]), float(first.latency_ms[k])) for k in ("mean", "p50", "p90", "p99", "max")
        ] + [(r.fps, first.fps)]:
            cells.append(f"{value:.1f}" if r is first else f"{value:.1f}\n[dim]{value / base:.2f}x[/dim]")
        if with_split:
            cells.append(
                "/".join(f"{r.gpu_split_ms[k]:.2f}" for k in ("h2d", "compute", "d2h"))
                if r.gpu_split_ms
                else "-"
            )
        backend = f"{r.backend}\n[dim]{escape(short_provider(r.provider))}[/dim]"
        table.add_row(*head, backend, f"{r.precision}×{r.batch}", *cells)
    lines = ["host latency of one synchronous infer (numpy in and out); Nx: ratio to the first row"]
    if any("random weights" in r.provider for r in ran):
        lines.append("*: the model's architecture with random weights (same speed, no checkpoint needed)")
    table.caption = "\n".join(lines + notes)
    return table


# ------------------------------------------------------------------ pipeline benchmark


def bench_pipeline(config: BenchConfig) -> dict[str, Any]:
    from polyp_rt.engines.factory import open_engine
    from polyp_rt.realtime.config import OverlayConfig
    from polyp_rt.realtime.overlay import Hud, Overlay
    from polyp_rt.realtime.pipeline import Pipeline, PipelineOptions
    from polyp_rt.realtime.sources import SourceOptions, open_source
    from polyp_rt.realtime.stages import make_stage

    model = Path(config.model or DEMO_MODEL)
    if not model.is_file():
        raise PolypRtError(f"{model}: model not found; pass --model")
    with open_engine(
        model, config.backend, config.device, fp16=config.fp16, cuda_graph=config.cuda_graph
    ) as engine:
        frame_shape = (1, 3, engine.contract.height, engine.contract.width)
        batch = np.random.default_rng(0).standard_normal(frame_shape).astype(np.float32)
        with console.status("model alone"):
            model_samples, _ = time_engine(engine, batch, 100, 10)
        model_p50 = summarise(model_samples)["p50"]

        source = open_source(config.source, SourceOptions())
        source.open()
        stage = make_stage(engine, cpu_only=config.stages == "cpu")
        label = f"{engine.name} {engine.device}"
        with console.status(f"threaded pipeline, {config.frames} frames"):
            pipeline = Pipeline(
                source,
                stage,
                Overlay(OverlayConfig()),
                [],
                options=PipelineOptions(max_frames=config.frames, backend_label=label),
            )
            outcome = pipeline.run()
        source.close()
        if outcome.error is not None:
            raise outcome.error
        threaded = outcome.stats.summary()

        source = open_source(config.source, SourceOptions())
        source.open()
        overlay = Overlay(OverlayConfig())
        with console.status(f"sequential loop, {config.frames} frames"):
            t0 = time.perf_counter()
            done = 0
            while done < config.frames:
                frame = source.read()
                if frame is None:
                    break
                frame = stage(frame)
                assert frame.mask is not None
                overlay.draw(frame.rgb, frame.mask, Hud(backend=label), frame.blended)
                done += 1
            sequential_fps = done / (time.perf_counter() - t0)
        source.close()
        stage.close()
    e2e_p50 = threaded["e2e_ms"]["p50"]
    return {
        "source": config.source,
        "model": str(model),
        "stages": type(stage).__name__,
        "engine": engine.describe(),
        **threaded,
        "model_only_ms": summarise(model_samples),
        "sequential_fps": sequential_fps,
        "ratios": {
            "e2e_p50_over_model_p50": e2e_p50 / model_p50 if model_p50 else None,
            "threaded_fps_over_sequential_fps": threaded["fps"] / sequential_fps if sequential_fps else None,
        },
    }


def bench_command(config: BenchConfig) -> int:
    if config.pipeline:
        from polyp_rt.realtime.run import stats_table

        report = bench_pipeline(config)
        if config.json:
            print(json.dumps(report, default=str))
            return 0
        console.print(
            stats_table(
                report,
                f"pipeline: {config.source} · {report['engine']['backend']} {report['engine']['device']}",
            )
        )
        r = report["ratios"]
        console.print(
            f"model alone p50 {report['model_only_ms']['p50']:.2f} ms · pipeline e2e p50 / model p50 = {r['e2e_p50_over_model_p50']:.2f}x · "
            f"threaded {report['fps']:.1f} fps / sequential {report['sequential_fps']:.1f} fps = {r['threaded_fps_over_sequential_fps']:.2f}x"
        )
        return 0

    results = bench_models(config)
    if config.plot:
        from polyp_rt.realtime.stats import plot_latency

        plot_latency(
            {f"{r.model} {r.backend}": r.samples for r in results if not r.skipped},
            config.plot,
            "model-only latency",
        )
    if config.json:
        print(
            json.dumps(
                {
                    "iterations": config.iterations,
                    "warmup": config.warmup,
                    "results": [r.to_json() for r in results],
                }
            )
        )
        return 0
    console.print(
        results_table(
            results, f"model-only latency, {config.iterations} iterations after {config.warmup} warm-up"
        )
    )
    if config.plot:
        console.print(f"plot: {config.plot}")
    return 0
