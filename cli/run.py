"""`polyp-rt run` / `polyp-rt --source ...`: build the parts, run the pipeline, report."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.live import Live
from rich.text import Text

from polyp_rt.cli.report import console, stats_table, status_line
from polyp_rt.core.errors import OutputError, PolypRtError, RecorderError
from polyp_rt.core.files import disk_full_hint
from polyp_rt.core.redact import redact
from polyp_rt.engines.base import Engine
from polyp_rt.realtime.config import DEMO_CLIP, SOURCE_FORMS, RunConfig
from polyp_rt.realtime.outputs import histogram_path
from polyp_rt.realtime.pipeline import Outcome, Pipeline, StopOnSignals
from polyp_rt.realtime.plots import plot_latency
from polyp_rt.realtime.stats import LatencyStats, write_stats_json
from polyp_rt.realtime.stats_file import AS_FAST_AS_POSSIBLE, pacing, run_facts, stats_document

if TYPE_CHECKING:
    from polyp_rt.web.server import LiveView

log = logging.getLogger(__name__)


def run_command(config: RunConfig) -> int:
    from polyp_rt.realtime.compose import compose, open_run_engine
    from polyp_rt.realtime.sinks import open_display

    if not config.source:
        hint = f" (try the demo clip: polyp-rt --source {_shown(DEMO_CLIP)})" if DEMO_CLIP.is_file() else ""
        raise PolypRtError(f"no --source given: pass {SOURCE_FORMS}{hint}")
    if config.token and not config.serve:
        raise PolypRtError(
            "--token is the access token of --serve: pass --serve HOST:PORT too, or leave it out"
        )
    config = config.with_model()  # a missing model file: one line from open_run_engine

    with StopOnSignals() as signals:  # also while the run finishes (the recording, the statistics)
        with ExitStack() as stack:
            engine = stack.enter_context(open_run_engine(config))
            live = stack.enter_context(Live(Text(""), console=console, refresh_per_second=4, transient=True))
            display = None if config.headless else open_display()
            if display:
                stack.callback(display.close)
            web = start_web_view(config, engine, stack) if config.serve else None
            line = StatusLine(live)
            pipeline = stack.enter_context(
                compose(config, engine, display=display, extra_sinks=[web.sink] if web else [], on_frame=line)
            )
            line.series = "processing" if pacing(pipeline) == AS_FAST_AS_POSSIBLE else "e2e"
            signals.watch(pipeline)
            log.info(
                "%s -> %s (%s) -> %s",
                pipeline.source.description,
                config.model_file.name,
                engine.provider,
                ", ".join(type(s).__name__ for s in pipeline.sinks) or "no sinks",
            )
            outcome = pipeline.run()
        report(config, engine, pipeline, outcome)
        return finish(outcome)


def start_web_view(config: RunConfig, engine: Engine, stack: ExitStack) -> LiveView:
    """The live view in browsers (`--serve`), listening before the source opens; stopped by `stack`."""
    from polyp_rt.web.server import start_live_view

    assert config.serve is not None
    facts = {"source": redact(config.source or ""), "model": config.model_file.name, "engine": engine.label}
    view = start_live_view(config.serve, config.token, facts, stack)
    console.print(f"live view: [bold]{view.url}[/bold]", highlight=False, soft_wrap=True)
    return view


class StatusLine:
    """The status line under the run, redrawn at most every `INTERVAL_S` (it is shown at 4 Hz, and
    its percentiles cost more than a frame's statistics) and at once when the status changes."""

    INTERVAL_S = 0.25

    def __init__(self, live: Live) -> None:
        self.live = live
        self.series = "e2e"  # the latency it shows ("processing" for a file read as fast as possible)
        self._next = 0.0
        self._status = ""

    def __call__(self, stats: LatencyStats, status: str) -> None:
        now = time.monotonic()
        if now < self._next and status == self._status:
            return
        self._next, self._status = now + self.INTERVAL_S, status
        self.live.update(status_line(stats, status, self.series))


def report(config: RunConfig, engine: Engine, pipeline: Pipeline, outcome: Outcome) -> None:
    """The closing table, what each sink wrote, and the stats JSON with its histogram."""
    summary = outcome.stats.summary()
    title = f"{pipeline.source.description} · {engine.label} · {pipeline.modes.describe()} · {outcome.reason}"
    if summary["damage"]:
        title += " · damaged input"
    console.print(stats_table(summary, title, flat_out=pacing(pipeline) == AS_FAST_AS_POSSIBLE))
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
        m = extra["masks"]
        console.print(
            f"masks: {m['folder']}/ ({m['written']} PNG files, the model's masks before the alert gate)"
        )
    gate = extra.get("alert_gate")
    if gate and (gate["min_frames"], gate["hold"]) != (1, 0):
        console.print(
            f"alert gate {gate['min_frames']}:{gate['hold']}: of {gate['with_mask']} frames with a mask, "
            f"{gate['held_back']} had a region held back (not yet persisted); {gate['drawn']} frames drew "
            f"something, {gate['held_over']} of them a region the mask had lost"
        )
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
            latency_series(outcome),
            histogram,
            title,
        )
    except (OSError, OutputError) as exc:  # OutputError: its folder could not be made
        failed = RecorderError(
            f"{config.stats_json}: writing the statistics failed "
            f"({getattr(exc, 'strerror', None) or exc}){disk_full_hint(exc)}"
        )
        if outcome.error is None:
            raise failed from exc
        log.warning("%s", failed)  # the run's own error is the one to report
    else:
        console.print(f"stats: {config.stats_json} and {histogram}")


def latency_series(outcome: Outcome) -> dict[str, Any]:
    """What the histogram shows: the video delay, the annotation delay where it is another figure
    (passthrough; synced, it is the video delay), and the model's time."""
    samples = outcome.stats.samples
    series: dict[str, Any] = {"video delay": samples["e2e"]}
    if outcome.stats.modes.get("display") == "passthrough":
        series["annotation delay"] = samples["annotation"]
    return {**series, "infer": samples["infer"]}


def finish(outcome: Outcome) -> int:
    if outcome.error is not None:
        raise outcome.error
    return outcome.exit_code


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
