"""UNet++ presets, the model factory and the checkpoint format.

This lives on the ground floor because the torch backend must rebuild the model
from a checkpoint; training imports it from here.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyp_rt.engines.contract import IMAGENET_MEAN, IMAGENET_STD, ModelContract
from polyp_rt.engines.errors import InputFileError, ModelError, PolypRtError
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

CHECKPOINT_FORMAT = "polyp-rt-checkpoint/1"


@dataclass(frozen=True)
class ModelConfig:
    preset: str
    encoder: str
    size: int
    decoder_channels: tuple[int, ...]
    encoder_weights: str | None = None
    # TensorFlow "same" padding for encoders whose weights were made for it (older checkpoints: False)
    tf_padding: bool = False


PRESETS: dict[str, ModelConfig] = {
    # The published Kvasir-SEG recipe (test Dice 0.91 in 25 epochs).
    "accurate": ModelConfig("accurate", "efficientnet-b3", 352, (256, 128, 64, 32, 16)),
    "fast": ModelConfig("fast", "resnet34", 352, (256, 128, 64, 32, 16)),
    # Small enough to train and run on a laptop CPU.
    "cpu": ModelConfig("cpu", "mobilenet_v2", 256, (64, 32, 16, 16, 8)),
}


def model_config(
    preset: str,
    encoder: str | None = None,
    size: int | None = None,
    encoder_weights: str | None = None,
) -> ModelConfig:
    if preset not in PRESETS:
        raise PolypRtError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    config = PRESETS[preset]
    if size is not None and size % 32:
        raise PolypRtError(
            f"--size {size} is not a multiple of 32, which UNet++ needs; try {size // 32 * 32 or 32}"
        )
    encoder = encoder or config.encoder
    if encoder_weights in ("none", ""):
        encoder_weights = None
    return replace(
        config,
        encoder=encoder,
        size=size or config.size,
        encoder_weights=encoder_weights,
        tf_padding=uses_tf_padding(encoder),
    )


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
    )


def create_model(config: ModelConfig) -> torch.nn.Module:
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


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    config: ModelConfig,
    contract: ModelContract,
    provenance: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint; `extra` holds resumable state (optimizer, scheduler, epoch)."""
    import torch

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "state_dict": state,
            "model": asdict(config),
            "contract": contract.to_dict(),
            "provenance": provenance,
            **(extra or {}),
        },
        path,
    )


@dataclass
class Checkpoint:
    path: Path
    config: ModelConfig
    contract: ModelContract
    state_dict: dict[str, Any]
    provenance: dict[str, Any]
    extra: dict[str, Any]

    def build_model(self) -> torch.nn.Module:
        model = create_model(replace(self.config, encoder_weights=None))
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            raise ModelError(
                f"{self.path}: weights do not fit the {self.config.encoder} UNet++ it names "
                f"({str(exc).splitlines()[0]})"
            ) from exc
        return model.eval()


def load_checkpoint(path: str | Path) -> Checkpoint:
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelError(
            f"{path}: refused to load, it holds Python objects beyond tensors and plain data "
            "(torch weights_only=True); only load checkpoints written by `polyp-rt train`"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable torch checkpoint ({exc}); is the file complete?") from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(
            f"{path}: not a polyp-rt checkpoint (no '{CHECKPOINT_FORMAT}' format tag); "
            "use a checkpoint written by `polyp-rt train`"
        )
    model = dict(data["model"])
    model["decoder_channels"] = tuple(model["decoder_channels"])
    contract = ModelContract.from_dict(data["contract"], str(path))
    extra = {
        k: v for k, v in data.items() if k not in ("format", "state_dict", "model", "contract", "provenance")
    }
    return Checkpoint(path, ModelConfig(**model), contract, data["state_dict"], data["provenance"], extra)
