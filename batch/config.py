"""Configuration of `polyp-rt batch` (light: no heavy imports).

The pipeline options a batch shares with `polyp-rt run` (model, backend, threshold, the
overlay and its polyp indicator) are taken from `RunConfig` and `OverlayConfig`, so their
defaults, help and ranges are written once, and `BatchConfig.run_config()` hands them on whole:
every video runs that `RunConfig`, with only its source and its folder set per video.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyp_rt.core.options import option
from polyp_rt.evaluation.config import MetricsConfig, parse_gates
from polyp_rt.realtime.config import OverlayConfig, RunConfig, model_to_run, run_config_of

if TYPE_CHECKING:
    from polyp_rt.batch.truth import Scoring

# options of a batch that share a name with one of RunConfig but are not the pipeline's
NOT_PIPELINE = frozenset({"truth"})
# each video's outputs, relative to its folder (RunConfig.record and .masks_out of its pipeline)
RECORDING = Path("annotated.mp4")
MASKS = Path("masks")


def as_in_run(name: str) -> Any:
    """A field with `RunConfig.<name>`'s default, help, range and flag."""
    run_field = RunConfig.__dataclass_fields__[name]
    return field(default=run_field.default, metadata=run_field.metadata)


@dataclass
class BatchConfig:
    inputs: list[Path] = option(
        [],
        "video files, folders (searched for videos, sub-folders too) or text files (.txt, .list) "
        "listing one path per line; each video is named as given (a symbolic link after itself); "
        "what is not a regular file (a FIFO, a device, a broken link) and the outputs of earlier "
        "batches (a folder holding a polyp-rt manifest.json) are skipped, each with one line",
        flag="inputs",
        nargs="+",
        metavar="INPUT",
    )
    out: Path | None = option(
        None,
        "output folder: one sub-folder per video, summary.csv, report.html, manifest.json (a "
        "manifest naming a folder outside DIR, e.g. ../x, is refused and nothing is touched); "
        "files are made with the permissions your umask gives",
        flag=("-o", "--out"),
        metavar="DIR",
        required=True,
    )
    model: Path | None = as_in_run("model")
    backend: str = as_in_run("backend")
    device: str | None = as_in_run("device")
    fp16: bool = as_in_run("fp16")
    cuda_graph: bool = as_in_run("cuda_graph")
    threshold: float | None = as_in_run("threshold")
    smoothing: float = as_in_run("smoothing")
    record: bool = option(False, "also write each video's annotated recording (annotated.mp4)")
    masks: bool = option(False, "also write each video's masks (masks/000000.png, ...)")
    truth: Path | None = option(
        None,
        "score each video as CADe systems are judged (lesions found, time to first detection, "
        "false alarms per minute) against its truth: DIR/<video name without suffix>/000000.png ... "
        "(or DIR/<name>_masks/, as `polyp-rt synth --video` writes it); keeps each video's masks "
        "(as --masks); a changed truth is scored again without running the model",
        metavar="DIR",
    )
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    gates: list[str] = option(
        [],
        "--truth: also score these alert gates, replayed over the masks, as MIN_FRAMES:HOLD "
        "(more points on the report's plot)",
        nargs="+",
        metavar="N:M",
    )
    in_process: bool = option(
        False,
        "run the videos one after another in this process, without Ray: nothing to start (about 5 s "
        "sooner), Ray need not be installed; a video that crashes the process ends the batch (run it "
        "again: finished videos are kept); not with --ray-address, --workers or --gpus-per-task",
    )
    ray_address: str | None = option(
        None,
        "join a running Ray cluster: auto (the cluster this machine belongs to), HOST:PORT or "
        "ray://HOST:PORT (default: start Ray on this machine, on 127.0.0.1 only)",
        metavar="ADDRESS",
    )
    workers: int | None = option(
        None,
        "videos processed at the same time (default: as many as the cluster's CPUs, or GPUs with "
        "--gpus-per-task, allow)",
        metavar="N",
        low=1,
        high=100_000,
    )
    cpus_per_task: float = option(
        2.0,
        "CPUs each video's task asks Ray for; also its inference threads on a CPU (2: one video's "
        "two requests in flight overlap its decoding and drawing, measured faster on two cores than "
        "two videos of one CPU each)",
        metavar="F",
        low=0.0,
        high=1024.0,
        low_open=True,
    )
    gpus_per_task: float = option(
        0.0,
        "GPUs each video's task asks Ray for (1: a GPU each; 0.5: two videos share one; 0: CPU only)",
        metavar="F",
        low=0.0,
        high=64.0,
    )
    retries: int = option(
        3, "times Ray reruns a video whose worker process died (killed, out of memory)", low=0, high=100
    )
    overlay: OverlayConfig = field(default_factory=OverlayConfig)

    def run_config(self) -> RunConfig:
        """The pipeline every video runs: each option this batch has under a `RunConfig` name is
        that option (`as_in_run`, the overlay), the rest are RunConfig's defaults; headless, with
        as many inference threads as the task has CPUs (on a CPU), the model settled (without
        --model the bundled one for the task's device: INT8 for a task without a GPU), and the
        recording and masks (if asked) named relative to the video's folder. `source` is set per
        video."""
        on_cpu = self.gpus_per_task == 0  # a task without a GPU runs on the CPU
        device = self.device or ("cpu" if on_cpu else None)
        return run_config_of(
            self,
            leave=NOT_PIPELINE,
            model=model_to_run(self.model, self.backend, device).resolve(),
            record=RECORDING if self.record else None,  # here a yes or no: the file is each video's
            masks_out=MASKS if self.masks or self.truth else None,  # the truth is scored on them
            threads=max(1, round(self.cpus_per_task)) if on_cpu else None,
            headless=True,
        )

    def scoring(self) -> Scoring:
        """How the videos are scored against their truth (each video's folder set by pairing)."""
        from polyp_rt.batch.truth import Scoring

        overlay = self.overlay
        return Scoring(
            truth=None,
            min_area=overlay.min_area,
            metrics=self.metrics,
            gate=(overlay.alert_min_frames, overlay.alert_hold),
            gates=tuple(parse_gates(self.gates)),
        )
