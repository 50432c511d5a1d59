"""The batch driver: what to do, the videos' tasks for it, progress, results moved into place, the
reports.

    inputs -> names -> manifest (skip finished, unchanged videos) -> one task per video
           -> result folders moved into place, manifest entry written -> summary.csv, report.html

(Inputs that are not regular files, or lie in an earlier batch's output, are skipped rows.)
The tasks run on Ray, or with --in-process one after another in this process (batch/tasks.py).

The driver is the only writer of the output folder's top level: a task works in
`DIR/.work/<name>.attempt<N>/` and the driver renames that folder to `DIR/<name>/` when the
task's result arrives (Ray delivers one result per task, however often it reran it), then records
the video in the manifest. Work folders left by killed attempts or killed runs are removed. One
run at a time holds `DIR/.lock`. Every task runs the batch's one `RunConfig`
(`BatchConfig.run_config()`) with its own video as the source (`Plan.job`).

Ctrl-C (or SIGTERM), noted by `core.signals.SignalWatch` and raised at the top of the driver's
loop (never inside Ray's wait), stops submitting, cancels the running tasks, writes the summary
and the report with the unfinished videos marked `skipped: interrupted`, and returns; the
manifest only ever lists finished videos, so the next run resumes. With --in-process the running
video's pipeline watches the signals itself, stops, and the stop comes out of it as `Stopped`.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import shutil
import time
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from polyp_rt.batch.config import BatchConfig
from polyp_rt.batch.events import Event
from polyp_rt.batch.inputs import Refused, Video, collect, name_videos
from polyp_rt.batch.manifest import Manifest, settings_of
from polyp_rt.batch.report import STATUS_SKIPPED, VideoRow
from polyp_rt.batch.tasks import check_fits, fitting_workers, run_here, run_on_ray
from polyp_rt.batch.truth import Scoring, TruthOutcome, make_key, pair_truth, read_metrics, same_key
from polyp_rt.batch.worker import VideoJob, VideoResult, read_episodes
from polyp_rt.core.errors import InputFileError, PolypRtError
from polyp_rt.core.options import out_of_range
from polyp_rt.core.paths import Place, check_writable, make_folder
from polyp_rt.core.signals import EXIT_CODES, INTERRUPTED, SignalWatch, Stopped
from polyp_rt.realtime.config import RunConfig

log = logging.getLogger(__name__)

STATUS_INTERRUPTED = "skipped: interrupted"
STATUS_RESCORED = "skipped: unchanged, scored again"  # --truth: the truth changed, the video did not


class Watcher:
    """What the driver tells whoever shows progress; every method is called on the driver's thread,
    and while one runs no event is taken from the queue (a worker may wait for it)."""

    def planned(self, videos: list[Video], todo: list[Video], workers: int) -> None:
        pass

    def event(self, event: Event) -> None:
        pass

    def finished(self, row: VideoRow) -> None:
        pass


@dataclass
class BatchResult:
    rows: list[VideoRow]
    out_dir: Path
    elapsed_s: float = 0.0  # from the first task submitted to the last result (not Ray's start or stop)
    frames: int = 0  # processed in this run
    video_s: float = 0.0  # the duration of the videos processed in this run
    workers: int = 0
    internal_errors: int = 0
    interrupted: str | None = None  # a signal's reason: "interrupted" (Ctrl-C) or "terminated" (SIGTERM)
    started: float | None = None  # monotonic time the first task was submitted

    def count(self, kind: str) -> int:
        return sum(r.kind == kind for r in self.rows)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_CODES[self.interrupted]
        if self.internal_errors:
            return 1
        return 2 if self.count("failed") or any(r.truth_error for r in self.rows) else 0


@dataclass
class Plan:
    """What a run does: every video of the inputs, those it processes (`todo`, by name, in input
    order) with the pipeline `run`, the finished ones it only scores again against their changed
    truth (`rescore`), and the rows of the videos finished so far."""

    out: Path
    run: RunConfig  # every video's pipeline, its source unset
    settings: dict[str, Any]  # what the manifest compares (`settings_of(run)`)
    manifest: Manifest
    videos: list[Video]
    todo: dict[str, Video]
    rows: dict[str, VideoRow]
    scoring: dict[str, Scoring]  # --truth: each video's (its truth folder, or none); else empty
    rescore: dict[str, Video]

    def tasks(self) -> dict[str, Video]:
        """The videos this run gives a task: those to process, then those to score again."""
        return {**self.todo, **self.rescore}

    def job(self, video: Video) -> VideoJob:
        """The task of one video: the run's pipeline with the video as its source (and how it is
        scored, with --truth); a video to score again only scores its result folder."""
        return VideoJob(
            video.name,
            replace(self.run, source=str(video.path)),
            self.out / ".work",
            scoring=self.scoring.get(video.name),
            rescore=video.name in self.rescore,
        )


def run_batch(config: BatchConfig, watcher: Watcher | None = None) -> BatchResult:
    """Process `config.inputs` into `config.out`; see the module's docstring."""
    watcher = watcher or Watcher()
    problem = out_of_range(config)
    if problem:
        raise PolypRtError(problem)
    if config.out is None:
        raise PolypRtError("--out DIR is required")
    out = config.out.resolve()
    if out.exists() and not out.is_dir():
        raise InputFileError(f"--out {config.out}: exists and is not a folder")
    if config.in_process and (config.ray_address or (config.workers or 1) > 1 or config.gpus_per_task):
        raise PolypRtError(
            "--in-process runs one video at a time in this process, on its own CPUs or --device: "
            "leave out --ray-address, --workers and --gpus-per-task"
        )
    check_writable(Place("--out", config.out, folder=True))  # read-only, below a file: one line now
    from polyp_rt.engines.registry import read_contract

    read_contract(config.run_config().model_file)  # a bad model is one line now, not a failure per video
    if config.truth is not None:
        config.scoring()  # a bad --gates is one line now
        if not config.truth.is_dir():
            raise InputFileError(
                f"--truth {config.truth}: not a folder (it holds one folder of masks per video)"
            )
    inputs = collect(config.inputs, out)
    make_folder(out, "--out")
    with _locked(out / ".lock"):
        return _run_locked(config, out, inputs.videos, inputs.refused, watcher)


def plan_batch(config: BatchConfig, out: Path, paths: list[Path]) -> Plan:
    """The plan for `paths` into the output folder `out`: a video is done again unless the manifest
    lists it as finished, unchanged, with the same settings, and its results can be read. With
    --truth, a finished video whose figures were made from another truth is scored again."""
    manifest = Manifest.load(out / "manifest.json")
    run = config.run_config()
    videos = name_videos(paths, manifest.names())
    plan = Plan(out, run, settings_of(run), manifest, videos, {}, {}, {}, {})
    if config.truth is not None:
        plan.scoring = pair_truth(config.truth, [v.name for v in videos], config.scoring())
    for video in plan.videos:
        entry = manifest.finished(video.name, video.path, plan.settings, out)
        row = _skipped_row(video, entry, out) if entry is not None else None
        if row is None or entry is None:
            plan.todo[video.name] = video
            continue
        plan.rows[video.name] = row
        scoring = plan.scoring.get(video.name)
        if scoring is not None and not _scored(row, entry, scoring, out / video.name):
            plan.rescore[video.name] = video
    return plan


def _scored(row: VideoRow, entry: dict[str, Any], scoring: Scoring, folder: Path) -> bool:
    """Whether a finished video's figures stand (then they are in its `row`): made from the truth
    it has now, with the same options; False: score it again."""
    if not scoring.wanted:  # no truth folder, or one that cannot be used: nothing to score
        truth = "" if scoring.truth is None else str(scoring.truth)
        row.take_truth(TruthOutcome(truth, scoring.problem))
        return True
    key = make_key(scoring, entry.get("truth"))
    stored = read_metrics(folder, key) if same_key(entry.get("truth"), key) else None
    row.take_truth(stored)
    return stored is not None


def _run_locked(
    config: BatchConfig, out: Path, paths: list[Path], refused: list[Refused], watcher: Watcher
) -> BatchResult:
    plan = plan_batch(config, out, paths)  # a manifest that is not this folder's: nothing touched
    work_root = out / ".work"
    shutil.rmtree(work_root, ignore_errors=True)  # left by a killed run: never a result
    if plan.rows:
        plan.manifest.save()  # a time updated for a file whose content did not change
    plan.manifest.forget(list(plan.todo))
    result = BatchResult([], out)
    failure: BaseException | None = None
    if plan.todo or plan.rescore:
        try:
            _process(config, plan, watcher, result)
        except Stopped as stop:
            result.interrupted = stop.reason or INTERRUPTED
        except KeyboardInterrupt:  # before the driver's own handler was in place
            result.interrupted = INTERRUPTED
        except BaseException as exc:  # Ray lost, a bug: the reports still say what was finished
            failure = exc
    unfinished = STATUS_INTERRUPTED if failure is None else "skipped: the batch failed"
    result.rows = [
        plan.rows.get(v.name) or VideoRow(v.name, str(v.path), status=unfinished) for v in plan.videos
    ]
    result.rows += [
        VideoRow(r.path.name, str(r.path), status=f"skipped: {r.what}", error=r.why) for r in refused
    ]
    from polyp_rt.batch.page import write_report_html
    from polyp_rt.batch.report import write_summary_csv

    write_summary_csv(result.rows, out / "summary.csv")
    write_report_html(out, result.rows, elapsed_s=result.elapsed_s if result.frames else None)
    shutil.rmtree(work_root, ignore_errors=True)
    if failure is not None:
        raise failure
    return result


def _process(config: BatchConfig, plan: Plan, watcher: Watcher, result: BatchResult) -> None:
    jobs = {name: plan.job(video) for name, video in plan.tasks().items()}
    if config.in_process:
        with SignalWatch() as stop:
            _take_all(run_here(list(jobs.values()), watcher.event, stop), 1, plan, watcher, result)
        return
    from polyp_rt.batch.cluster import cluster_resources, largest_node_cpus, ray_session

    local_cpus = None
    if config.ray_address is None:  # --workers and --cpus-per-task are honoured on any machine
        local_cpus = max(os.cpu_count() or 1, math.ceil((config.workers or 1) * config.cpus_per_task))
    # the signals are watched from after ray.init, which replaces SIGTERM's handler
    with ray_session(config.ray_address, local_cpus) as ray, SignalWatch() as stop:
        check_fits(config, largest_node_cpus(ray))
        workers = config.workers or fitting_workers(cluster_resources(ray), config)
        outcomes = run_on_ray(ray, config, jobs, workers, watcher.event, stop)
        _take_all(outcomes, workers, plan, watcher, result)


def _take_all(
    outcomes: Generator[VideoResult, None, None],
    workers: int,
    plan: Plan,
    watcher: Watcher,
    result: BatchResult,
) -> None:
    """Start the tasks (the generator's first step) and take each video's outcome as it comes."""
    result.workers = workers
    result.started = time.monotonic()
    watcher.planned(plan.videos, list(plan.tasks().values()), workers)
    with closing(outcomes):
        for outcome in outcomes:
            _take(outcome, plan, watcher, result)


def _take(outcome: VideoResult, plan: Plan, watcher: Watcher, result: BatchResult) -> None:
    row = _rescored(outcome, plan) if outcome.row.name in plan.rescore else _commit(outcome, plan)
    plan.rows[row.name] = row
    if row.ran:
        result.frames += row.frames
        result.video_s += row.duration_s or 0.0
    if outcome.internal:
        result.internal_errors += 1
    if result.started is not None:
        result.elapsed_s = time.monotonic() - result.started
    watcher.finished(row)


def _commit(outcome: VideoResult, plan: Plan) -> VideoRow:
    """Move a finished video's work folder into place and record it; the video's summary row."""
    row = outcome.row
    if not row.ran:
        return row
    assert outcome.work_dir is not None and outcome.fingerprint is not None
    work, final = outcome.work_dir, plan.out / row.name
    if final.exists():  # the result of an earlier run (the input changed): replaced whole
        old = plan.out / ".work" / f"{row.name}.replaced"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
        os.rename(work, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(work, final)
    figures = {
        "frames": row.frames,
        "duration_s": row.duration_s,
        "fps_achieved": row.fps_achieved,
        "attempt": outcome.attempt,
        "model": outcome.model,
        "damage": row.damage or None,
        "truth": None if outcome.truth is None else outcome.truth.key,  # what its figures are made from
    }
    plan.manifest.record(row.name, plan.todo[row.name].path, outcome.fingerprint, plan.settings, figures)
    return row


def _rescored(outcome: VideoResult, plan: Plan) -> VideoRow:
    """A finished video scored again: its row with the new figures (or why there are none), and
    what they were made from in the manifest."""
    row = plan.rows[outcome.row.name]
    row.status = STATUS_RESCORED
    if outcome.truth is None:  # the scoring task failed (a bug): the results stay, the figures wait
        row.truth_error = outcome.row.error
    else:
        row.take_truth(outcome.truth)
        plan.manifest.update(row.name, truth=outcome.truth.key)
    return row


def _skipped_row(video: Video, entry: dict[str, Any], out: Path) -> VideoRow | None:
    """The row of a finished, unchanged video from its results; None where they cannot be read."""
    try:
        data = read_episodes(out / video.name)
    except (OSError, ValueError) as exc:
        log.warning("%s: cannot read its earlier results (%s): processing it again", video.name, exc)
        return None
    return VideoRow.from_dict(
        {
            "video": video.name,
            "input": str(video.path),
            "status": STATUS_SKIPPED,
            "duration_s": data.get("duration_s"),
            "frames": data.get("frames"),
            "fps_achieved": entry.get("fps_achieved"),
            "damage": data.get("damage"),
            "episodes": data.get("episodes") or [],
            "thumbnails": [
                f"{video.name}/{e['thumbnail']}" if e.get("thumbnail") else None
                for e in data.get("episodes") or []
            ],
        }
    )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One batch at a time per output folder."""
    with path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise PolypRtError(
                f"{path.parent}: another polyp-rt batch is writing here; wait for it or pick another --out"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
