"""A scripted clip whose video metrics are known in advance, and a model that sees what it scripts.

The script, 100 frames at 25 fps (40 ms a frame, 4.0 s), one square region size (a quarter of the
frame's height by a quarter of its width) at three places: S (top left, where the polyps are), W
(bottom right: a wrong place) and F (top right: flickers on healthy mucosa).

    truth (polyp at S):   lesion A frames 10-29; lesion B frames 60-69 and 73-79 (a 3-frame gap)
    predictions:          S 13-32, F 40, F 45, F 50-51, W 60-62, S 64-69, S 73-79, F 83, F 86-98

The video draws each predicted square bright on a dark background; `brightness_onnx` marks bright
pixels, so run through the pipeline it predicts the script. The expected figures are worked out
by hand in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

FPS = 25.0
FRAMES = 100
TRUTH = {**dict.fromkeys(range(10, 30), "S"), **dict.fromkeys([*range(60, 70), *range(73, 80)], "S")}
PREDICTED = {
    **dict.fromkeys(range(13, 33), "S"),
    40: "F",
    45: "F",
    50: "F",
    51: "F",
    **dict.fromkeys(range(60, 63), "W"),
    **dict.fromkeys([*range(64, 70), *range(73, 80)], "S"),
    83: "F",
    **dict.fromkeys(range(86, 99), "F"),
}


@dataclass(frozen=True)
class Script:
    height: int
    width: int

    def square(self, place: str | None) -> np.ndarray:
        h, w = self.height, self.width
        mask = np.zeros((h, w), np.uint8)
        if place is not None:
            top = h // 8 if place in "SF" else 5 * h // 8
            left = w // 8 if place == "S" else 5 * w // 8
            mask[top : top + h // 4, left : left + w // 4] = 1
        return mask

    def truth(self, i: int) -> np.ndarray:
        return self.square(TRUTH.get(i))

    def prediction(self, i: int) -> np.ndarray:
        return self.square(PREDICTED.get(i))

    def t(self, i: int) -> float:
        return i / FPS

    def picture(self, i: int) -> np.ndarray:
        """The video frame: dark, the predicted square bright."""
        rgb = np.full((self.height, self.width, 3), 30, np.uint8)
        rgb[self.prediction(i) > 0] = (235, 220, 225)
        return rgb


@pytest.fixture
def script() -> Script:
    return Script(40, 40)  # a square is 10 x 10 pixels: 6.25 % of the frame


def write_brightness_onnx(path: Path, size: int = 64) -> Path:
    """A real ONNX model whose logits are 20 x (red / 255 - 0.5): bright pixels are 'polyp'."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from polyp_rt.engines.contract import IMAGENET_MEAN, IMAGENET_STD, ModelContract

    weights = np.zeros((1, 3, 1, 1), np.float32)
    weights[0, 0] = 20.0 * IMAGENET_STD[0]  # the input is (red / 255 - mean) / std
    bias = np.array([20.0 * (IMAGENET_MEAN[0] - 0.5)], np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w", "b"], ["logits"])],
        "brightness",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1, size, size])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    helper.set_model_props(model, ModelContract(size, size, preset="brightness").to_metadata())
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def brightness_onnx(tmp_path_factory) -> Path:
    return write_brightness_onnx(tmp_path_factory.mktemp("brightness") / "brightness.onnx")


def write_scripted_clip(
    folder: Path, name: str = "scripted", size: tuple[int, int] = (128, 160), background: int = 30
) -> Path:
    """folder/NAME.mp4 (H.264) with its truth in folder/NAME_masks/, truth.json included."""
    from polyp_rt.evaluation.truth import TruthInfo, sha256_of, write_truth_info
    from polyp_rt.realtime.recorder import Recorder
    from polyp_rt.train.synthetic import save_frame_mask

    script = Script(*size)
    video, masks = folder / f"{name}.mp4", folder / f"{name}_masks"
    masks.mkdir(parents=True)
    with Recorder(video, size[1], size[0], FPS) as recorder:
        for i in range(FRAMES):
            picture = script.picture(i)
            picture[picture == 30] = background
            recorder.write(picture, script.t(i))
            save_frame_mask(masks, i, script.truth(i) * np.uint8(255))
    write_truth_info(masks, TruthInfo(video.name, sha256_of(video), FRAMES, FPS, size[1], size[0]))
    return video


@pytest.fixture(scope="session")
def scripted_clip(tmp_path_factory) -> Path:
    return write_scripted_clip(tmp_path_factory.mktemp("scripted"))


@pytest.fixture
def make_clip():
    return write_scripted_clip
