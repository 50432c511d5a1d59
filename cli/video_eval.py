"""`polyp-rt eval --video CLIP --truth DIR` and `polyp-rt eval --record frames.jsonl --truth DIR`:
a video scored as CADe systems are judged, one table (or `--json`), and the operating-point plot.

--video runs the pipeline headless through `compose()` (the one wiring) with the alert gate of the
flags and scores, per frame, the model's masks ("ungated") and what the gate drew; --record scores a
batch video's record. Gates named by --gates are replayed over the masks in the same pass.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table

from polyp_rt.cli.config import EvalCommandConfig
from polyp_rt.cli.report import console
from polyp_rt.core.errors import PolypRtError
from polyp_rt.core.files import to_json
from polyp_rt.core.paths import Place, check_new, check_paths
from polyp_rt.core.progress import progress_bar
from polyp_rt.evaluation.score import VideoScore
from polyp_rt.evaluation.streams import GateFactory, StreamScorer, VideoEvaluation
from polyp_rt.evaluation.truth import TruthFolder, sha256_of
from polyp_rt.realtime.alert_gate import AlertGate
from polyp_rt.realtime.frame import Frame
from polyp_rt.realtime.sinks import Sink


def video_eval_command(config: EvalCommandConfig) -> int:
    if config.video and config.record:
        raise PolypRtError("pass --video CLIP or --record FILE, not both")
    if not config.truth:
        raise PolypRtError("--video and --record are scored against --truth DIR (one mask per frame)")
    reads = [Place("--truth", config.truth, folder=True)]
    reads += [
        Place(flag, path) for flag, path in (("--video", config.video), ("--record", config.record)) if path
    ]
    check_paths(reads, [Place("--plot", config.plot)] if config.plot else [])
    if config.plot:
        check_new(Place("--plot", config.plot), config.overwrite)
    live = AlertGate(config.alert_min_frames, config.alert_hold)
    gates = parse_gates(config.gates)
    facts: dict[str, Any] = {}
    drawn = None if live.passes_all else live.label  # gate 1:0 draws the masks: "ungated" says it
    if config.video:
        evaluation = run_and_score(config, drawn, gates, facts)
    else:
        assert config.record is not None
        evaluation = score_batch_record(config, {live.label: _factory(live), **gates} if drawn else gates)
    if config.plot:
        from polyp_rt.evaluation.plot import plot_operating_points

        plot_operating_points(
            evaluation.scores, config.plot, f"{evaluation.video}: lesions against false alarms"
        )
    if config.json:
        print(to_json({**evaluation.summary(), **facts}))
        return 0
    console.print(scores_table(evaluation))
    for note in evaluation.notes:
        console.print(f"note: {note}")
    if config.plot:
        console.print(f"plot: {config.plot}")
    return 0


def parse_gates(texts: list[str]) -> dict[str, GateFactory]:
    """--gates N:M ... as gate factories by label."""
    from polyp_rt.evaluation.config import parse_gates as gate_pairs

    gates: dict[str, GateFactory] = {}
    for min_frames, hold in gate_pairs(texts):
        gate = AlertGate(min_frames, hold)
        if not gate.passes_all:  # gate 1:0 is the masks themselves: the "ungated" column
            gates[gate.label] = _factory(gate)
    return gates


def _factory(gate: AlertGate) -> GateFactory:
    return lambda: AlertGate(gate.min_frames, gate.hold)


class ScoringSink(Sink):
    """Feeds each finished frame's mask and what was drawn to the scorer."""

    def __init__(self, stream: StreamScorer, advance: Callable[[], None]) -> None:
        self.stream, self.advance = stream, advance

    def write(self, frame: Frame) -> None:
        assert frame.mask is not None
        self.stream.add(frame.index, frame.pts_s, frame.mask, frame.alert)
        self.advance()


def run_and_score(
    config: EvalCommandConfig, live: str | None, gates: dict[str, GateFactory], facts: dict[str, Any]
) -> VideoEvaluation:
    """Run the pipeline over --video headless and score it frame by frame."""
    from polyp_rt.engines.registry import open_engine
    from polyp_rt.realtime.compose import compose
    from polyp_rt.realtime.config import bundled_model_for, run_config_of
    from polyp_rt.realtime.threads import thread_plan

    assert config.video is not None and config.truth is not None
    truth = TruthFolder(config.truth)
    if truth.info.sha256 and config.video.is_file():
        truth.expect_video(sha256_of(config.video), str(config.video))
    model = config.model or bundled_model_for(config.backend, config.device)
    # --record and --truth name this command's own inputs, not the pipeline's outputs
    run = run_config_of(
        config,
        leave=("record", "truth", "overwrite"),
        source=str(config.video),
        model=Path(model),
        headless=True,
    )
    stream = StreamScorer(truth, config.min_area, drawn=live, gates=gates, video=config.video.name)
    threads = thread_plan(config.threads).runtime
    with (
        open_engine(model, config.backend, config.device, fp16=config.fp16, threads=threads) as engine,
        progress_bar() as bar,
    ):
        task = bar.add_task(f"eval {config.video.name}", total=None, status=engine.label)
        sink = ScoringSink(stream, lambda: bar.advance(task, 1))
        with compose(run, engine, extra_sinks=[sink]) as pipeline:
            source = pipeline.source
            truth.expect_size(source.width, source.height, str(config.video))
            expected = getattr(source, "frames_counted", None)  # an MP4's sample count: exact
            if expected:
                truth.expect_frames(expected, str(config.video))
            bar.update(task, total=getattr(source, "frames_expected", None))
            outcome = pipeline.run()
        if outcome.error is not None:
            raise outcome.error
        if outcome.reason != "end of stream":
            raise PolypRtError(f"{config.video}: stopped before the end ({outcome.reason}); no figures")
        facts.update(model=str(model), engine=engine.describe(), fps=source.fps, smoothing=run.smoothing)
    return stream.finish(config.metrics, nominal_fps=source.fps)


def score_batch_record(config: EvalCommandConfig, gates: dict[str, GateFactory]) -> VideoEvaluation:
    from polyp_rt.evaluation.record import score_record

    assert config.record is not None and config.truth is not None
    with progress_bar() as bar:
        task = bar.add_task(f"eval {config.record}", total=None, status="")
        return score_record(
            config.record,
            config.truth,
            min_area=config.min_area,
            metrics=config.metrics,
            gates=gates,
            progress=lambda n: bar.advance(task, n),
        )


def scores_table(evaluation: VideoEvaluation) -> Table:
    """One column per stream (ungated, what was drawn, replayed gates), one row per figure."""
    first = next(iter(evaluation.scores.values()))
    table = Table(
        title=f"{evaluation.video}: {first.frames} frames, {first.duration_s:.1f} s, {len(first.lesions)} lesions"
    )
    table.add_column("")
    for name in evaluation.scores:
        table.add_column(name, justify="right")
    for label, cell in rows(first.taus):
        table.add_row(label, *(cell(score) for score in evaluation.scores.values()))
    table.caption = (
        f"alerts meet the truth {'pixel by pixel' if first.overlap == 'mask' else 'frame by frame'}; "
        "definitions: docs/VIDEO_METRICS.md"
    )
    return table


def rows(taus: tuple[float, ...]) -> list[tuple[str, Callable[[VideoScore], str]]]:
    def quartiles(unit: str, fmt: str) -> Callable[[VideoScore], str]:
        def cell(s: VideoScore) -> str:
            q = s.delay_quartiles(unit)
            return "-" if q is None else f"{q[1]:{fmt}} [{q[0]:{fmt}}-{q[2]:{fmt}}]"

        return cell

    def alarms(tau: float) -> Callable[[VideoScore], str]:
        def cell(s: VideoScore) -> str:
            rate, share = s.alarms_per_minute(tau), s.alarm_share(tau)
            if rate is None or share is None:
                return "-"
            return f"{len(s.alarms(tau))} ({rate:.1f}/min, {share:.1%})"

        return cell

    return [
        ("lesions found", lambda s: f"{s.found}/{len(s.lesions)} ({_f(s.sensitivity, '.3f')})"),
        ("first detection, ms: median [IQR]", quartiles("ms", ".0f")),
        ("first detection, frames", quartiles("frames", ".0f")),
        ("lesion time with an alert on it", lambda s: _f(s.coverage, ".3f")),
        *((f"false alarms >= {tau:g} s (per min, time)", alarms(tau)) for tau in taus),
        ("alert runs", lambda s: str(s.alert_runs)),
        ("frames with a polyp: alert on it", lambda s: _f(s.frame_sensitivity, ".3f")),
        ("polyp-free frames: no alert", lambda s: _f(s.frame_specificity, ".3f")),
        ("Dice per frame (mean)", lambda s: _f(s.dice, ".4f")),
        ("alert switches per minute", lambda s: _f(s.switches_per_minute, ".1f")),
        ("mask IoU, frame to frame", lambda s: _f(s.frame_iou, ".3f")),
    ]


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)
