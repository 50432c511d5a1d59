"""The live path's preprocessing into a kept input batch is `preprocess`, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from polyp_rt.core.errors import ModelError
from polyp_rt.engines.contract import ModelContract
from polyp_rt.engines.imaging import mask_at, preprocess, preprocess_into

CONTRACT = ModelContract(224, 224)  # ImageNet mean and std, RGB


def frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "size",
    [(480, 640), (1080, 1920), (224, 224), (100, 80), (177, 333), (600, 200)],
    ids=["shrink", "full HD", "model size", "enlarge", "odd sizes", "one side each way"],
)
def test_preprocess_into_writes_preprocess_bit_for_bit_into_the_buffer(size: tuple[int, int]) -> None:
    batch = np.full((1, 3, 224, 224), np.nan, np.float32)
    resized = np.empty((224, 224, 3), np.uint8)
    for seed in range(3):  # the kept buffers are reused frame after frame
        rgb = frame(*size, seed)
        written = preprocess_into(rgb, CONTRACT, batch[0], resized)
        assert np.shares_memory(written, batch), "written into the batch, not a new array"
        assert np.array_equal(batch[0], preprocess(rgb, CONTRACT)), "not bit for bit"
        assert np.array_equal(rgb, frame(*size, seed)), "the frame itself is left alone"


def test_the_normalisation_is_the_contracts_mean_and_std_per_channel() -> None:
    """Worked by hand: a frame of one colour (R, G, B) = (0, 128, 255) becomes (v/255 - mean)/std."""
    contract = ModelContract(8, 8, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 1], rgb[..., 2] = 128, 255
    out = preprocess_into(rgb, contract, np.empty((3, 8, 8), np.float32))
    expected = [(0 / 255 - 0.5) / 0.5, (128 / 255 - 0.25) / 0.25, (255 / 255 - 0.0) / 1.0]  # -1, 1.00784, 1
    for channel, value in enumerate(expected):
        assert np.allclose(out[channel], value, rtol=0, atol=1e-6)


def test_a_bgr_contract_gets_its_channels_reversed_and_an_unknown_order_is_refused() -> None:
    rgb = frame(48, 64)
    bgr_model = ModelContract(32, 32, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4), color="BGR")
    out = preprocess_into(rgb, bgr_model, np.empty((3, 32, 32), np.float32))
    assert np.array_equal(out, preprocess(rgb, bgr_model))
    as_rgb = preprocess(
        rgb[..., ::-1].copy(), ModelContract(32, 32, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4))
    )
    assert np.array_equal(out, as_rgb), "a BGR model sees the frame's channels reversed"
    with pytest.raises(ModelError, match="'GRAY'"):
        preprocess_into(rgb, ModelContract(32, 32, color="GRAY"), np.empty((3, 32, 32), np.float32))


def test_mask_at_thresholds_the_upsampled_logits_into_zero_and_one() -> None:
    logits = np.array([[-1.0, 2.0], [0.0, -3.0]], np.float32)  # sigmoid: 0.27, 0.88, 0.5, 0.05
    mask = mask_at(logits, 2, 2, 0.5)
    assert mask.dtype == np.uint8 and mask.tolist() == [[0, 1], [1, 0]]  # 0.5 >= 0.5
    big = mask_at(logits, 40, 60, 0.5)
    assert big.shape == (40, 60) and set(np.unique(big)) == {0, 1}
    assert big[0, -1] == 1 and big[-1, -1] == 0
