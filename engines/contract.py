"""The model contract: what every model file says about its input and output.

It travels inside the checkpoint, in ONNX `metadata_props` and in a TensorRT
engine's JSON sidecar, so every backend reads it and nobody hard-codes it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from polyp_rt.engines.errors import ModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
METADATA_PREFIX = "polyp_rt."


@dataclass(frozen=True)
class ModelContract:
    height: int
    width: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color: str = "RGB"
    threshold: float = 0.5
    input_name: str = "image"
    output_name: str = "logits"
    preset: str = ""
    encoder: str = ""
    decoder_channels: tuple[int, ...] = ()
    checkpoint_sha256: str = ""
    precision: str = "fp32"  # of the file's weights and arithmetic: fp32, fp16 or int8
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return (self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model") -> ModelContract:
        known = {f.name for f in fields(cls)}
        try:
            values = {k: v for k, v in data.items() if k in known}
            for key in ("mean", "std"):
                if key in values:
                    values[key] = tuple(float(x) for x in values[key])
            if "decoder_channels" in values:
                values["decoder_channels"] = tuple(int(x) for x in values["decoder_channels"])
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ModelError(
                f"{source}: its polyp-rt model contract is incomplete or malformed ({exc}); "
                "re-export it with `polyp-rt export`"
            ) from exc

    def to_metadata(self) -> dict[str, str]:
        """Flat string key/values for ONNX metadata_props."""
        return {METADATA_PREFIX + k: json.dumps(v) for k, v in self.to_dict().items()}

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str) -> ModelContract:
        values = {
            k[len(METADATA_PREFIX) :]: json.loads(v) for k, v in meta.items() if k.startswith(METADATA_PREFIX)
        }
        if "height" not in values or "width" not in values:
            raise ModelError(
                f"{source}: no polyp-rt model contract in its metadata; "
                "export the model with `polyp-rt export` so input size and normalisation travel with it"
            )
        return cls.from_dict(values, source)
