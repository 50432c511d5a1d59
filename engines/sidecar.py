"""The TensorRT engine's JSON sidecar: `NAME.engine` travels with `NAME.engine.json`.

A TensorRT engine runs only with the TensorRT version and on the GPU model it was
built for, and the engine file itself says neither in a way a person can read.
The sidecar records them (plus precision, shapes, the ONNX it came from and the
model contract), so loading can say in one sentence what does not match.

No tensorrt import here: this module must import on machines without it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from polyp_rt.core.errors import ModelError

SIDECAR_SUFFIX = ".json"
REQUIRED_FIELDS = (
    "tensorrt_version",
    "gpu_name",
    "compute_capability",
    "precision",
    "input_shape",
    "profile",
    "onnx_path",
    "onnx_sha256",
    "built_at",
    "contract",
)


def sidecar_path(engine_path: str | Path) -> Path:
    """`model.engine` -> `model.engine.json`."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + SIDECAR_SUFFIX)


def write_sidecar(engine_path: str | Path, data: dict[str, Any]) -> Path:
    """Write `data` next to the engine (atomically: a reader never sees half a file)."""
    path = sidecar_path(engine_path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_sidecar(engine_path: str | Path) -> dict[str, Any]:
    """The sidecar of `engine_path`; ModelError saying what to do if it is missing or unreadable."""
    path = sidecar_path(engine_path)
    rebuild = f"rebuild the engine with `polyp-rt build --onnx MODEL.onnx -o {Path(engine_path).name}`"
    if not path.is_file():
        raise ModelError(
            f"{engine_path}: its sidecar {path.name} is missing, so the GPU and TensorRT version "
            f"it was built for are unknown; keep the two files together or {rebuild}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable engine sidecar ({exc}); {rebuild}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path}: engine sidecar is not a JSON object; {rebuild}")
    missing = [key for key in REQUIRED_FIELDS if key not in data]
    if missing:
        raise ModelError(f"{path}: engine sidecar lacks {', '.join(missing)}; {rebuild}")
    return data


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def sm(compute_capability: str) -> str:
    """'8.9' -> 'sm_89'."""
    return "sm_" + compute_capability.replace(".", "")


def sidecar_mismatch(
    sidecar: dict[str, Any],
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    *,
    engine: str = "this engine",
) -> str | None:
    """One sentence naming what differs between the engine's build and this machine, or None.

    An engine must be run with the TensorRT version that built it, and on the GPU
    model (and compute capability) it was tuned for.
    """
    built = (
        str(sidecar.get("gpu_name", "?")),
        str(sidecar.get("compute_capability", "?")),
        str(sidecar.get("tensorrt_version", "?")),
    )
    differs = [
        what
        for what, then, now in zip(
            ("GPU model", "compute capability", "TensorRT version"),
            built,
            (gpu_name, compute_capability, trt_version),
            strict=True,
        )
        if then != now
    ]
    if not differs:
        return None
    onnx = sidecar.get("onnx_path") or "MODEL.onnx"
    out = engine if engine != "this engine" else "MODEL.engine"
    return (
        f"{engine} was built for {built[0]} ({sm(built[1])}) with TensorRT {built[2]}, "
        f"this machine has {gpu_name} ({sm(compute_capability)}) with TensorRT {trt_version} "
        f"(different {_and(differs)}); "
        f"rebuild it here with `polyp-rt build --onnx {onnx} -o {out}`"
    )
