"""`polyp-rt run` / `polyp-rt --source ...`: build the parts, run the pipeline, report."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from polyp_rt.engines.errors import PolypRtError, RecorderError
from polyp_rt.realtime.config import DEMO_CLIP, RunConfig
from polyp_rt.realtime.pipeline import Outcome, Pipeline, PipelineOptions
from polyp_rt.realtime.stats import STAGES, LatencyStats, plot_latency, write_stats_json

log = logging.getLogger(__name__)
console = Console()


def run_command(config: RunConfig) -> int:
    from polyp_rt.engines.factory import open_engine
    from polyp_rt.realtime.overlay import Overlay, parse_color
    from polyp_rt.realtime.sinks import MaskWriter, RecordingSink, Sink, TruthScorer, open_display
    from polyp_rt.realtime.sources import SourceOptions, open_source
    from polyp_rt.realtime.stages import make_stage

    if not config.source:
        hint = f" (try the demo clip: polyp-rt --source {_shown(DEMO_CLIP)})" if DEMO_CLIP.is_file() else ""
        raise PolypRtError(
            f"no --source given: pass a video file, camera index, URL, image folder or synthetic:640x480@30{hint}"
        )
    if not Path(config.model).is_file():
        raise PolypRtError(
            f"{config.model}: model not found; pass --model with a .onnx, .engine or checkpoint .pt"
        )

    with ExitStack() as stack:
        engine = stack.enter_context(
            open_engine(
                config.model, config.backend, config.device, fp16=config.fp16, cuda_graph=config.cuda_graph
            )
        )
        options = SourceOptions(
            config.realtime, config.width, config.height, config.fps, config.fourcc, config.stall_timeout
        )
        source = open_source(config.source, options)
        source.open()
        stack.callback(source.close)
        stage = make_stage(
            engine,
            config.threshold,
            config.smoothing,
            color=parse_color(config.overlay.color),
            alpha=config.overlay.mask_alpha,
            in_flight=2 * config.queue_size + 4,
        )
        stack.callback(stage.close)
        overlay = Overlay(config.overlay)
        sinks: list[Sink] = []
        recording = masks = truth = None
        if config.record:
            recording = RecordingSink(config.record, source.width, source.height, source.fps)
            stack.callback(recording.close)  # runs on every way out: the file is always finalised
            sinks.append(recording)
        if config.masks_out:
            masks = MaskWriter(config.masks_out)
            sinks.append(masks)
        if config.truth:
            truth = TruthScorer(config.truth)
            sinks.append(truth)
        display = None if config.headless else open_display()
        if display:
            stack.callback(display.close)
        label = f"{engine.name} {engine.device}" + (
            f" {engine.precision}" if engine.precision != "fp32" else ""
        )
        log.info(
            "%s -> %s (%s) -> %s",
            source.description,
            Path(config.model).name,
            engine.provider,
            ", ".join(type(s).__name__ for s in sinks) or "no sinks",
        )

        with Live(Text(""), console=console, refresh_per_second=4, transient=True) as live:
            pipeline = Pipeline(
                source,
                stage,
                overlay,
                sinks,
                display,
                PipelineOptions(config.queue_size, config.max_frames, config.reconnects, backend_label=label),
                on_frame=lambda stats, status: live.update(status_line(stats, status)),
            )
            outcome = pipeline.run()

    summary = outcome.stats.summary()
    console.print(stats_table(summary, f"{source.description} · {label} · {outcome.reason}"))
    extra: dict[str, Any] = {
        "reason": outcome.reason,
        "exit_code": outcome.exit_code,
        "error": str(outcome.error) if outcome.error is not None else None,
        "engine": engine.describe(),
    }
    if truth:
        scores = truth.summary()
        extra["truth"] = scores
        console.print(
            f"Dice against {config.truth}: {scores['dice']:.4f} (mean of {scores['images']} frames), IoU {scores['iou']:.4f}"
        )
    if recording:
        extra["recording"] = {
            "path": str(recording.path),
            "frames": recording.recorder.frames_written,
            "codec": recording.recorder.codec,
        }
        console.print(
            f"recording: {recording.path} ({recording.recorder.frames_written} frames, {recording.recorder.codec})"
        )
    if masks:
        console.print(f"masks: {masks.folder}/ ({masks.written} PNG files)")
    if config.stats_json:
        histogram = config.stats_json.with_suffix(".png")
        try:
            write_stats_json(
                config.stats_json, summary, {**extra, "config": config_dict(config), "versions": versions()}
            )
            plot_latency(
                {"end to end": outcome.stats.samples["e2e"], "infer": outcome.stats.samples["infer"]},
                histogram,
                f"{source.description} · {label}",
            )
        except OSError as exc:
            failed = RecorderError(
                f"{config.stats_json}: writing the statistics failed ({exc.strerror or exc}); is the disk full?"
            )
            if outcome.error is None:
                raise failed from exc
            log.warning("%s", failed)  # the run's own error is the one to report
        else:
            console.print(f"stats: {config.stats_json} and {histogram}")
    return finish(outcome)


def finish(outcome: Outcome) -> int:
    if outcome.error is not None:
        raise outcome.error
    return outcome.exit_code


def status_line(stats: LatencyStats, status: str) -> Text:
    e2e = sorted(stats.recent_e2e(120))
    p50 = e2e[len(e2e) // 2] if e2e else 0.0
    p99 = e2e[min(len(e2e) - 1, int(len(e2e) * 0.99))] if e2e else 0.0
    fps = stats.frames_out / stats.seconds if stats.seconds > 0 else 0.0
    text = f"{stats.frames_out} frames  {fps:5.1f} fps  e2e p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
    return Text(text + (f"  [{status}]" if status else ""), style="bold")


def stats_table(summary: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    table.add_column("stage")
    for column in ("count", "mean", "p50", "p90", "p99", "max"):
        table.add_column(column + (" ms" if column != "count" else ""), justify="right")
    rows = [(name, summary["stages_ms"][name]) for name, _, _ in STAGES] + [("end to end", summary["e2e_ms"])]
    rows += [(f"GPU {step} (CUDA events)", s) for step, s in summary.get("gpu_ms", {}).items()]
    for name, s in rows:
        table.add_row(
            name,
            str(s["count"]),
            *(f"{s[k]:.1f}" for k in ("mean", "p50", "p90", "p99", "max")),
            style="bold" if name == "end to end" else None,
        )
    dropped = ", ".join(f"{k} {v}" for k, v in summary["dropped"].items() if v) or "none"
    skipped = ", ".join(f"{k} {v}" for k, v in summary["skipped"].items()) or "none"
    table.caption = (
        f"{summary['frames_in']} frames in, {summary['frames_processed']} processed, {summary['fps']:.1f} fps "
        f"over {summary['seconds']:.1f} s · dropped: {dropped} · skipped input: {skipped}"
    )
    return table


def config_dict(config: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}


def versions() -> dict[str, str]:
    from polyp_rt.realtime.info import package_versions

    return package_versions()


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
