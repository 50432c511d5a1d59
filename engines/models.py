"""UNet++ presets and the model factory.

This lives on the ground floor because the torch backend rebuilds the model from a
checkpoint's contract; training imports it from here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from polyp_rt.core.errors import ModelError, PolypRtError
from polyp_rt.engines.contract import IMAGENET_MEAN, IMAGENET_STD, ModelContract
from polyp_rt.engines.pretrained import (
    OFFLINE_IMAGENET,
    TF_MEAN,
    TF_STD,
    load_imagenet,
    use_tf_padding,
    uses_tf_padding,
)

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelConfig:
    """A UNet++ architecture: preset name, encoder, input side, decoder widths, encoder weights, padding."""

    preset: str
    encoder: str
    size: int
    decoder_channels: tuple[int, ...]
    encoder_weights: str | None = None
    # TensorFlow "same" padding for encoders whose weights were made for it (older checkpoints: False)
    tf_padding: bool = False


SLIM = (64, 32, 16, 16, 8)
WIDE = (256, 128, 64, 32, 16)
# Chosen by measurement (docs/TRAINING.md): cpu by the Pareto run of validation Dice against INT8
# time on two CPU cores (Lite1 at 160 px: 0.6x the time of Lite0 at 224, the former cpu preset);
# fast by the ladder of validation Dice on PolypGen; accurate by the GPU run on TrainDataset +
# PolypGen (352 px with the wide decoder against 256 px with the slim one, on validation).
PRESETS: dict[str, ModelConfig] = {
    "cpu": ModelConfig("cpu", "timm-tf_efficientnet_lite1", 160, SLIM),
    "fast": ModelConfig("fast", "timm-tf_efficientnet_lite1", 256, SLIM),
    "accurate": ModelConfig("accurate", "timm-tf_efficientnet_lite2", 352, WIDE),
}


def check_size(size: int) -> None:
    """PolypRtError unless UNet++ can take a square input of `size` (a multiple of 32)."""
    if size % 32:
        raise PolypRtError(
            f"--size {size} is not a multiple of 32, which UNet++ needs; try {size // 32 * 32 or 32}"
        )


def model_config(
    preset: str,
    encoder: str | None = None,
    size: int | None = None,
    encoder_weights: str | None = None,
    decoder: str | None = None,
) -> ModelConfig:
    """A preset with the command line's overrides; `decoder` is five widths, e.g. "256,128,64,32,16"."""
    if preset not in PRESETS:
        raise PolypRtError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    config = PRESETS[preset]
    if size is not None:
        check_size(size)
    encoder = encoder or config.encoder
    if encoder_weights in ("none", ""):
        encoder_weights = None
    return replace(
        config,
        encoder=encoder,
        size=size or config.size,
        decoder_channels=parse_decoder(decoder) if decoder else config.decoder_channels,
        encoder_weights=encoder_weights,
        tf_padding=uses_tf_padding(encoder),
    )


def parse_decoder(text: str) -> tuple[int, ...]:
    """Five decoder widths from text such as "256,128,64,32,16"; PolypRtError for anything else."""
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        widths = ()
    if len(widths) != 5 or min(widths) < 1:
        raise PolypRtError(
            f"--decoder {text}: give five positive widths, widest first, e.g. 256,128,64,32,16"
        )
    return widths


def contract_for(config: ModelConfig, threshold: float = 0.5) -> ModelContract:
    """The contract of a new model: its input size and the normalisation its encoder's weights expect."""
    mean, std = (TF_MEAN, TF_STD) if uses_tf_padding(config.encoder) else (IMAGENET_MEAN, IMAGENET_STD)
    return ModelContract(
        height=config.size,
        width=config.size,
        mean=mean,
        std=std,
        threshold=threshold,
        preset=config.preset,
        encoder=config.encoder,
        decoder_channels=config.decoder_channels,
        tf_padding=config.tf_padding,
    )


def config_from_contract(contract: ModelContract) -> ModelConfig:
    """The architecture a contract describes (every model file carries one)."""
    if not contract.encoder or not contract.decoder_channels:
        raise ModelError("the model's contract does not name its encoder and decoder; re-export it")
    return ModelConfig(
        contract.preset,
        contract.encoder,
        contract.height,
        contract.decoder_channels,
        None,
        contract.tf_padding,
    )


def create_model(config: ModelConfig) -> torch.nn.Module:
    """The segmentation-models-pytorch UNet++ `config` describes (one logit channel, no activation)."""
    import segmentation_models_pytorch as smp

    offline = config.encoder_weights == "imagenet" and config.encoder in OFFLINE_IMAGENET
    try:
        model = smp.UnetPlusPlus(
            encoder_name=config.encoder,
            encoder_weights=None if offline else config.encoder_weights,
            decoder_channels=list(config.decoder_channels),
            classes=1,
            activation=None,
        )
    except KeyError as exc:
        raise PolypRtError(
            f"unknown encoder {config.encoder!r}; see segmentation-models-pytorch's encoder list"
        ) from exc
    except OSError as exc:  # pretrained weights could not be downloaded
        raise PolypRtError(
            f"could not get {config.encoder_weights} weights for {config.encoder} ({exc}); "
            "train from scratch with --encoder-weights none"
        ) from exc
    if offline:
        load_imagenet(config.encoder, model.encoder)
    if config.tf_padding:
        use_tf_padding(model.encoder)
    return model
