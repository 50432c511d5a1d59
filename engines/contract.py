"""The model contract: what every model file says about its input and output.

It travels inside the checkpoint, in ONNX `metadata_props` and in a TensorRT
engine's JSON sidecar, so every backend reads it and nobody hard-codes it.
A contract is read from untrusted files, so `ModelContract.from_dict` (the one
reader every file kind goes through) checks every field, and `check_io` compares
it with the graph the backend loaded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from polyp_rt.core.errors import InputFileError, ModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
METADATA_PREFIX = "polyp_rt."
PRECISIONS = ("fp32", "fp16", "int8")
SIDES = (8, 4096)  # the input sizes a contract may name, in pixels per side
REEXPORT = "re-export the model with `polyp-rt export`"


@dataclass(frozen=True)
class ModelContract:
    """Input size, normalisation, threshold and tensor names of a model, plus its architecture."""

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
        """(height, width) of the model's input."""
        return (self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (what a checkpoint and an engine sidecar store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str = "model") -> ModelContract:
        """The contract in `data`, every field checked; ModelError naming `source` and the first bad field.

        Unknown keys are ignored (a newer writer may add some); height and width are required.
        """
        if not isinstance(data, dict):
            raise ModelError(f"{source}: its polyp-rt model contract is not a JSON object; {remedy(source)}")
        missing = [name for name in ("height", "width") if name not in data]
        if missing:
            raise ModelError(
                f"{source}: its polyp-rt model contract lacks the field '{missing[0]}'; {remedy(source)}"
            )
        values = {}
        for f in fields(cls):
            if f.name in data:
                try:
                    values[f.name] = FIELD_CHECKS[f.name](data[f.name])
                except (TypeError, ValueError) as exc:
                    raise ModelError(
                        f"{source}: its model contract field '{f.name}' is {_shown(data[f.name])}; "
                        f"it must be {exc}; {remedy(source)}"
                    ) from exc
        return cls(**values)

    def to_metadata(self) -> dict[str, str]:
        """Flat string key/values for ONNX metadata_props."""
        return {METADATA_PREFIX + k: json.dumps(v) for k, v in self.to_dict().items()}

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str) -> ModelContract:
        """The contract in ONNX metadata_props (each field a JSON text under `polyp_rt.`)."""
        values: dict[str, Any] = {}
        for key, text in meta.items():
            if key.startswith(METADATA_PREFIX):
                name = key[len(METADATA_PREFIX) :]
                try:
                    values[name] = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ModelError(
                        f"{source}: its model contract field '{name}' is not JSON ({_cut(repr(text))}); {REEXPORT}"
                    ) from exc
        if not values:
            raise ModelError(
                f"{source}: no polyp-rt model contract in its metadata; "
                "export the model with `polyp-rt export` so input size and normalisation travel with it"
            )
        return cls.from_dict(values, source)


# ------------------------------------------------------------------ the fields, one check each


def _side(value: Any) -> int:
    low, high = SIDES
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(f"a whole number of pixels from {low} to {high}")
    return int(value)


def _three(value: Any, low: float, high: float, low_open: bool) -> tuple[float, float, float]:
    numbers = tuple(value) if isinstance(value, list | tuple) else ()
    if len(numbers) != 3 or not all(_is_number(x) for x in numbers):
        raise ValueError("three numbers, one per RGB channel")
    if not all(math.isfinite(x) and (low < x if low_open else low <= x) and x <= high for x in numbers):
        span = f"above {low:g} and at most {high:g}" if low_open else f"from {low:g} to {high:g}"
        raise ValueError(f"three numbers {span} (for pixel values on the 0-1 scale)")
    return (float(numbers[0]), float(numbers[1]), float(numbers[2]))


def _threshold(value: Any) -> float:
    if not _is_number(value) or not 0.0 < value < 1.0:  # NaN fails the comparison
        raise ValueError("a probability strictly between 0 and 1")
    return float(value)


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("a non-empty string")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a string")
    return value


def _one_of(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"one of {', '.join(map(repr, allowed))}")
        return str(value)

    return check


def _widths(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not all(_is_int(x) and x > 0 for x in value):
        raise ValueError("a list of whole numbers above 0")
    return tuple(int(x) for x in value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("a JSON object")
    return dict(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


FIELD_CHECKS: dict[str, Callable[[Any], Any]] = {
    "height": _side,
    "width": _side,
    "mean": lambda v: _three(v, 0.0, 1.0, False),
    "std": lambda v: _three(v, 0.0, 1.0, True),
    "color": _one_of("RGB"),
    "threshold": _threshold,
    "input_name": _name,
    "output_name": _name,
    "preset": _text,
    "encoder": _text,
    "decoder_channels": _widths,
    "checkpoint_sha256": _text,
    "precision": _one_of(*PRECISIONS),
    "tf_padding": _flag,
    "extra": _mapping,
}


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: Any) -> str:
    """A field's value on one line (JSON escapes line breaks), cut short."""
    try:
        return _cut(json.dumps(value))
    except (TypeError, ValueError):
        return _cut(repr(value))


def remedy(source: str) -> str:
    """What to do about a file whose contract is wrong: make it again with the command that writes it."""
    suffix = Path(source).suffix.lower()
    if suffix in (".pt", ".pth"):
        return "use a checkpoint written by `polyp-rt train`"
    if suffix in (".engine", ".plan"):
        return "rebuild the engine with `polyp-rt build`"
    return REEXPORT


# ------------------------------------------------------------------ the graph against the contract


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output as a backend sees it: its name and shape (None: a dynamic dimension)."""

    name: str
    shape: tuple[int | None, ...]

    def __str__(self) -> str:
        return f"{self.name}[{','.join('?' if d is None else str(d) for d in self.shape)}]"


def check_io(
    contract: ModelContract, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], source: str
) -> None:
    """ModelError unless the graph has the contract's one input [N,3,H,W] and its output [N,1,h,w].

    A static height or width of the input must be the contract's input size: ONNX Runtime would
    fail on the first frame, OpenVINO would silently reshape the model to the contract's size.
    """
    c = contract
    first = inputs[0] if len(inputs) == 1 else None
    if (
        first is None
        or first.name != c.input_name
        or len(first.shape) != 4
        or first.shape[1] not in (None, 3)
    ):
        raise ModelError(
            f"{source}: expected one input '{c.input_name}' [N,3,{c.height},{c.width}], found "
            f"{', '.join(map(str, inputs)) or 'none'}; export the model with `polyp-rt export`"
        )
    height, width = first.shape[2:]
    if (height is not None and height != c.height) or (width is not None and width != c.width):
        raise ModelError(
            f"{source}: its graph takes {first} but its model contract says input size "
            f"{c.height}x{c.width} (fields 'height' and 'width'); {remedy(source)}"
        )
    found = [o for o in outputs if o.name == c.output_name]
    if not found or len(found[0].shape) != 4 or found[0].shape[1] not in (None, 1):
        raise ModelError(
            f"{source}: expected one output '{c.output_name}' [N,1,H,W] (one channel: the polyp logit), "
            f"found {', '.join(map(str, outputs)) or 'none'}; export the model with `polyp-rt export`"
        )


# ------------------------------------------------------------------ files


def model_file(path: str | Path, kind: str = "model file") -> Path:
    """`path` as a Path if it is a file with bytes in it; InputFileError naming it otherwise.

    The one check every reader of a model file makes before it opens it.
    """
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{path}: a folder, not a {kind}; pass the file itself")
    if not path.is_file():
        raise InputFileError(f"{path}: {kind} not found")
    if path.stat().st_size == 0:
        raise InputFileError(
            f"{path}: the file is empty (0 bytes); was it copied completely? "
            "(`polyp-rt export` writes .onnx files, `polyp-rt train` checkpoints)"
        )
    return path


def write_onnx_contract(proto: Any, contract: ModelContract) -> None:
    """Store `contract` in an onnx.ModelProto's metadata_props (replacing what is there): the one
    writer. The exporter's per-node notes go (its stack traces name the files of the machine that
    exported the model), so a model file says nothing of where it was made."""
    del proto.metadata_props[:]
    for key, value in contract.to_metadata().items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "polyp-rt"
    proto.doc_string = ""
    _drop_node_notes(proto.graph)
    for function in proto.functions:
        for node in function.node:
            del node.metadata_props[:]
            node.doc_string = ""


def _drop_node_notes(graph: Any) -> None:
    graph.doc_string = ""
    for node in graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
        for attribute in node.attribute:
            for sub in [attribute.g] if attribute.HasField("g") else []:
                _drop_node_notes(sub)
            for sub in attribute.graphs:
                _drop_node_notes(sub)


def contract_from_onnx(path: Path) -> ModelContract:
    """The contract in an ONNX file's metadata_props, read with ONNX Runtime (no `onnx` package needed)."""
    import onnxruntime as ort

    path = model_file(path)
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
