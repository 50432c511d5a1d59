"""The model contract: what every model file says about its input and output.

It travels inside the checkpoint, in ONNX `metadata_props` and in a TensorRT
engine's JSON sidecar, so every backend reads it and nobody hard-codes it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from polyp_rt.core.errors import ModelError

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
    tf_padding: bool = False  # the encoder pads as TensorFlow's "same" (the EfficientNet-Lite weights)
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


def contract_from_onnx(path: Path) -> ModelContract:
    """The contract in an ONNX file's metadata_props, read with ONNX Runtime (no `onnx` package needed)."""
    import onnxruntime as ort

    if path.is_file() and path.stat().st_size == 0:
        raise ModelError(
            f"{path}: the file is empty (0 bytes); export the model again with `polyp-rt export`"
        )
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own InvalidProtobuf, Fail, ... types
        raise ModelError(
            f"{path}: not a readable ONNX model ({str(exc).splitlines()[0][:160]}); is the file complete?"
        ) from exc
    return contract_from_session(session, path)


def contract_from_session(session: Any, path: Path) -> ModelContract:
    """The contract in the metadata of an open onnxruntime.InferenceSession."""
    return ModelContract.from_metadata(session.get_modelmeta().custom_metadata_map, str(path))
