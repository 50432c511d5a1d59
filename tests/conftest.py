"""Shared fixtures: small real files made on the fly, and the optional shared data set."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def openvino_cache_of_the_tests(tmp_path_factory):
    """OpenVINO's compiled models go to a folder of this test session, not the user's ~/.cache
    (the commands the tests start inherit it)."""
    import os

    from polyp_rt.engines.backends.openvino_backend import CACHE_ENV

    saved = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("openvino-cache"))
    yield
    if saved is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = saved


def write_pair(images: Path, masks: Path, stem: str, size=(48, 64), ext=".png", mask_ext=".png", seed=0):
    """One image with a bright disc and its exact mask; returns the mask as {0,1}."""
    rng = np.random.default_rng(seed)
    h, w = size
    image = rng.integers(40, 90, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    center = (int(rng.integers(w // 4, 3 * w // 4)), int(rng.integers(h // 4, 3 * h // 4)))
    cv2.circle(mask, center, max(3, min(h, w) // 6), 255, -1)
    image[mask > 0] = (200, 180, 220)
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(images / f"{stem}{ext}"), image)
    cv2.imwrite(str(masks / f"{stem}{mask_ext}"), mask)
    return (mask > 0).astype(np.uint8)


@pytest.fixture
def kvasir_dir(tmp_path: Path) -> Path:
    root = tmp_path / "kvasir"
    for i in range(20):
        write_pair(root / "images", root / "masks", f"img{i:02d}", ext=".jpg", mask_ext=".jpg", seed=i)
    return root


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "polypgen").is_dir():
        pytest.skip(f"real polyp data not present at {SHARED_DATA} (only in the development workspace)")
    return SHARED_DATA


@pytest.fixture
def make_pair():
    return write_pair


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    """24 synthetic image/mask pairs, 96 px, in the Kvasir layout."""
    from polyp_rt.train.synthetic import write_dataset

    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(root, 24, 96, seed=1)
    return root


def tiny_train_config(data: Path, out: Path, **overrides: Any) -> Any:
    """The suite's small training run: the cpu preset's decoder on MobileNetV2 (random weights,
    small and FP16-safe) at 64 px, 2 epochs, in-process data loading."""
    from polyp_rt.train.config import TrainConfig

    settings = {
        "data": data if isinstance(data, list) else [data],
        "preset": "cpu",
        "encoder": "mobilenet_v2",
        "encoder_weights": "none",
        "size": 64,
        "epochs": 2,
        "batch_size": 4,
        "out": out,
        "workers": 0,
    }
    return TrainConfig(**{**settings, **overrides})


@pytest.fixture(scope="session")
def tiny_run(synthetic_data, tmp_path_factory) -> Path:
    """A real 2-epoch training run (`tiny_train_config`): RUN/best.pt and friends."""
    from polyp_rt.train.trainer import train

    run = tmp_path_factory.mktemp("run")
    train(tiny_train_config(synthetic_data, run))
    return run


@pytest.fixture(scope="session")
def tiny_onnx(tiny_run, tmp_path_factory) -> Path:
    from polyp_rt.export.config import ExportConfig
    from polyp_rt.export.onnx_export import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(ExportConfig(checkpoint=tiny_run / "best.pt", output=path))
    return path


def write_micro_onnx(
    path: Path,
    size: int = 64,
    *,
    contract: Any = None,
    graph_side: int | str | None = None,
    weight: float | None = None,
    bias: float = -0.5,
    out_channels: int = 1,
    batch: int | str = "N",
    fields: dict[str, str] | None = None,
) -> Path:
    """A real, tiny segmentation model: one 3x3 convolution, with the full model contract.

    ONNX Runtime runs it in microseconds, so pipeline and fault tests measure the
    pipeline, not the model, and need no training run. The options make bad models:
    `contract` instead of the default one, a graph of another side (`graph_side`: a number,
    or a name for a dynamic side), every weight `weight` (NaN: an all-NaN model), another
    `bias`, `out_channels` logits, a fixed `batch`, and `fields`: raw metadata texts put in
    place of the contract's own (they need not be JSON).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from polyp_rt.engines.contract import METADATA_PREFIX, ModelContract, write_onnx_contract

    contract = contract or ModelContract(size, size, preset="micro")
    side = size if graph_side is None else graph_side
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (out_channels, 3, 3, 3)).astype(np.float32)
    if weight is not None:
        w[...] = weight
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w", "b"], ["logits"], pads=[1, 1, 1, 1])],
        "micro",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, side, side])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, out_channels, side, side])],
        [
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(np.full(out_channels, bias, np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    write_onnx_contract(model, contract)
    for name, text in (fields or {}).items():
        next(p for p in model.metadata_props if p.key == METADATA_PREFIX + name).value = text
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_checkpoint(path: Path, change: Any = None, nan: bool = False) -> Path:
    """A real checkpoint of a random-weight 64 px UNet++ (MobileNetV2), made in a second, no training;
    `change(data)` edits the saved dict; `nan`: its last convolution's weights are NaN."""
    import torch

    from polyp_rt.engines.checkpoint import save_checkpoint
    from polyp_rt.engines.models import contract_for, create_model, model_config

    config = model_config("cpu", encoder="mobilenet_v2", size=64, encoder_weights="none")
    model = create_model(config)
    if nan:
        with torch.no_grad():
            model.get_submodule("segmentation_head.0").weight.fill_(float("nan"))
    save_checkpoint(path, model, contract_for(config), {"data": "data"})
    if change:
        data = torch.load(path, weights_only=True)
        change(data)
        torch.save(data, path)
    return path


@pytest.fixture(scope="session")
def micro_onnx(tmp_path_factory) -> Path:
    return write_micro_onnx(tmp_path_factory.mktemp("micro") / "micro.onnx")


@pytest.fixture(scope="session")
def synthetic_clip(tmp_path_factory) -> Path:
    """A real H.264 clip (160x128, 24 fps, 36 frames) with ground-truth masks in clip_masks/."""
    from polyp_rt.cli.main import main

    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    args = [
        "synth",
        "--video",
        str(path),
        "--frames",
        "36",
        "--fps",
        "24",
        "--width",
        "160",
        "--height",
        "128",
    ]
    assert main(args) == 0
    return path


class HeldEngine:
    """Test-only wrapper around a real engine: its first `infer` waits for `hold()` to return (a
    condition of the pipeline, with a timeout), or every call after the first `fail_after` fails."""

    def __init__(self, engine, hold=None, fail_after: int | None = None):
        self.inner, self.hold, self.fail_after, self.calls = engine, hold, fail_after, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.inner.close()

    def infer(self, batch):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("engine failed (injected)")
        if self.calls == 1 and self.hold is not None:
            assert self.hold() is not False, "the condition the engine waited for did not come"
        return self.inner.infer(batch)


@pytest.fixture
def held_engine():
    return HeldEngine


class GatedEngine:
    """Test-only wrapper around a real engine: before each `infer`, `gate(call)` runs (call 1, 2,
    ...) and may wait on a condition of the pipeline, with a timeout (a model as slow as a test
    needs, measured in frames of video rather than seconds); `calls` counts them."""

    def __init__(self, engine, gate):
        self.inner, self.gate, self.calls = engine, gate, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def infer(self, batch):
        self.calls += 1
        self.gate(self.calls)
        return self.inner.infer(batch)


@pytest.fixture
def gated_engine():
    return GatedEngine


def wait_until(condition, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    """Wait for `condition` (files another process writes) to hold; `proc`'s exit ends the wait early.

    Between checks the wait is on the process itself (`proc.wait` with a short timeout), so a
    process that dies is noticed at once instead of after `timeout`.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        if proc is None:
            raise AssertionError(f"{what}: not yet true, and no process to wait on")
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        if not condition():
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {what}")


@pytest.fixture
def wait():
    return wait_until


def count_decoded_frames(path: Path) -> tuple[int, float]:
    """(frames PyAV decodes, the stream's average frame rate)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 0)
        return sum(1 for _ in container.decode(stream)), rate


@pytest.fixture
def decoded():
    return count_decoded_frames
