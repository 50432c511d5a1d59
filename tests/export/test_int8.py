"""INT8 quantisation: real calibration, real ONNX Runtime and OpenVINO sessions, a real failure."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime.quantization")

from polyp_rt.core.errors import DataError, ModelError, PolypRtError  # noqa: E402
from polyp_rt.engines.backends.onnxruntime_backend import OnnxRuntimeEngine  # noqa: E402
from polyp_rt.engines.contract import contract_from_onnx  # noqa: E402
from polyp_rt.engines.imaging import preprocess  # noqa: E402
from polyp_rt.export.config import QuantizeConfig  # noqa: E402
from polyp_rt.export.int8 import calibration_split, quantize_int8, verify_int8  # noqa: E402
from polyp_rt.realtime.config import DEMO_MODEL, DEMO_MODEL_INT8  # noqa: E402
from polyp_rt.train.synthetic import synth_image  # noqa: E402


@pytest.fixture(scope="module")
def demo_model() -> Path:
    """The shipped demo model: trained, so its masks are polyps, not specks."""
    if not DEMO_MODEL.is_file():
        pytest.skip(f"{DEMO_MODEL} is not here")
    return DEMO_MODEL


def test_int8_of_a_real_unetpp_runs_in_onnxruntime_and_openvino(tiny_onnx, synthetic_data, tmp_path):
    out = tmp_path / "tiny_int8.onnx"
    calls: list[tuple[str, int, int]] = []
    # The 2-epoch model marks ~0.1% of the pixels (its logits lie in [-0.7, 0.1]), so ten pixels
    # move its mask Dice by 0.03: the 0.98 gate is exercised on the trained demo model below.
    report = quantize_int8(
        QuantizeConfig(onnx=tiny_onnx, output=out, calibrate=synthetic_data, min_dice=0.9),
        progress=lambda *c: calls.append(c),
    )

    fp32, int8 = contract_from_onnx(tiny_onnx), contract_from_onnx(out)
    assert int8.precision == "int8" and fp32.precision == "fp32"
    assert {**int8.to_dict(), "precision": "fp32"} == fp32.to_dict()  # every other field kept
    assert report.path == out and report.bytes == out.stat().st_size < report.fp32_bytes / 2
    assert report.calibration_images == report.verification_images == 12  # 24 images, half held out
    assert 0.9 <= report.mask_dice <= 1.0 and report.mask_dice_min <= report.mask_dice_mean <= 1.0
    assert report.dataset_dice_fp32 is not None and report.dataset_dice_drop is not None
    assert report.settings["activations"].startswith("uint8") and "per channel" in report.settings["weights"]
    json.dumps(report.to_json(), allow_nan=False)
    assert ("calibrate", 12, 12) in calls and calls[-1] == ("verify", 12, 12)
    assert [p.name for p in tmp_path.iterdir()] == ["tiny_int8.onnx"]  # no temporary files left

    x = np.stack([preprocess(synth_image(seed, 120)[0], int8) for seed in range(2)])
    with OnnxRuntimeEngine(out, "cpu") as ort:
        assert ort.precision == "int8"
        ort_logits = [ort.infer(x[i : i + 1]) for i in range(2)]
    pytest.importorskip("openvino")
    from polyp_rt.engines.backends.openvino_backend import OpenVinoEngine

    with OpenVinoEngine(out) as ov:
        assert ov.precision == "int8"
        for i in range(2):
            got = ov.infer(x[i : i + 1])
            assert got.shape == (1, 1, 64, 64) and np.isfinite(got).all()
            assert np.abs(got - ort_logits[i]).max() < 0.1  # two INT8 runtimes, the same quantised graph


def test_the_gate_passes_real_calibration_and_refuses_int8_below_it(demo_model, synthetic_data, tmp_path):
    """Same model, same 12 held-out images, so the same INT8 file both times: only the gate
    differs. The bundled model was calibrated on real images, not these synthetic scenes, so the
    passing gate here is 0.9; the default gate on real data is the next test. (The previous
    bundled model also failed a 0.9 gate when calibrated on flat overexposed frames; this one's
    INT8 keeps 0.91-0.93 on flat, checkered or noise calibration, so bad calibration no longer
    makes a dependable failure.)"""
    good = quantize_int8(
        QuantizeConfig(onnx=demo_model, output=tmp_path / "good.onnx", calibrate=synthetic_data, min_dice=0.9)
    )
    assert good.dataset_dice_drop is not None and abs(good.dataset_dice_drop) < 0.02
    assert 0.9 <= good.mask_dice < 0.995

    out = tmp_path / "refused.onnx"
    with pytest.raises(ModelError, match="INT8 verification failed") as info:
        quantize_int8(QuantizeConfig(onnx=demo_model, output=out, calibrate=synthetic_data, min_dice=0.995))
    message = str(info.value)
    assert "\n" not in message and "calibrate on more images like the ones the model will see" in message
    assert not out.exists() and not list(tmp_path.glob(".int8-*"))  # the refused file is gone
    # the message reports the very verification the passing run measured
    dice = float(re.search(r"agree with FP32 at Dice (\d\.\d+)", message).group(1))
    fp32, int8 = map(float, re.search(r"data-set Dice (\d\.\d+) FP32 -> (\d\.\d+) INT8", message).groups())
    assert dice == pytest.approx(good.mask_dice, abs=1e-3) and "needed >= 0.995" in message
    assert fp32 == pytest.approx(good.dataset_dice_fp32, abs=1e-3)
    assert int8 == pytest.approx(good.dataset_dice_int8, abs=1e-3)


def test_the_bundled_int8_model_agrees_with_its_fp32_model_on_polypgen_val(demo_model, shared_data):
    """What samples/README.md reports: the shipped INT8 file against the shipped FP32 one on the 100
    PolypGen validation images its quantisation was verified on (it was calibrated on PolypGen
    train and synthetic scenes, scripts/train_bundled_model.sh)."""
    split = calibration_split(shared_data / "polypgen", 400, 100)
    check = verify_int8(demo_model, DEMO_MODEL_INT8, contract_from_onnx(demo_model), split.verification)
    assert check.mask_dice >= 0.98
    assert check.dataset_dice_fp32 is not None and check.dataset_dice_int8 is not None
    assert abs(check.dataset_dice_fp32 - check.dataset_dice_int8) < 0.01


def test_calibration_and_verification_images_are_disjoint_and_seeded(synthetic_data, tmp_path):
    a = calibration_split(synthetic_data, 5, 4, seed=3)
    assert len(a.calibration) == 5 and len(a.verification) == 4
    assert not set(a.calibration) & {image for image, _ in a.verification}
    assert all(mask is not None for _, mask in a.verification)
    assert (
        calibration_split(synthetic_data, 5, 4, seed=3)
        == a
        != calibration_split(synthetic_data, 5, 4, seed=4)
    )

    plain = tmp_path / "frames"  # a plain folder of images: no masks, no truth to report
    plain.mkdir()
    for image in sorted((synthetic_data / "images").iterdir())[:6]:
        shutil.copy(image, plain)
    b = calibration_split(plain, 200, 100)
    assert (len(b.calibration), len(b.verification)) == (3, 3) and all(m is None for _, m in b.verification)

    two = tmp_path / "two"  # train/ + val/ without test/: calibrate on train, verify on val
    for split in ("train", "val"):
        shutil.copytree(synthetic_data, two / split)
    c = calibration_split(two, 5, 4)
    assert all(p.parent.parent.name == "train" for p in c.calibration)
    assert all(image.parent.parent.name == "val" for image, _ in c.verification)
    shutil.rmtree(two / "val")
    with pytest.raises(DataError, match="has train/ but no val/"):
        calibration_split(two)

    (tmp_path / "one").mkdir()
    shutil.copy(next((synthetic_data / "images").iterdir()), tmp_path / "one")
    with pytest.raises(DataError, match="needs at least 2"):
        calibration_split(tmp_path / "one")


def test_bad_requests_are_one_line_errors(micro_onnx, synthetic_data, tmp_path):
    with pytest.raises(PolypRtError, match="would overwrite its FP32 input"):
        quantize_int8(QuantizeConfig(onnx=micro_onnx, output=micro_onnx, calibrate=synthetic_data))
    with pytest.raises(PolypRtError, match="is an .onnx file"):
        quantize_int8(QuantizeConfig(onnx=micro_onnx, output=tmp_path / "x.engine", calibrate=synthetic_data))
    with pytest.raises(PolypRtError, match="model file not found"):
        quantize_int8(
            QuantizeConfig(onnx=tmp_path / "none.onnx", output=tmp_path / "x.onnx", calibrate=synthetic_data)
        )
    with pytest.raises(PolypRtError, match="data folder not found"):
        quantize_int8(
            QuantizeConfig(onnx=micro_onnx, output=tmp_path / "x.onnx", calibrate=tmp_path / "nowhere")
        )


def test_int8_verification_fails_on_nan_logits_and_on_empty_masks(synthetic_data, tmp_path):
    """Both models marking nothing used to score Dice 1.0 and pass any gate."""
    from polyp_rt.export.int8 import _gate, verify_int8
    from tests.conftest import write_micro_onnx

    held_out = calibration_split(synthetic_data, 4, 4).verification
    fp32 = write_micro_onnx(tmp_path / "fp32.onnx")
    contract = contract_from_onnx(fp32)
    nan = write_micro_onnx(tmp_path / "nan.onnx", weight=float("nan"))
    with pytest.raises(
        ModelError, match="its INT8 model: INT8 verification failed, its logits on .* are NaN"
    ):
        verify_int8(fp32, nan, contract, held_out)

    blank = write_micro_onnx(tmp_path / "blank.onnx", bias=-100.0)
    check = verify_int8(blank, blank, contract, held_out)
    assert check.marked == 0 and check.mask_dice == 1.0
    with pytest.raises(
        ModelError, match="neither the FP32 nor the INT8 model marks a single pixel on the 4 images"
    ):
        _gate(check, tmp_path / "int8.onnx", "4 images", 0.98)
    same = verify_int8(fp32, fp32, contract, held_out)
    assert same.marked > 0 and same.mask_dice == 1.0
    _gate(same, tmp_path / "int8.onnx", "4 images", 0.98)  # the same model agrees with itself: passes
