"""File kinds the house reads, and JSON as the house writes it (strict, whole or not at all)."""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path
from typing import Any

from polyp_rt.core.paths import make_parent

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def image_files(folder: Path) -> list[Path]:
    """The image files directly in `folder`, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def strict(value: Any) -> Any:
    """`value` with every NaN or infinity replaced by None, so it serialises as strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def to_json(value: Any, indent: int | None = None) -> str:
    """Strict JSON (no NaN or Infinity: they become null); paths as strings."""
    return json.dumps(strict(value), indent=indent, allow_nan=False)


def write_json(path: Path, value: Any, indent: int | None = 1) -> None:
    """Write strict JSON atomically: a reader sees the old file or the whole new one."""
    make_parent(path, "the JSON file")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(to_json(value, indent) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def disk_full_hint(exc: BaseException) -> str:
    """'; is the disk full?' for an error that says the disk or the user's quota is full, else ''."""
    return "; is the disk full?" if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) else ""
