"""One video, start to end, as one Ray task (or the driver itself, --in-process) runs it (nothing
here needs Ray).

The task opens the engine with the registry's `open_engine`, wires the project's own pipeline with
`compose()` (headless, no pacing) plus the batch's frame-record sink, and writes everything into
a work folder of its own, `DIR/.work/<name>.attempt<N>/`: `frames.jsonl`, `peaks/`,
`episodes.json`, `stats.json`, and `annotated.mp4` / `masks/` when asked, with `worker.pid`
(process id and host) for an operator. It returns what became of the video; the driver moves the
folder into place, so a result folder is only ever a complete one. A bad video (not found,
unreadable, not a video) is a result with its one-line error, not an exception; a video that plays
but is damaged or cut short is a result with status ``damaged`` and what was wrong (the stats'
`damage`, also kept in `episodes.json` for a rerun).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyp_rt.batch.events import DONE, FRAMES, STARTED, Event
from polyp_rt.batch.manifest import Fingerprint
from polyp_rt.batch.report import (
    STATUS_DAMAGED,
    STATUS_FAILED,
    STATUS_OK,
    VideoRow,
    one_line,
    peak_thumbnail_path,
)
from polyp_rt.core.errors import InputFileError, PolypRtError
from polyp_rt.core.files import strict, write_json
from polyp_rt.core.names import printable
from polyp_rt.core.signals import REASONS, Stopped
from polyp_rt.realtime.config import RunConfig

if TYPE_CHECKING:
    from polyp_rt.batch.record_sink import FrameRecordSink
    from polyp_rt.batch.truth import Scoring, TruthOutcome

log = logging.getLogger(__name__)

Report = Callable[[Event], None]


@dataclass(frozen=True)
class VideoJob:
    """One video's task: the batch's `RunConfig` with this video as its source (its recording
    and masks, if any, named relative to the work folder); plain data, sent to the worker by Ray."""

    name: str  # output folder name
    run: RunConfig
    work_root: Path  # DIR/.work
    scoring: Scoring | None = None  # --truth: how the video is scored (its truth folder, or none)
    rescore: bool = False  # the video is finished: only score its result folder again

    @property
    def result_dir(self) -> Path:
        """Where the driver keeps the video's finished result (DIR/<name>)."""
        return self.work_root.parent / self.name

    @property
    def input(self) -> Path:
        return Path(str(self.run.source))

    def run_config(self, work: Path) -> RunConfig:
        """The job's pipeline with its outputs placed in `work`."""
        run = self.run
        return replace(
            run,
            record=work / run.record if run.record else None,
            masks_out=work / run.masks_out if run.masks_out else None,
        )


@dataclass(frozen=True)
class VideoResult:
    """What became of one video's task: its summary row and what the driver needs to move a
    finished work folder into place and record it."""

    row: VideoRow
    attempt: int | None = None
    model: str = ""
    work_dir: Path | None = None  # the finished work folder (status ok)
    fingerprint: Fingerprint | None = None  # of the input, taken before it was read (status ok)
    internal: bool = False  # failed through a bug, not a bad video: the batch exits 1
    truth: TruthOutcome | None = None  # --truth: the video's figures, or why it has none

    @classmethod
    def failed(cls, job: VideoJob, error: str, **facts: Any) -> VideoResult:
        """A failed video with its one-line error."""
        row = VideoRow(job.name, str(job.input), status=STATUS_FAILED, error=one_line(error))
        return cls(row, **facts)


def next_attempt(work_root: Path, name: str) -> int:
    """One more than the attempts whose work folders are left (for runners without Ray's count)."""
    numbers = [int(p.suffix[8:]) for p in _attempt_folders(work_root, name) if p.suffix[8:].isdigit()]
    return max(numbers, default=0) + 1


def _attempt_folders(work_root: Path, name: str) -> list[Path]:
    if not work_root.is_dir():
        return []
    return [p for p in work_root.iterdir() if p.name.startswith(f"{name}.attempt")]


def process_video(
    job: VideoJob, attempt: int, report: Report | None = None, check_stop: Callable[[], None] | None = None
) -> VideoResult:
    """Process `job.input` into `work_root/<name>.attempt<attempt>/`; what became of it.
    `check_stop` (the batch driver's, running the video in its own process: it raises `Stopped`
    once the run is to stop) is called before the video's pipeline starts, and a pipeline stopped
    by a signal then raises `Stopped` with its reason."""
    pid, host = os.getpid(), socket.gethostname()
    for stale in _attempt_folders(job.work_root, job.name):  # left by an attempt that died
        shutil.rmtree(stale, ignore_errors=True)
    work = job.work_root / f"{job.name}.attempt{attempt}"
    work.mkdir(parents=True)
    (work / "worker.pid").write_text(f"{pid} {host}\n", encoding="utf-8")

    def emit(kind: str, **fields: Any) -> None:
        if report is not None:
            report(Event(kind, job.name, attempt, pid=pid, host=host, work_dir=str(work), **fields))

    facts: dict[str, Any] = {"attempt": attempt, "model": str(job.run.model)}
    try:
        result = _run(job, work, attempt, emit, check_stop)
    except PolypRtError as exc:
        result = VideoResult.failed(job, f"{type(exc).__name__}: {exc}", **facts)
    except Exception as exc:  # a bug: this video fails, the batch goes on and exits 1
        log.exception("%s: internal error", printable(job.input))
        error = f"internal error: {type(exc).__name__}: {exc}"
        result = VideoResult.failed(job, error, internal=True, **facts)
    if not result.row.ran:
        shutil.rmtree(work, ignore_errors=True)
    else:
        (work / "worker.pid").unlink()  # it says who is working on it; stats.json says who did
    return result


def _run(
    job: VideoJob, work: Path, attempt: int, emit: Callable[..., None], check_stop: Callable[[], None] | None
) -> VideoResult:
    from polyp_rt.batch.record_sink import FrameRecordSink
    from polyp_rt.realtime.compose import compose, open_run_engine
    from polyp_rt.realtime.stats import write_stats_json
    from polyp_rt.realtime.stats_file import run_facts, stats_document

    try:
        fingerprint = Fingerprint.of(job.input)
    except FileNotFoundError:
        raise InputFileError(f"{job.input}: video file not found") from None
    except OSError as exc:
        raise InputFileError(f"{job.input}: cannot read it ({exc.strerror or exc})") from exc
    config = job.run_config(work)
    with open_run_engine(config) as engine:  # a file flat out: the throughput mode (two requests)
        sink = FrameRecordSink(work, progress=lambda frames: emit(FRAMES, frames=frames))
        with compose(config, engine, extra_sinks=[sink]) as pipeline:
            sink.draw = pipeline.overlay.picture  # thumbnails of peak frames, drawn or not
            source = pipeline.source
            sink.set_nominal_fps(source.fps)
            emit(STARTED, frames_expected=getattr(source, "frames_expected", None))
            if check_stop is not None:
                check_stop()
            outcome = pipeline.run()
        emit(DONE, frames=sink.frames)
        if outcome.error is not None:
            raise outcome.error
        if check_stop is not None and outcome.reason in REASONS.values():  # a signal, in the driver
            raise Stopped(outcome.reason)
        if outcome.reason != "end of stream":
            raise PolypRtError(f"{job.input}: stopped before the end ({outcome.reason})")
        summary = outcome.stats.summary()
        facts = run_facts(engine, pipeline, outcome)
        facts["batch"] = {
            "video": job.name,
            "input": printable(job.input),
            "attempt": attempt,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "size": fingerprint.size,
            "sha256": fingerprint.sha256,
        }
        final = job.work_root.parent / job.name
        document = _moved(strict(stats_document(config, facts)), str(work), str(final))
        write_stats_json(work / "stats.json", summary, document)
    row = _write_episodes(job, work, sink, source.fps, summary["fps"], summary["damage"])
    truth = None
    if job.scoring is not None:
        from polyp_rt.batch.truth import score_folder

        truth = score_folder(work, job.name, job.scoring)
        row.take_truth(truth)
    return VideoResult(row, attempt, str(job.run.model), work, fingerprint, truth=truth)


def rescore_video(job: VideoJob) -> VideoResult:
    """Score a finished video's result folder against its (changed) truth; the model does not run.
    The row is a placeholder: the driver keeps the video's row and adds the figures."""
    from polyp_rt.batch.report import STATUS_SKIPPED
    from polyp_rt.batch.truth import score_folder

    assert job.scoring is not None
    try:
        truth = score_folder(job.result_dir, job.name, job.scoring)
    except Exception as exc:  # a bug: the video keeps its results, the batch exits 1
        log.exception("%s: internal error while scoring", printable(job.input))
        return VideoResult.failed(job, f"internal error: {type(exc).__name__}: {exc}", internal=True)
    return VideoResult(VideoRow(job.name, str(job.input), status=STATUS_SKIPPED), truth=truth)


def _write_episodes(
    job: VideoJob, work: Path, sink: FrameRecordSink, fps: float, fps_achieved: float, damage: str | None
) -> VideoRow:
    """`episodes.json` of a finished video; its summary row (``damaged`` where `damage` says what
    was wrong with the input)."""
    tracker = sink.tracker
    episodes = [{**e.to_dict(), "thumbnail": sink.thumbnails.get(e.peak_frame)} for e in tracker.episodes]
    write_json(
        work / "episodes.json",
        {
            "video": job.name,
            "input": printable(job.input),
            "frames": sink.frames,
            "fps": fps,
            "duration_s": tracker.duration_s,
            "polyp_s": tracker.polyp_s,
            "damage": damage,
            "episodes": episodes,
        },
    )
    return VideoRow(
        job.name,
        str(job.input),
        status=STATUS_DAMAGED if damage else STATUS_OK,
        damage=damage or "",
        duration_s=tracker.duration_s,
        frames=sink.frames,
        fps_achieved=fps_achieved,
        episodes=tracker.episodes,
        thumbnails=[
            peak_thumbnail_path(job.name, e.peak_frame) if e.peak_frame in sink.thumbnails else None
            for e in tracker.episodes
        ],
    )


def _moved(value: Any, old: str, new: str) -> Any:
    """`value` with paths under the work folder pointing where the folder will be moved."""
    if isinstance(value, str) and (value == old or value.startswith(old + os.sep)):
        return new + value[len(old) :]
    if isinstance(value, dict):
        return {k: _moved(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_moved(v, old, new) for v in value]
    return value


def read_episodes(folder: Path) -> dict[str, Any]:
    """A finished video's episodes.json."""
    data: dict[str, Any] = json.loads((folder / "episodes.json").read_text(encoding="utf-8"))
    return data
