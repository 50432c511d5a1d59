"""How the videos' tasks run: as Ray tasks, at most `workers` at a time (`run_on_ray`), or one
after another in the driver's own process (`run_here`, --in-process). Both yield each video's
`VideoResult` as it arrives and pass the workers' progress events to `report`; the driver
(batch/runner.py) does everything else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from contextlib import suppress
from types import ModuleType
from typing import Any

from polyp_rt.batch.config import BatchConfig
from polyp_rt.batch.events import Event
from polyp_rt.batch.worker import VideoJob, VideoResult
from polyp_rt.core.errors import PolypRtError
from polyp_rt.core.signals import SignalWatch

log = logging.getLogger(__name__)

WAIT_S = 0.25  # the driver's longest wait for an event before it looks at the tasks again
CANCEL_WAIT_S = 10.0  # after Ctrl-C: how long the cancelled tasks get to stop


def check_fits(config: BatchConfig, largest_cpus: float | None) -> None:
    """A CPU task that no node can hold would wait forever: one line instead."""
    if config.gpus_per_task == 0 and largest_cpus is not None and largest_cpus < config.cpus_per_task:
        raise PolypRtError(
            f"--cpus-per-task {config.cpus_per_task:g}: no node of the Ray cluster has that many CPUs "
            f"(the largest has {largest_cpus:g}); pass --cpus-per-task {max(largest_cpus, 1.0):g}"
        )


def fitting_workers(resources: dict[str, float], config: BatchConfig) -> int:
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


def run_on_ray(
    ray: ModuleType,
    config: BatchConfig,
    jobs: dict[str, VideoJob],
    workers: int,
    report: Callable[[Event], None],
    stop: SignalWatch,
) -> Generator[VideoResult, None, None]:
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
                report(event)
    finally:
        with suppress(Exception):  # Ray itself may be what failed: the first error is the one to report
            for ref in running:
                ray.cancel(ref)
            if running:
                ray.wait(list(running), num_returns=len(running), timeout=CANCEL_WAIT_S)
            events.shutdown(force=True)


def video_task(job: VideoJob, events: Any) -> VideoResult:
    """The Ray task: one video (runs on a worker; `events` is the driver's bounded queue)."""
    from polyp_rt.batch.worker import next_attempt, process_video, rescore_video

    if job.rescore:
        return rescore_video(job)
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


def _result_of(ray: ModuleType, ref: Any, job: VideoJob) -> VideoResult:
    """A task's result; a task that failed in Ray (its retries used up, a bug) as a failed result."""
    try:
        value: VideoResult = ray.get(ref)
        return value
    except Exception as exc:
        crashed = type(exc).__name__ in ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError")
        text = str(exc).strip().splitlines()
        cause = text[-1] if text else type(exc).__name__
        return VideoResult.failed(job, f"{type(exc).__name__}: {cause}", internal=not crashed)


def run_here(
    jobs: list[VideoJob], report: Callable[[Event], None], stop: SignalWatch
) -> Generator[VideoResult, None, None]:
    """--in-process: one video after another in this process. A signal during a video stops its
    pipeline (which watches the signals while it runs) and comes out of it as `Stopped`."""
    from polyp_rt.batch.worker import next_attempt, process_video, rescore_video

    for job in jobs:
        stop.check()
        if job.rescore:
            yield rescore_video(job)
        else:
            yield process_video(job, next_attempt(job.work_root, job.name), report, stop.check)
