"""`polyp-rt bench`: model-only latency per backend, or the whole pipeline per stage.

Backends run one after another in this process on the same input, after a
warm-up. Host latency is wall time around a synchronous `infer` (numpy in, numpy
out: it includes host<->device copies); on CUDA, CUDA events also split it into
H2D, compute and D2H, as trtexec does. A backend that cannot run here is listed
as skipped with the reason.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from polyp_rt.cli.config import BenchConfig
from polyp_rt.core.errors import PolypRtError
from polyp_rt.core.files import to_json
from polyp_rt.core.redact import redact
from polyp_rt.engines.base import Engine
from polyp_rt.engines.timing import time_engine
from polyp_rt.realtime.config import model_to_run, run_config_of
from polyp_rt.realtime.stats import summarise
from polyp_rt.realtime.stats_file import AS_FAST_AS_POSSIBLE, pacing
from polyp_rt.realtime.threads import thread_plan

log = logging.getLogger(__name__)
console = Console()
SEQUENTIAL_FRAMES = 300  # the one-thread baseline of --pipeline: its fps, not its tail, is what counts


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


# ------------------------------------------------------------------ opening each backend


class Models:
    """Model files for each backend, made on demand (temporary ONNX for presets and checkpoints)."""

    def __init__(self, config: BenchConfig, stack: ExitStack) -> None:
        self.config = config
        self.tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="polyp-rt-bench-")))

    def checkpoint_for_preset(self, preset: str) -> Path:
        import torch

        from polyp_rt.engines.checkpoint import save_checkpoint
        from polyp_rt.engines.models import contract_for, create_model, model_config

        path = self.tmp / f"{preset}.pt"
        if not path.exists():
            conf = model_config(preset, size=self.config.size)
            torch.manual_seed(0)
            save_checkpoint(
                path, create_model(conf), contract_for(conf), {"note": "random weights for timing"}
            )
        return path

    def onnx_for(self, checkpoint: Path) -> Path:
        from polyp_rt.export.config import ExportConfig
        from polyp_rt.export.onnx_export import export_onnx

        path = self.tmp / (checkpoint.stem + ".onnx")
        if not path.exists():
            with console.status(f"exporting {checkpoint.name} to a temporary ONNX for onnxruntime"):
                export_onnx(ExportConfig(checkpoint=checkpoint, output=path, dynamic_batch=True))
        return path


def open_for(backend: str, model: Path, models: Models, config: BenchConfig) -> Engine:
    """`backend` on `model`, converting what it needs: a temporary ONNX from a checkpoint, or, for
    torch on an ONNX file or engine, the same architecture with random weights (same speed)."""
    from polyp_rt.engines.backends.torch_backend import TorchEngine
    from polyp_rt.engines.base import OpenOptions
    from polyp_rt.engines.registry import open_engine, parse_backend, read_contract, readers, settle_device

    cls, _ = parse_backend(backend)
    if model.suffix.lower() not in cls.suffixes:
        if cls is TorchEngine:
            reason = cls.unavailable(settle_device(config.device, cls))
            if reason:
                raise PolypRtError(reason)
            device = settle_device(config.device, cls)
            options = OpenOptions(device, "", config.fp16, config.cuda_graph, config.batch)
            return TorchEngine.from_contract(read_contract(model), options)
        if ".onnx" in cls.suffixes and TorchEngine in readers(model):
            model = models.onnx_for(model)
        else:
            reason = cls.unavailable(settle_device(config.device, cls))
            raise PolypRtError(
                reason
                or f"{cls.name} needs a {'/'.join(cls.suffixes)} file: make one from {model.name} "
                "(`polyp-rt build --onnx MODEL.onnx -o model.engine`) and bench that"
            )
    return open_engine(
        model, backend, config.device, fp16=config.fp16, cuda_graph=config.cuda_graph, batch_size=config.batch
    )


def bench_models(config: BenchConfig) -> list[BackendResult]:
    from polyp_rt.engines.registry import REGISTRY, choose, parse_backend

    results: list[BackendResult] = []
    with ExitStack() as stack:
        models = Models(config, stack)
        if config.presets:
            targets = [
                (name, models.checkpoint_for_preset(name.strip())) for name in config.presets.split(",")
            ]
        else:
            targets = []
            for model in config.model or [model_to_run(None, "auto", config.device)]:
                if not model.is_file():
                    raise PolypRtError(
                        f"{model}: model not found; pass --model or --presets cpu,fast,accurate"
                    )
                targets.append((model.name, model))
        for label, model in targets:
            if config.backends == "auto":
                backends = [choose(model, "auto", config.device)[0].name]
            elif config.backends == "all":
                backends = list(REGISTRY)
            else:
                backends = [b.strip() for b in config.backends.split(",")]
                for backend in backends:
                    parse_backend(backend)  # an unknown name is an error, not a skipped row
            for backend in backends:
                results.append(bench_one(label, backend, model, models, config))
    return results


def bench_one(label: str, backend: str, model: Path, models: Models, config: BenchConfig) -> BackendResult:
    result = BackendResult(label, backend, batch=config.batch)
    try:
        engine = open_for(backend, model, models, config)
    except PolypRtError as exc:
        result.skipped = str(exc)
        result.device = config.device or ""
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
    notes: list[str] = []
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
    """The threaded pipeline on a live source (no sinks, no window), the model alone, and the
    same operators run in one thread, all from one `compose()` wiring."""
    from polyp_rt.realtime.compose import compose, open_run_engine

    if len(config.model) > 1:
        raise PolypRtError("--pipeline times one model: pass one --model")
    one = config.model[0] if config.model else None  # --model: one file here
    run_config = run_config_of(
        config, leave=("overwrite",), model=one, headless=True, max_frames=config.frames
    ).with_model()
    model = run_config.model
    with open_run_engine(run_config) as engine:
        frame_shape = (1, 3, engine.contract.height, engine.contract.width)
        batch = np.random.default_rng(0).standard_normal(frame_shape).astype(np.float32)
        with console.status("model alone"):
            model_samples, _ = time_engine(engine, batch, 100, 10)
        model_p50 = summarise(model_samples)["p50"]
        with (
            console.status(f"threaded pipeline, {config.frames} frames"),
            compose(run_config, engine) as pipeline,
        ):
            outcome = pipeline.run()
            stage = type(pipeline.stage).__name__
            paced = pacing(pipeline)
        if outcome.error is not None:
            raise outcome.error
        threaded = outcome.stats.summary()
        sequential_frames = min(config.frames, SEQUENTIAL_FRAMES)
        with (
            console.status(f"sequential loop, {sequential_frames} frames"),
            compose(replace(run_config, display="synced", inference="latency"), engine) as pipeline,
        ):
            sequential_fps = pipeline.run_sequential(sequential_frames)
        engine_info = engine.describe()
    e2e_p50 = threaded["e2e_ms"]["p50"]
    return {
        "source": redact(config.source),
        "model": str(model),
        "stages": stage,
        "pacing": paced,
        "engine": engine_info,
        "threads": thread_plan(run_config.threads).to_json(),
        **threaded,
        "model_only_ms": summarise(model_samples),
        "sequential_fps": sequential_fps,
        "sequential_frames": sequential_frames,
        "ratios": {
            "e2e_p50_over_model_p50": e2e_p50 / model_p50 if model_p50 else None,
            "threaded_fps_over_sequential_fps": threaded["fps"] / sequential_fps if sequential_fps else None,
        },
    }


def bench_command(config: BenchConfig) -> int:
    if config.pipeline:
        from polyp_rt.cli.report import stats_table

        report = bench_pipeline(config)
        if config.json:
            print(to_json(report))
            return 0
        console.print(
            stats_table(
                report,
                f"pipeline: {report['source']} · {report['engine']['backend']} {report['engine']['device']}",
                flat_out=report["pacing"] == AS_FAST_AS_POSSIBLE,
            )
        )
        r = report["ratios"]
        console.print(
            f"model alone p50 {report['model_only_ms']['p50']:.2f} ms · pipeline e2e p50 / model p50 = {r['e2e_p50_over_model_p50']:.2f}x · "
            f"threaded {report['fps']:.1f} fps / sequential {report['sequential_fps']:.1f} fps = {r['threaded_fps_over_sequential_fps']:.2f}x"
        )
        return 0

    if config.plot:  # before the timing, not after it
        from polyp_rt.core.paths import Place, check_new, check_paths

        check_paths([Place("--model", m) for m in config.model], [Place("--plot", config.plot)])
        check_new(Place("--plot", config.plot), config.overwrite)
    results = bench_models(config)
    if config.plot:
        from polyp_rt.realtime.plots import plot_latency

        plot_latency(
            {f"{r.model} {r.backend}": r.samples for r in results if not r.skipped},
            config.plot,
            "model-only latency",
        )
    if config.json:
        print(
            to_json(
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
