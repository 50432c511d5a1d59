"""FP32 ONNX -> INT8 ONNX: static quantisation calibrated on real images, verified against FP32.

ONNX Runtime's static quantiser writes a QDQ graph (QuantizeLinear/DequantizeLinear pairs
around every convolution, resize, concat and add): INT8 weights per output channel,
activations as UINT8 with ranges from MinMax calibration. The first and the last convolution
stay FP32 (`edge_convolutions`): for the EfficientNet-Lite0 model, whose activations reach ~70,
quantising them too moved the masks to Dice 0.975 against FP32 on PolypGen val (below the
gate) whatever the number of calibration images; kept in FP32, 0.982. ONNX Runtime runs it
with its integer kernels and OpenVINO reads it as an INT8 model. The images run through the
project's own preprocessing, so the calibrated ranges are the ones the live loop produces.

The images of the calibration folder are split, with a seed, into a calibration set and a
disjoint held-out set (a train/val/test folder: train calibrates, val verifies). On the
held-out images the INT8 file must give the FP32 file's masks (ONNX Runtime CPU, masks at
each image's own size): Dice >= 0.98 over all their pixels, else the file is not written
and ModelError says so. Both models must give finite logits, and at least one of them must
mark some pixel: two empty masks agree on nothing. The report also gives the mean and the minimum of the per-image
Dice, and, where the held-out images have masks, both models' Dice against the truth.

Why all pixels and not the per-image mean: an image whose FP32 mask is a speck of a few
hundred pixels scores 0 when INT8 moves the speck, so the per-image mean swings by 0.01
to 0.03 between equally good quantisations (0.949 to 0.982 on PolypGen val for the earlier
MobileNetV2 demo model, whose pixel Dice stayed at 0.988 to 0.992 and whose data-set Dice
moved by < 0.01).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from polyp_rt.core.errors import DataError, ModelError, PolypRtError
from polyp_rt.core.files import IMAGE_SUFFIXES, image_files
from polyp_rt.core.paths import make_parent
from polyp_rt.engines.backends.onnxruntime_backend import OnnxRuntimeEngine
from polyp_rt.engines.base import Engine
from polyp_rt.engines.contract import ModelContract, contract_from_onnx, model_file, write_onnx_contract
from polyp_rt.engines.imaging import mask_at, preprocess
from polyp_rt.export.config import QuantizeConfig
from polyp_rt.export.onnx_export import mask_dice
from polyp_rt.train.data import LAYOUTS, detect_layout, read_mask, read_rgb, scan_folder
from polyp_rt.train.metrics import MetricSet

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage: "calibrate" or "verify", done, total)


@dataclass(frozen=True)
class CalibrationSplit:
    """Which images calibrate and which verify (disjoint), and a sentence saying so."""

    calibration: list[Path]
    verification: list[tuple[Path, Path | None]]  # (image, its mask where the data set has one)
    how: str  # e.g. "calibrated on 200 of 1237 images in train/, verified on 100 of 150 in val/"


@dataclass
class Int8Report:
    """What `quantize_int8` wrote, on which images, and how well INT8 agreed with FP32."""

    path: Path
    bytes: int
    fp32_bytes: int
    calibration_images: int
    verification_images: int
    how: str
    settings: dict[str, Any]
    mask_dice: float  # INT8 masks against FP32 masks over all pixels of the held-out images (the gate)
    mask_dice_mean: float  # the same per image: mean and minimum
    mask_dice_min: float
    dataset_dice_fp32: float | None  # mean per-image Dice against the truth (None: no masks)
    dataset_dice_int8: float | None
    seconds: float

    @property
    def dataset_dice_drop(self) -> float | None:
        """FP32's Dice against the truth minus INT8's (None without ground truth)."""
        if self.dataset_dice_fp32 is None or self.dataset_dice_int8 is None:
            return None
        return self.dataset_dice_fp32 - self.dataset_dice_int8

    def to_json(self) -> dict[str, object]:
        """Strict JSON (None where there is no ground truth, never NaN)."""
        return {
            **{k: v for k, v in dataclasses.asdict(self).items() if k != "path"},
            "path": str(self.path),
            "dataset_dice_drop": self.dataset_dice_drop,
        }


def _shuffled(items: Sequence[Any], seed: int) -> list[Any]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def calibration_split(
    folder: Path, images: int = 200, verify_images: int = 100, seed: int = 0
) -> CalibrationSplit:
    """Disjoint calibration and verification images from a data folder or a plain folder of images.

    Kvasir/CVC layouts and plain folders are shuffled with `seed`; the first `verify_images`
    (at most half) are held out, the next `images` calibrate. A train/val/test folder
    calibrates on `images` of train/ and verifies on `verify_images` of val/.
    """
    if images < 1 or verify_images < 1:
        raise PolypRtError(
            f"calibration images ({images}) and verification images ({verify_images}) must be >= 1"
        )
    folder = Path(folder)
    try:
        layout = detect_layout(folder)
    except DataError:
        layout = "plain"
    if layout == "plain" and (folder / "train").is_dir():
        layout = "split"  # train/ + val/ is enough here; test/ is not used
    if layout == "split":
        val = folder / "val" if (folder / "val").is_dir() else folder / "valid"
        if not val.is_dir():
            raise DataError(f"{folder}: has train/ but no val/ (or valid/) folder to verify on")
        train_images = image_files(folder / "train" / LAYOUTS[detect_layout(folder / "train")][0])
        held_out = [(p.image, p.mask) for p in scan_folder(val).pairs]
        calibration = sorted(_shuffled(train_images, seed)[:images])
        verification = sorted(_shuffled(held_out, seed)[:verify_images])
        how = (
            f"calibrated on {len(calibration)} of {len(train_images)} images in {folder.name}/train, "
            f"verified on {len(verification)} of {len(held_out)} in {folder.name}/{val.name}"
        )
        if not calibration:
            raise DataError(f"{folder / 'train'}: no images to calibrate on")
        return CalibrationSplit(calibration, verification, how)

    pairs: list[tuple[Path, Path | None]]
    if layout == "plain":
        pairs = [(p, None) for p in image_files(folder)]
    else:
        pairs = [(p.image, p.mask) for p in scan_folder(folder).pairs]
    if len(pairs) < 2:
        raise DataError(
            f"{folder}: {len(pairs)} image(s) found; INT8 calibration needs at least 2 (some to calibrate on, "
            f"others to verify on): pass a data folder (images/ + masks/, or train/val/test) or a folder of "
            f"{'/'.join(IMAGE_SUFFIXES)} images"
        )
    order = _shuffled(pairs, seed)
    n_verify = min(verify_images, len(order) // 2)
    verification = sorted(order[:n_verify])
    calibration = sorted(p for p, _ in order[n_verify : n_verify + images])
    how = (
        f"{len(order)} images in {folder.name} (seed {seed}): calibrated on {len(calibration)}, "
        f"verified on {len(verification)} others"
    )
    return CalibrationSplit(calibration, verification, how)


class _ImageReader:
    """onnxruntime.quantization's CalibrationDataReader: one preprocessed image per call."""

    def __init__(self, paths: list[Path], contract: ModelContract, progress: Progress | None) -> None:
        self.paths, self.contract, self.progress, self.done = paths, contract, progress, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next preprocessed image as the model's input, or None after the last."""
        if self.done == len(self.paths):
            return None
        x = preprocess(read_rgb(self.paths[self.done]), self.contract)[None]
        self.done += 1
        if self.progress:
            self.progress("calibrate", self.done, len(self.paths))
        return {self.contract.input_name: x}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def quantize_int8(
    settings: QuantizeConfig,
    *,
    activations: Literal["uint8", "int8"] = "uint8",
    progress: Progress | None = None,
) -> Int8Report:
    """Quantise a project FP32 ONNX file (`settings.onnx`) to INT8 as `polyp-rt quantize`'s flags
    say, calibrated and verified on the images of `settings.calibrate`.

    `activations`: uint8 (the default: ONNX Runtime's fast U8S8 kernels, and what OpenVINO
    reproduces best) or int8. `settings.min_dice`: the verification gate, INT8 masks against
    FP32 masks over all held-out pixels.
    """
    import onnx

    started = time.monotonic()
    if settings.onnx is None or settings.output is None or settings.calibrate is None:
        raise PolypRtError("quantising needs an ONNX file, an output path and a calibration folder")
    fp32_onnx, output, calibrate = model_file(settings.onnx), Path(settings.output), Path(settings.calibrate)
    min_mask_dice = settings.min_dice
    contract = _checked_inputs(fp32_onnx, output, activations, min_mask_dice)
    split = calibration_split(calibrate, settings.images, settings.verify_images, settings.seed)
    log.info("INT8: %s", split.how)
    recipe = {
        "format": "QDQ",
        "weights": "int8, symmetric, per channel",
        "activations": f"{activations}, asymmetric, per tensor",
        "calibration": "MinMax",
        "kept in FP32": "the first and the last convolution",
    }

    make_parent(output, "--output")
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".int8-") as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / output.name
        _prepare(fp32_onnx, prepared)
        _quantize(
            prepared, quantized, _ImageReader(split.calibration, contract, progress), activations, fp32_onnx
        )
        proto = onnx.load(str(quantized))
        write_onnx_contract(proto, dataclasses.replace(contract, precision="int8"))
        onnx.save(proto, str(quantized))
        onnx.checker.check_model(str(quantized))

        check = verify_int8(fp32_onnx, quantized, contract, split.verification, progress)
        n = len(split.verification)
        log.info(
            "INT8 vs FP32 masks on %d held-out images: Dice %.4f (per image: mean %.4f, min %.4f)",
            n,
            check.mask_dice,
            check.mask_dice_mean,
            check.mask_dice_min,
        )
        _gate(check, output, f"{n} held-out images of {calibrate}", min_mask_dice)
        os.replace(quantized, output)

    return Int8Report(
        path=output,
        bytes=output.stat().st_size,
        fp32_bytes=fp32_onnx.stat().st_size,
        calibration_images=len(split.calibration),
        verification_images=n,
        how=split.how,
        settings=recipe,
        mask_dice=check.mask_dice,
        mask_dice_mean=check.mask_dice_mean,
        mask_dice_min=check.mask_dice_min,
        dataset_dice_fp32=check.dataset_dice_fp32,
        dataset_dice_int8=check.dataset_dice_int8,
        seconds=time.monotonic() - started,
    )


def _checked_inputs(fp32_onnx: Path, output: Path, activations: str, min_mask_dice: float) -> ModelContract:
    """The FP32 model's contract, once the arguments are sound and the model gives finite logits."""
    if output.suffix.lower() != ".onnx":
        raise PolypRtError(f"{output}: the INT8 model is an .onnx file")
    if output.resolve() == fp32_onnx.resolve():
        raise PolypRtError(f"{output}: the INT8 model would overwrite its FP32 input; pick another name")
    if activations not in ("uint8", "int8"):
        raise PolypRtError(f"activations {activations!r}: use uint8 or int8")
    if not 0.0 <= min_mask_dice <= 1.0:
        raise PolypRtError(f"minimum mask Dice {min_mask_dice}: use a value from 0 to 1")
    contract = contract_from_onnx(fp32_onnx)
    if contract.precision != "fp32":
        raise ModelError(
            f"{fp32_onnx}: its weights are {contract.precision}; quantise the FP32 export "
            "(`polyp-rt export` without --fp16)"
        )
    with OnnxRuntimeEngine(fp32_onnx, "cpu") as fp32:
        fp32.probe(str(fp32_onnx))  # an FP32 model that gives NaN is refused before calibrating
    return contract


def _prepare(fp32_onnx: Path, prepared: Path) -> None:
    """ONNX Runtime's pre-processing for quantisation (shape inference, folding)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(fp32_onnx), str(prepared))
    except Exception as exc:  # symbolic shape inference fails on some graphs; ONNX's own suffices
        log.info("INT8: symbolic shape inference failed (%s); using ONNX shape inference", _first_line(exc))
        try:
            quant_pre_process(str(fp32_onnx), str(prepared), skip_symbolic_shape=True)
        except Exception as exc2:
            raise ModelError(
                f"{fp32_onnx}: ONNX Runtime cannot prepare it for quantisation ({_first_line(exc2)})"
            ) from exc2


def _quantize(prepared: Path, quantized: Path, reader: _ImageReader, activations: str, source: Path) -> None:
    """Static QDQ quantisation: int8 per-channel weights, MinMax-calibrated activations, the first
    and last convolutions kept in FP32."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    try:
        quantize_static(
            str(prepared),
            str(quantized),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8 if activations == "uint8" else QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=edge_convolutions(prepared),
        )
    except PolypRtError:
        raise
    except Exception as exc:  # the quantiser raises ValueError, RuntimeError, ORT errors...
        raise ModelError(f"{source}: INT8 quantisation failed ({_first_line(exc)})") from exc


def _gate(check: Int8Check, output: Path, images: str, min_mask_dice: float) -> None:
    """ModelError unless the INT8 masks agree with FP32's on `images` at `min_mask_dice` or better,
    and some pixel is marked at all (two empty masks agree on nothing)."""
    if check.marked == 0:
        raise ModelError(
            f"{output}: INT8 verification failed, neither the FP32 nor the INT8 model marks a single pixel "
            f"on the {images}, so their agreement (Dice 1 of empty masks) says nothing; verify on images "
            "that show polyps"
        )
    if check.mask_dice < min_mask_dice:
        truth = (
            f", data-set Dice {check.dataset_dice_fp32:.3f} FP32 -> {check.dataset_dice_int8:.3f} INT8"
            if check.dataset_dice_fp32 is not None and check.dataset_dice_int8 is not None
            else ""
        )
        raise ModelError(
            f"{output}: INT8 verification failed, its masks agree with FP32 at Dice {check.mask_dice:.3f} "
            f"(needed >= {min_mask_dice}; per image mean {check.mask_dice_mean:.3f}{truth}) on {images}; "
            "calibrate on more images like the ones the model will see, or run the FP32 model"
        )


@dataclass(frozen=True)
class Int8Check:
    """INT8 against FP32 masks on the held-out images (and both against the truth where known)."""

    marked: int  # pixels either model marks, over all held-out images (0: nothing to compare)
    mask_dice: float
    mask_dice_mean: float
    mask_dice_min: float
    dataset_dice_fp32: float | None
    dataset_dice_int8: float | None


def verify_int8(
    fp32_onnx: Path,
    int8_onnx: Path,
    contract: ModelContract,
    held_out: list[tuple[Path, Path | None]],
    progress: Progress | None = None,
) -> Int8Check:
    """INT8 masks against FP32 masks (and both against the truth where there is one), ONNX Runtime CPU."""
    dices: list[float] = []
    overlap = marked = 0
    truth_fp32, truth_int8 = MetricSet(), MetricSet()
    with OnnxRuntimeEngine(fp32_onnx, "cpu") as fp32, OnnxRuntimeEngine(int8_onnx, "cpu") as int8:
        for done, (image, mask_path) in enumerate(held_out, 1):
            rgb = read_rgb(image)
            h, w = rgb.shape[:2]
            x = preprocess(rgb, contract)[None]
            a, b = (
                _mask(engine, x, h, w, contract, image, what)
                for engine, what in ((fp32, fp32_onnx), (int8, "its INT8 model"))
            )
            dices.append(mask_dice(a, b))
            overlap += 2 * int(np.count_nonzero(a & b))
            marked += int(np.count_nonzero(a)) + int(np.count_nonzero(b))
            if mask_path is not None:
                truth = read_mask(mask_path)
                truth_fp32.add(a, truth)
                truth_int8.add(b, truth)
            if progress:
                progress("verify", done, len(held_out))
    with_truth = bool(truth_fp32.per_image)
    return Int8Check(
        marked,
        overlap / marked if marked else 1.0,
        float(np.mean(dices)),
        float(np.min(dices)),
        float(truth_fp32.summary()["dice"]) if with_truth else None,  # type: ignore[arg-type]
        float(truth_int8.summary()["dice"]) if with_truth else None,  # type: ignore[arg-type]
    )


def _mask(
    engine: Engine, x: np.ndarray, h: int, w: int, contract: ModelContract, image: Path, what: object
) -> np.ndarray:
    """The engine's boolean mask at h x w for the batch `x`; ModelError if its logits are not finite."""
    logits = engine.infer(x)[0]
    if not np.isfinite(logits).all():
        raise ModelError(
            f"{what}: INT8 verification failed, its logits on {image.name} are NaN or infinite, so its "
            "masks would be empty; quantise a model whose FP32 file runs (`polyp-rt eval` scores it)"
        )
    return mask_at(logits, h, w, contract.threshold).astype(bool)


def edge_convolutions(model: Path) -> list[str]:
    """The first and the last convolution of the graph: the stem sees raw pixels and the head
    decides the mask's edge, the two places where INT8 rounding costs the most; they stay FP32."""
    import onnx

    convs = [node.name for node in onnx.load(str(model)).graph.node if node.op_type == "Conv"]
    return [convs[0], convs[-1]] if len(convs) > 1 else convs
