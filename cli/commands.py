"""Handlers of the offline subcommands: train, eval, synth, export, build."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from polyp_rt.cli.report import benchmark_table, console, facts_table
from polyp_rt.core.errors import PolypRtError
from polyp_rt.core.files import to_json
from polyp_rt.core.locks import held_folder
from polyp_rt.core.paths import Place, check_new, check_paths
from polyp_rt.export.config import BuildConfig, ExportConfig, QuantizeConfig
from polyp_rt.realtime.config import model_to_run
from polyp_rt.train.config import EvalConfig, SynthConfig, TrainConfig

log = logging.getLogger(__name__)


def train_command(config: TrainConfig) -> int:
    from polyp_rt.train.trainer import train

    summary = train(config)
    rows: dict[str, object] = {
        "epochs": summary["epochs_run"],
        "minutes": f"{summary['minutes']:.1f}",
        "best validation Dice (model size; mean over the data sets)": f"{summary['best_val_dice']:.4f}",
    }
    console.print(facts_table(f"training finished: {summary['run']}", rows))
    if summary["test"]:
        tested = {name: {**result, "which": "its test split"} for name, result in summary["test"].items()}
        console.print(benchmark_table("best.pt on the test splits (full size)", tested))
    run = Path(summary["run"])
    console.print(
        f"wrote {run / 'best.pt'}, last.pt, split.json, metrics.jsonl, curves.png, test_metrics.json"
    )
    return 0


def eval_command(config: EvalConfig) -> int:
    from polyp_rt.cli.config import EvalCommandConfig
    from polyp_rt.train.evaluate import evaluate_mask_folders

    if isinstance(config, EvalCommandConfig) and config.scores_a_video():
        from polyp_rt.cli.video_eval import video_eval_command

        return video_eval_command(config)

    if config.masks or config.truth:
        if not (config.masks and config.truth):
            raise PolypRtError("--masks and --truth go together: predicted masks and ground-truth masks")
        result = evaluate_mask_folders(config.masks, config.truth)
        results = {str(config.masks): {**result, "data": str(config.truth)}}
        title = f"{config.masks} against {config.truth}"
    else:
        if not config.data:
            raise PolypRtError("pass --data DIR [--model M] (or --masks DIR --truth DIR)")
        config = replace(config, model=model_to_run(config.model, config.backend, config.device))
        results = evaluate_data_sets(config)
        title = f"{config.model}" + (" with flip TTA" if config.tta else "")
    if config.json:
        for result in results.values():
            print(to_json(result))
        return 0
    console.print(benchmark_table(title, results))
    return 0


def evaluate_data_sets(config: EvalConfig) -> dict[str, dict[str, object]]:
    """Each --data folder scored with one engine, by a short name (the folder's)."""
    from polyp_rt.core.progress import progress_bar
    from polyp_rt.engines.registry import open_engine
    from polyp_rt.train.evaluate import evaluate_engine, select_pairs

    assert config.model is not None
    chosen = [
        (data, *select_pairs(data, config.split, config.model, config.split_file, config.skip_bad))
        for data in config.data
    ]
    names = [data.resolve().name for data in config.data]
    results: dict[str, dict[str, object]] = {}
    with (
        open_engine(config.model, config.backend, config.device, fp16=config.fp16) as engine,
        progress_bar() as bar,
    ):
        for (data, pairs, which, skipped), name in zip(chosen, names, strict=True):
            if names.count(name) > 1:
                name = f"{data.resolve().parent.name}/{name}"
            task = bar.add_task(f"eval on {name}", total=len(pairs), status="")
            started = time.monotonic()
            result = evaluate_engine(engine, pairs, config.threshold, partial(bar.advance, task), config.tta)
            ms = 1000 * (time.monotonic() - started) / max(1, len(pairs))
            results[name] = {
                "name": name,
                "data": str(data),
                "which": which,
                **result,
                "skipped": skipped,
                "backend": engine.describe(),
                "tta": config.tta,
                "ms_per_image": round(ms, 2),
            }
    return results


def synth_command(config: SynthConfig) -> int:
    from polyp_rt.core.progress import progress_bar
    from polyp_rt.train import scenes, synthetic

    if bool(config.out) == bool(config.video):
        raise PolypRtError("pass either --out DIR (a data set) or --video OUT.mp4 (a clip)")
    synthetic.check_synth_outputs(config)  # before anything is read or written
    if config.out:
        with progress_bar() as bar:
            task = bar.add_task("synthetic images", total=config.count, status="")
            synthetic.write_dataset(
                config.out, config.count, config.size, config.seed, lambda n: bar.advance(task, n)
            )
        console.print(f"wrote {config.count} image/mask pairs to {config.out}/images and {config.out}/masks")
        return 0

    from polyp_rt.realtime.recorder import Recorder

    width, height = config.width - config.width % 2, config.height - config.height % 2
    if (width, height) != (config.width, config.height):  # the clip and its masks stay the same size
        log.warning(
            "--width %d --height %d: the clip and its masks are %dx%d (H.264 yuv420p needs even sizes)",
            config.width,
            config.height,
            width,
            height,
        )
    per_image = 0  # frames of one still (--from-images): its polyp frames are one lesion
    if config.from_images:
        clip: Any = synthetic.PanZoomClip(
            config.from_images,
            width,
            height,
            config.seed,
            config.fps,
            config.seconds_per_image,
            config.pairs,
            config.gap_seconds,
        )
        frames, per_image = len(clip), clip.period
    else:
        clip = scenes.SyntheticClip(width, height, config.seed, config.fps)
        frames = config.frames
    assert config.video is not None
    masks_dir = synthetic.clip_masks_dir(config.video)
    polyp_frames: list[int] = []
    with (
        held_folder(masks_dir, "the clip's masks folder"),
        Recorder(config.video, width, height, config.fps) as recorder,
        progress_bar() as bar,
    ):
        synthetic.remove_own(masks_dir, synthetic.CLIP_MASK_NAME)  # an earlier clip's (--overwrite)
        task = bar.add_task("synthetic clip", total=frames, status="")
        for index in range(frames):
            rgb, mask = clip.frame(index)
            recorder.write(rgb, index / config.fps)
            synthetic.save_frame_mask(masks_dir, index, mask)
            if mask.any():
                polyp_frames.append(index)
            bar.advance(task, 1)
    write_clip_truth(config.video, masks_dir, frames, config.fps, (width, height), polyp_frames, per_image)
    console.print(
        f"wrote {config.video} ({frames} frames, {config.fps:g} fps, {recorder.codec}) and {masks_dir}/"
    )
    return 0


def write_clip_truth(
    video: Path,
    masks_dir: Path,
    frames: int,
    fps: float,
    size: tuple[int, int],
    polyp_frames: list[int],
    per_image: int,
) -> None:
    """masks_dir/truth.json: which video the masks are of and, for a clip over stills, one lesion per
    still (its first and last frame with a polyp): consecutive stills are different polyps."""
    from polyp_rt.evaluation.truth import TruthInfo, sha256_of, write_truth_info

    lesions = None
    if per_image:
        spans: dict[int, list[int]] = {}
        for index in polyp_frames:
            spans.setdefault(index // per_image, []).append(index)
        lesions = tuple((f[0], f[-1]) for f in spans.values())
    info = TruthInfo(video.name, sha256_of(video), frames, fps, size[0], size[1], lesions)
    write_truth_info(masks_dir, info)


def export_command(config: ExportConfig) -> int:
    from polyp_rt.export.onnx_export import export_onnx

    assert config.checkpoint is not None and config.output is not None  # required flags
    check_paths([Place("--checkpoint", config.checkpoint)], [Place("--output", config.output)])
    check_new(Place("--output", config.output), config.overwrite)
    with console.status(f"exporting {config.checkpoint} to ONNX and verifying it"):
        report = export_onnx(config)
    rows = {
        "size": f"{report.bytes / 1e6:.1f} MB",
        "opset": report.opset,
        "precision": report.precision,
        "batch": "dynamic" if report.dynamic_batch else "1",
        "max |ONNX Runtime - torch| logits": f"{report.max_abs_diff:.2e}",
        "mask Dice vs torch FP32": "- (neither marks a pixel)"
        if report.mask_dice is None
        else f"{report.mask_dice:.5f}",
        "seconds": f"{report.seconds:.1f}",
    }
    console.print(facts_table(f"exported {report.path}", rows))
    return 0


def quantize_command(config: QuantizeConfig) -> int:
    from polyp_rt.core.progress import progress_bar
    from polyp_rt.export.int8 import quantize_int8

    assert config.onnx is not None and config.output is not None and config.calibrate is not None
    check_paths(
        [Place("--onnx", config.onnx), Place("--calibrate", config.calibrate)],
        [Place("--output", config.output)],
    )
    check_new(Place("--output", config.output), config.overwrite)
    with progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(f"{stage} ({total} images)", total=total, status="")
            bar.update(tasks[stage], completed=done)

        report = quantize_int8(config, progress=progress)
    if config.json:
        print(to_json(report.to_json()))
        return 0
    rows = {
        "size": f"{report.bytes / 1e6:.1f} MB (FP32 {report.fp32_bytes / 1e6:.1f} MB)",
        "images": report.how,
        "INT8 vs FP32 masks, Dice over all held-out pixels": f"{report.mask_dice:.4f}",
        "the same per image: mean / min": f"{report.mask_dice_mean:.4f} / {report.mask_dice_min:.4f}",
    }
    if report.dataset_dice_fp32 is not None and report.dataset_dice_int8 is not None:
        rows["Dice against the truth: FP32 / INT8"] = (
            f"{report.dataset_dice_fp32:.4f} / {report.dataset_dice_int8:.4f} (drop {report.dataset_dice_drop:.4f})"
        )
    rows["seconds"] = f"{report.seconds:.0f}"
    console.print(facts_table(f"quantized {report.path} (INT8, verified)", rows))
    return 0


def build_command(config: BuildConfig) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from polyp_rt.engines.sidecar import sidecar_path
    from polyp_rt.export.trt_build import build_engine

    assert config.onnx is not None and config.output is not None  # required flags
    outputs = [Place("--output", config.output), Place("its sidecar", sidecar_path(config.output))]
    if config.timing_cache:  # read if present, and written back
        outputs.append(Place("--timing-cache", config.timing_cache))
    check_paths([Place("--onnx", config.onnx)], outputs)
    for place in outputs[:2]:  # the timing cache is meant to be written back
        check_new(place, config.overwrite)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("TensorRT build", total=1.0)

        def progress(phase: str, fraction: float) -> None:
            bar.update(task, description=f"TensorRT: {phase}", completed=fraction)

        sidecar = build_engine(config, progress)
    keys = ("tensorrt_version", "gpu_name", "compute_capability", "precision", "input_shape", "profile")
    console.print(facts_table(f"built {config.output}", {key: sidecar.get(key) for key in keys}))
    console.print(f"wrote {config.output} and {config.output}.json")
    return 0
