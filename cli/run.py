"""`polyp-rt run` / `polyp-rt --source ...`: build the parts, run the pipeline, report."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.live import Live
from rich.text import Text

from polyp_rt.cli.report import console, stats_table, status_line
from polyp_rt.core.errors import PolypRtError, RecorderError
from polyp_rt.core.files import disk_full_hint
from polyp_rt.engines.base import Engine
from polyp_rt.realtime.config import DEMO_CLIP, DEMO_MODEL, SOURCE_FORMS, RunConfig, bundled_model_for
from polyp_rt.realtime.outputs import histogram_path
from polyp_rt.realtime.pipeline import Outcome, Pipeline, StopOnSignals
from polyp_rt.realtime.plots import plot_latency
from polyp_rt.realtime.stats import write_stats_json
from polyp_rt.realtime.stats_file import run_facts, stats_document
from polyp_rt.realtime.threads import thread_plan

log = logging.getLogger(__name__)


def run_command(config: RunConfig) -> int:
    from polyp_rt.engines.registry import open_engine
    from polyp_rt.realtime.compose import compose
    from polyp_rt.realtime.sinks import open_display

    if not config.source:
        hint = f" (try the demo clip: polyp-rt --source {_shown(DEMO_CLIP)})" if DEMO_CLIP.is_file() else ""
        raise PolypRtError(f"no --source given: pass {SOURCE_FORMS}{hint}")
    if Path(config.model) == DEMO_MODEL:
        config.model = bundled_model_for(config.backend, config.device)
    if not Path(config.model).is_file():
        raise PolypRtError(
            f"{config.model}: model not found; pass --model with a .onnx, .engine or checkpoint .pt"
        )

    with StopOnSignals() as signals:  # also while the run finishes (the recording, the statistics)
        with ExitStack() as stack:
            engine = stack.enter_context(
                open_engine(
                    config.model,
                    config.backend,
                    config.device,
                    fp16=config.fp16,
                    cuda_graph=config.cuda_graph,
                    threads=thread_plan(config.threads).runtime,
                )
            )
            live = stack.enter_context(Live(Text(""), console=console, refresh_per_second=4, transient=True))
            display = None if config.headless else open_display()
            if display:
                stack.callback(display.close)
            pipeline = stack.enter_context(
                compose(
                    config,
                    engine,
                    display=display,
                    on_frame=lambda stats, status: live.update(status_line(stats, status)),
                )
            )
            signals.watch(pipeline)
            log.info(
                "%s -> %s (%s) -> %s",
                pipeline.source.description,
                Path(config.model).name,
                engine.provider,
                ", ".join(type(s).__name__ for s in pipeline.sinks) or "no sinks",
            )
            outcome = pipeline.run()
        report(config, engine, pipeline, outcome)
        return finish(outcome)


def report(config: RunConfig, engine: Engine, pipeline: Pipeline, outcome: Outcome) -> None:
    """The closing table, what each sink wrote, and the stats JSON with its histogram."""
    summary = outcome.stats.summary()
    title = f"{pipeline.source.description} · {engine.label} · {outcome.reason}"
    if summary["damage"]:
        title += " · damaged input"
    console.print(stats_table(summary, title))
    extra: dict[str, Any] = run_facts(engine, pipeline, outcome)
    if "truth" in extra:
        scores = extra["truth"]
        console.print(
            f"Dice against {config.truth}: {scores['dice']:.4f} (mean of {scores['images']} frames), IoU {scores['iou']:.4f}"
        )
    if "recording" in extra:
        r = extra["recording"]
        console.print(f"recording: {r['path']} ({r['frames']} frames, {r['codec']})")
    if "masks" in extra:
        console.print(f"masks: {extra['masks']['folder']}/ ({extra['masks']['written']} PNG files)")
    if config.stats_json:
        write_stats(config, outcome, summary, stats_document(config, extra), title)


def write_stats(
    config: RunConfig, outcome: Outcome, summary: dict[str, Any], extra: dict[str, Any], title: str
) -> None:
    assert config.stats_json is not None
    histogram = histogram_path(config.stats_json)
    try:
        write_stats_json(config.stats_json, summary, extra)
        plot_latency(
            {"end to end": outcome.stats.samples["e2e"], "infer": outcome.stats.samples["infer"]},
            histogram,
            title,
        )
    except OSError as exc:
        failed = RecorderError(
            f"{config.stats_json}: writing the statistics failed ({exc.strerror or exc}){disk_full_hint(exc)}"
        )
        if outcome.error is None:
            raise failed from exc
        log.warning("%s", failed)  # the run's own error is the one to report
    else:
        console.print(f"stats: {config.stats_json} and {histogram}")


def finish(outcome: Outcome) -> int:
    if outcome.error is not None:
        raise outcome.error
    return outcome.exit_code


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
