"""The batch driver: what to do, Ray tasks for it, progress, results moved into place, the reports.

    inputs -> names -> manifest (skip finished, unchanged videos) -> one Ray task per video
           -> result folders moved into place, manifest entry written -> summary.csv, report.html

The driver is the only writer of the output folder's top level: a task works in
`DIR/.work/<name>.attempt<N>/` and the driver renames that folder to `DIR/<name>/` when the
task's result arrives (Ray delivers one result per task, however often it reran it), then records
the video in the manifest. Work folders left by killed attempts or killed runs are removed. One
run at a time holds `DIR/.lock`.

Ctrl-C (or SIGTERM) stops submitting, cancels the running tasks, writes the summary and the report
with the unfinished videos marked `skipped: interrupted`, and returns; the manifest only ever
lists finished videos, so the next run resumes.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import shutil
import signal
import time
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from polyp_rt.batch.config import BatchConfig
from polyp_rt.batch.events import Event
from polyp_rt.batch.inputs import Video, collect, name_videos
from polyp_rt.batch.manifest import Fingerprint, Manifest, settings_of, sha256_of
from polyp_rt.batch.report import STATUS_FAILED, STATUS_OK, STATUS_SKIPPED, VideoRow, one_line
from polyp_rt.batch.worker import VideoJob, read_episodes
from polyp_rt.core.errors import InputFileError, PolypRtError
from polyp_rt.core.options import out_of_range

log = logging.getLogger(__name__)

WAIT_S = 0.25  # the driver's longest wait for an event before it looks at the tasks again
CANCEL_WAIT_S = 10.0  # after Ctrl-C: how long the cancelled tasks get to stop
STATUS_INTERRUPTED = "skipped: interrupted"


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
    workers: int = 0
    internal_errors: int = 0
    interrupted: str | None = None  # "interrupted" (Ctrl-C) or "terminated" (SIGTERM)
    started: float | None = None  # monotonic time the first task was submitted

    def count(self, kind: str) -> int:
        return sum(r.kind == kind for r in self.rows)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 143 if self.interrupted == "terminated" else 130
        if self.internal_errors:
            return 1
        return 2 if self.count("failed") else 0


class Stopped(BaseException):
    """Ctrl-C or SIGTERM reached the driver."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    from polyp_rt.engines.registry import read_contract

    read_contract(config.model)  # a bad model is one line now, not a failure per video
    paths = collect(config.inputs, out)
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out / ".lock"):
        return _run_locked(config, out, paths, watcher)


def _run_locked(config: BatchConfig, out: Path, paths: list[Path], watcher: Watcher) -> BatchResult:
    manifest = Manifest.load(out / "manifest.json")
    videos = name_videos(paths, manifest.names())
    work_root = out / ".work"
    shutil.rmtree(work_root, ignore_errors=True)  # left by a killed run: never a result
    settings = settings_of(sha256_of(config.model), _result_options(config))
    rows: dict[str, VideoRow] = {}
    todo: list[Video] = []
    for video in videos:
        entry = manifest.finished(video.name, video.path, settings, out)
        row = _skipped_row(video, entry, out) if entry is not None else None
        if row is None:
            todo.append(video)
        else:
            rows[video.name] = row
    if rows:
        manifest.save()  # a time updated for a file whose content did not change
    manifest.forget([v.name for v in todo])
    result = BatchResult([], out)
    failure: BaseException | None = None
    if todo:
        try:
            _process(config, out, videos, todo, manifest, settings, watcher, rows, result)
        except Stopped as stop:
            result.interrupted = stop.reason
        except KeyboardInterrupt:  # before the driver's own handler was in place
            result.interrupted = "interrupted"
        except BaseException as exc:  # Ray lost, a bug: the reports still say what was finished
            failure = exc
    unfinished = STATUS_INTERRUPTED if failure is None else "skipped: the batch failed"
    result.rows = [rows.get(v.name) or VideoRow(v.name, str(v.path), status=unfinished) for v in videos]
    from polyp_rt.batch.report import write_report_html, write_summary_csv

    write_summary_csv(result.rows, out / "summary.csv")
    write_report_html(out, result.rows, elapsed_s=result.elapsed_s if result.frames else None)
    shutil.rmtree(work_root, ignore_errors=True)
    if failure is not None:
        raise failure
    return result


def _process(
    config: BatchConfig,
    out: Path,
    videos: list[Video],
    todo: list[Video],
    manifest: Manifest,
    settings: dict[str, Any],
    watcher: Watcher,
    rows: dict[str, VideoRow],
    result: BatchResult,
) -> None:
    from polyp_rt.batch.cluster import cluster_resources, ray_session

    local_cpus = None
    if config.ray_address is None and config.workers is not None:  # --workers is honoured here
        local_cpus = max(os.cpu_count() or 1, math.ceil(config.workers * config.cpus_per_task))
    with ray_session(config.ray_address, local_cpus) as ray, _stop_on_signals() as stop:
        workers = config.workers or _fitting_workers(cluster_resources(ray), config)
        result.workers = workers
        result.started = time.monotonic()
        watcher.planned(videos, todo, workers)
        jobs = {v.name: _job(config, out, v) for v in todo}
        by_name = {v.name: v for v in todo}
        with closing(_run_tasks(ray, config, jobs, workers, watcher, stop)) as outcomes:
            for outcome in outcomes:
                _take(outcome, out, by_name[outcome["video"]], manifest, settings, watcher, rows, result)


def _take(
    outcome: dict[str, Any],
    out: Path,
    video: Video,
    manifest: Manifest,
    settings: dict[str, Any],
    watcher: Watcher,
    rows: dict[str, VideoRow],
    result: BatchResult,
) -> None:
    row = _commit(outcome, out, video, manifest, settings)
    rows[row.name] = row
    if row.kind == "ok":
        result.frames += row.frames
    if outcome.get("internal"):
        result.internal_errors += 1
    if result.started is not None:
        result.elapsed_s = time.monotonic() - result.started
    watcher.finished(row)


def _fitting_workers(resources: dict[str, float], config: BatchConfig) -> int:
    """As many tasks as the cluster's CPUs (GPUs, with --gpus-per-task) hold at once."""
    if config.gpus_per_task > 0:
        gpus = resources.get("GPU", 0.0)
        if gpus < config.gpus_per_task:
            raise PolypRtError(
                f"--gpus-per-task {config.gpus_per_task:g}: the Ray cluster has {gpus:g} GPUs; "
                "start it on GPU machines, or leave --gpus-per-task out to run on CPUs"
            )
        return max(1, int(gpus // config.gpus_per_task))
    return max(1, int(resources.get("CPU", 1.0) // config.cpus_per_task))


def _job(config: BatchConfig, out: Path, video: Video) -> VideoJob:
    cpu_only = config.gpus_per_task == 0
    return VideoJob(
        name=video.name,
        input=video.path,
        work_root=out / ".work",
        model=config.model.resolve(),
        backend=config.backend,
        device=config.device,
        fp16=config.fp16,
        cuda_graph=config.cuda_graph,
        threshold=config.threshold,
        smoothing=config.smoothing,
        record=config.record,
        masks=config.masks,
        threads=max(1, round(config.cpus_per_task)) if cpu_only else None,
        overlay=config.overlay,
    )


def _result_options(config: BatchConfig) -> dict[str, Any]:
    """The options that change a video's results (not where or how fast it runs)."""
    return {
        "backend": config.backend,
        "fp16": config.fp16,
        "threshold": config.threshold,
        "smoothing": config.smoothing,
        "record": config.record,
        "masks": config.masks,
        "overlay": asdict(config.overlay),
    }


def _run_tasks(
    ray: ModuleType,
    config: BatchConfig,
    jobs: dict[str, VideoJob],
    workers: int,
    watcher: Watcher,
    stop: StopRequest,
) -> Generator[dict[str, Any], None, None]:
    """Submit at most `workers` tasks at a time; yield each task's result as it arrives."""
    from ray.util.queue import Empty, Queue

    events = Queue(maxsize=workers, actor_options={"num_cpus": 0})
    task = ray.remote(video_task).options(
        num_cpus=config.cpus_per_task,
        num_gpus=config.gpus_per_task,
        max_retries=config.retries,
        retry_exceptions=False,
    )
    waiting = list(jobs.values())
    running: dict[Any, str] = {}
    latest: dict[str, int] = {}  # video -> the latest attempt heard of; older events are stale
    progress = True
    try:
        while waiting or running:
            stop.check()
            while waiting and len(running) < workers:
                job = waiting.pop(0)
                running[task.remote(job, events)] = job.name
            ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0 if progress else WAIT_S)
            for ref in ready:
                name = running.pop(ref)
                yield _result_of(ray, ref, jobs[name])
            if ready or not progress:
                continue
            try:
                event = events.get(block=True, timeout=WAIT_S)
            except Empty:
                continue
            except Exception as exc:  # the queue's actor is gone (e.g. killed when memory ran low)
                log.warning("progress reports lost (%s); the videos go on without them", type(exc).__name__)
                progress = False
                continue
            if event.attempt >= latest.get(event.video, 0):
                latest[event.video] = event.attempt
                watcher.event(event)
    finally:
        with suppress(Exception):  # Ray itself may be what failed: the first error is the one to report
            for ref in running:
                ray.cancel(ref)
            if running:
                ray.wait(list(running), num_returns=len(running), timeout=CANCEL_WAIT_S)
            events.shutdown(force=True)


def video_task(job: VideoJob, events: Any) -> dict[str, Any]:
    """The Ray task: one video (runs on a worker; `events` is the driver's bounded queue)."""
    from polyp_rt.batch.worker import next_attempt, process_video

    attempt = _ray_attempt() or next_attempt(job.work_root, job.name)
    reporting = True

    def report(event: Event) -> None:
        nonlocal reporting
        if reporting:
            try:
                events.put(event, block=True)
            except Exception:  # the driver's queue is gone: the video goes on without progress
                reporting = False

    return process_video(job, attempt, report)


def _ray_attempt() -> int | None:
    """Which run of this task this is (1 = the first), from Ray's own count where it tells it."""
    try:
        import ray

        core_worker = ray._private.worker.global_worker.core_worker  # type: ignore[attr-defined]
        return int(core_worker.get_current_task_attempt_number()) + 1
    except Exception:  # an older or newer Ray without it: the work folders tell
        return None


def _result_of(ray: ModuleType, ref: Any, job: VideoJob) -> dict[str, Any]:
    """A task's result; a task that failed in Ray (its retries used up, a bug) as a failed result."""
    try:
        value: dict[str, Any] = ray.get(ref)
        return value
    except Exception as exc:
        crashed = type(exc).__name__ in ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError")
        text = str(exc).strip().splitlines()
        cause = text[-1] if text else type(exc).__name__
        return {
            "video": job.name,
            "input": str(job.input),
            "status": STATUS_FAILED,
            "internal": not crashed,
            "error": one_line(f"{type(exc).__name__}: {cause}"),
        }


def _commit(
    outcome: dict[str, Any], out: Path, video: Video, manifest: Manifest, settings: dict[str, Any]
) -> VideoRow:
    """Move a finished video's work folder into place and record it; the video's summary row."""
    row = VideoRow.from_dict(outcome)
    if row.status != STATUS_OK:
        return row
    work, final = Path(outcome["work_dir"]), out / video.name
    if final.exists():  # the result of an earlier run (the input changed): replaced whole
        old = out / ".work" / f"{video.name}.replaced"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
        os.rename(work, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(work, final)
    fp = outcome["fingerprint"]
    manifest.record(
        video.name,
        video.path,
        Fingerprint(fp["size"], fp["mtime_ns"], fp["sha256"]),
        settings,
        {
            "frames": row.frames,
            "duration_s": row.duration_s,
            "fps_achieved": row.fps_achieved,
            "attempt": outcome.get("attempt"),
            "model": outcome.get("model"),
        },
    )
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


class StopRequest:
    """Ctrl-C or SIGTERM, noted by the signal handler and raised as `Stopped` by the driver's loop.

    The handler itself must not raise: a Python exception raised inside Ray's Cython `wait`
    comes out as a SystemError, not as the interruption it was.
    """

    REASONS: dict[int, str] = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}

    def __init__(self) -> None:
        self.reason: str | None = None

    def note(self, signum: int, frame: FrameType | None) -> None:
        self.reason = self.reason or self.REASONS[signum]

    def check(self) -> None:
        if self.reason is not None:
            raise Stopped(self.reason)


@contextmanager
def _stop_on_signals() -> Iterator[StopRequest]:
    """Note Ctrl-C and SIGTERM in a `StopRequest` (ray.init replaces SIGTERM's handler)."""
    import threading

    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    saved = {signum: signal.signal(signum, request.note) for signum in StopRequest.REASONS}
    try:
        yield request
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
