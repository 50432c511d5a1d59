"""Checkpoint -> ONNX with the model contract in its metadata, checked and verified.

Verification runs the same inputs through torch and an ONNX Runtime CPU session:
both must give finite logits; FP32 must agree to 1e-4 in the logits (relative to the largest
logit where that exceeds 1: float sums in another order differ by more on a model with logits
of 30), FP16 must give the same masks (Dice >= 0.999 on each input where either marks a pixel,
and some pixel marked: two empty masks agree on nothing).
A failed verification is an error: the file is removed.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx
    import torch

from polyp_rt.core.errors import ModelError, PolypRtError
from polyp_rt.core.paths import make_parent
from polyp_rt.engines.checkpoint import load_checkpoint, sha256_file
from polyp_rt.engines.contract import ModelContract, write_onnx_contract
from polyp_rt.engines.imaging import preprocess, sigmoid
from polyp_rt.export.config import ExportConfig

log = logging.getLogger(__name__)

FP32_MAX_DIFF = 1e-4
FP16_MIN_MASK_DICE = 0.999
MIN_OPSET = 16  # the lowest the exporter's converter reaches from its native 18 for our models


@dataclass
class ExportReport:
    """What `export_onnx` wrote and how well it agreed with torch."""

    path: Path
    bytes: int
    opset: int
    precision: str
    dynamic_batch: bool
    max_abs_diff: float
    mask_dice: float | None  # the least over the verification inputs; None: neither side marked a pixel
    seconds: float


def verification_inputs(contract: ModelContract, batch: int) -> dict[str, np.ndarray]:
    """A random batch and a batch of synthetic colonoscopy frames, normalised as the contract says."""
    from polyp_rt.train.scenes import synth_image

    rng = np.random.default_rng(0)
    random = rng.standard_normal((batch, 3, contract.height, contract.width)).astype(np.float32)
    scenes = [synth_image(seed, (contract.width, contract.height))[0] for seed in range(batch)]
    real_looking = np.stack([preprocess(rgb, contract) for rgb in scenes])
    return {"random": random, "synthetic scenes": real_looking}


def mask_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 for two empty ones (callers that gate on it check for that)."""
    inter = np.count_nonzero(a & b)
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return 1.0 if total == 0 else 2.0 * inter / total


def export_onnx(settings: ExportConfig) -> ExportReport:
    """Export `settings.checkpoint` to `settings.output` as `polyp-rt export`'s flags say (ONNX with
    the model contract), checked and verified against torch.

    ModelError, with the file removed, when the exporter, onnx.checker or the verification fails.
    """
    import onnx

    started = time.monotonic()
    if settings.checkpoint is None or settings.output is None:
        raise PolypRtError("an export needs a checkpoint and an output path")
    checkpoint, output, opset = Path(settings.checkpoint), Path(settings.output), settings.opset
    fp16, dynamic_batch = settings.fp16, settings.dynamic_batch
    if not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise PolypRtError(
            f"--opset {opset}: the exporter writes opsets {MIN_OPSET} to {onnx.defs.onnx_opset_version()} "
            "(18 natively)"
        )
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model()
    contract = ModelContract.from_dict(
        {**ckpt.contract.to_dict(), "checkpoint_sha256": sha256_file(checkpoint)}, str(checkpoint)
    )
    if output.suffix.lower() != ".onnx":
        raise PolypRtError(f"{output}: the output of export is an .onnx file")
    make_parent(output, "--output")

    _torch_export(model, output, contract, opset, fp16, dynamic_batch, checkpoint)
    proto = onnx.load(str(output))
    written = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if written != opset:
        output.unlink()
        raise ModelError(
            f"{checkpoint}: the exporter could not convert this model to opset {opset} (it wrote {written}); "
            "export with --opset 18, or another opset that it converts to"
        )
    write_onnx_contract(proto, contract)
    if settings.simplify:
        proto = simplify_graph(proto)
    onnx.save(proto, str(output))
    try:
        onnx.checker.check_model(str(output), full_check=True)
    except onnx.checker.ValidationError as exc:
        output.unlink()
        raise ModelError(f"{output}: onnx.checker rejected the export ({str(exc).splitlines()[0]})") from exc

    try:
        max_diff, dice = verify(model, output, contract, fp16, batch=2 if dynamic_batch else 1)
    except ModelError:
        output.unlink()
        raise
    return ExportReport(
        output,
        output.stat().st_size,
        written,
        "fp16" if fp16 else "fp32",
        dynamic_batch,
        max_diff,
        dice,
        time.monotonic() - started,
    )


def _torch_export(
    model: torch.nn.Module,
    output: Path,
    contract: ModelContract,
    opset: int,
    fp16: bool,
    dynamic_batch: bool,
    checkpoint: Path,
) -> None:
    """torch.onnx.export (dynamo) of `model` to `output`; ModelError in one line if the exporter fails."""
    import torch

    dtype = torch.float16 if fp16 else torch.float32
    example = torch.zeros(1, 3, contract.height, contract.width, dtype=dtype)
    dynamic = ({0: torch.export.Dim("N", min=1, max=256)},) if dynamic_batch else None
    converter_log = logging.getLogger("onnxscript.version_converter")
    level = converter_log.level
    converter_log.setLevel(logging.ERROR)  # a failed conversion is checked below, in one line
    try:
        torch.onnx.export(
            copy.deepcopy(model).to(dtype),
            (example,),
            str(output),
            input_names=[contract.input_name],
            output_names=[contract.output_name],
            opset_version=opset,
            dynamo=True,
            external_data=False,
            dynamic_shapes=dynamic,
            verbose=False,
        )
    except Exception as exc:  # the exporter raises many types; the first line says what failed
        raise ModelError(f"{checkpoint}: ONNX export failed ({str(exc).splitlines()[0]})") from exc
    finally:
        converter_log.setLevel(level)


def verify(
    model: object, onnx_path: Path, contract: ModelContract, fp16: bool, batch: int
) -> tuple[float, float | None]:
    """(max abs logit difference, least mask Dice) of ONNX Runtime CPU against torch FP32.

    The Dice is the least over the inputs where either side marks a pixel (None: neither marks
    any). ModelError when a side's logits are not finite, FP32 logits differ beyond the tolerance,
    or FP16 masks disagree or are empty on both sides.
    """
    import torch

    from polyp_rt.engines.backends.onnxruntime_backend import OnnxRuntimeEngine

    max_diff, scale, dices = 0.0, 1.0, list[float]()
    with OnnxRuntimeEngine(onnx_path, "cpu") as engine:
        for name, x in verification_inputs(contract, batch).items():
            with torch.inference_mode():
                reference = model(torch.from_numpy(x)).numpy()  # type: ignore[operator]
            got = engine.infer(x)
            if got.shape != reference.shape:
                raise ModelError(
                    f"{onnx_path}: output shape {got.shape} differs from torch's {reference.shape}"
                )
            _require_finite(onnx_path, name, reference, got, fp16)
            diff = float(np.abs(got - reference).max())
            a, b = sigmoid(got) >= contract.threshold, sigmoid(reference) >= contract.threshold
            marked = bool(a.any() or b.any())
            dice = mask_dice(a, b)
            log.info(
                "verify on %s input: max |onnx - torch| = %.2e, mask Dice %s",
                name,
                diff,
                f"{dice:.5f}" if marked else "- (no pixel marked)",
            )
            if marked:
                dices.append(dice)
            max_diff = max(max_diff, diff)
            scale = max(scale, float(np.abs(reference).max()))
    least = min(dices) if dices else None
    if not fp16 and max_diff > FP32_MAX_DIFF * scale:
        raise ModelError(
            f"{onnx_path}: verification failed, ONNX Runtime differs from torch by {max_diff:.2e} "
            f"(> {FP32_MAX_DIFF:g} x {scale:.3g}, the largest logit); try another --opset or report the model"
        )
    if fp16 and least is None:
        raise ModelError(
            f"{onnx_path}: verification failed, neither torch FP32 nor the FP16 file marks a single pixel "
            "on the verification inputs, so their masks cannot be compared (two empty masks agree on "
            "nothing); export in FP32"
        )
    if fp16 and least is not None and least < FP16_MIN_MASK_DICE:
        raise ModelError(
            f"{onnx_path}: verification failed, FP16 masks agree with FP32 at Dice {least:.4f} "
            f"(< {FP16_MIN_MASK_DICE}); export in FP32 and let TensorRT choose FP16 kernels"
        )
    return max_diff, least


def _require_finite(onnx_path: Path, name: str, reference: np.ndarray, got: np.ndarray, fp16: bool) -> None:
    """ModelError when torch's or ONNX Runtime's logits hold NaN or infinity (a NaN would drop out of
    the max difference and leave empty masks that 'agree')."""
    if not np.isfinite(reference).all():
        raise ModelError(
            f"{onnx_path}: verification failed, torch's own logits for the checkpoint are NaN or infinite "
            f"on the {name} input, so its masks would be empty: the model is broken; use another checkpoint"
        )
    if not np.isfinite(got).all():
        advice = "export in FP32" if fp16 else "try another --opset or report the model"
        raise ModelError(
            f"{onnx_path}: verification failed, ONNX Runtime gives NaN or infinite logits on the {name} "
            f"input where torch's are finite; {advice}"
        )


def simplify_graph(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The graph simplified by onnxslim (or onnxsim); PolypRtError saying what to install if neither is."""
    try:
        import onnxslim

        return onnxslim.slim(proto)
    except ImportError:
        pass
    try:
        import onnxsim

        simplified, ok = onnxsim.simplify(proto)
        if not ok:
            raise ModelError("onnxsim could not validate the simplified model; export without --simplify")
        return simplified
    except ImportError as exc:
        raise PolypRtError(
            "--simplify needs onnxslim or onnxsim: pip install 'polyp-rt[simplify]' (onnxslim)"
        ) from exc
