"""File kinds the house reads, and files as the house writes them: whole or not at all, with
the permissions the user's umask gives, JSON strict.

`write_atomic` writes to a temporary file of its own beside the target, created as any new file
is (mode 0666 less the umask: a report of patient names is as private as the user's files are),
synced, and renamed over the target; on any failure, an interruption included, the temporary file
is removed and the target is as it was.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from polyp_rt.core.names import printable
from polyp_rt.core.paths import make_parent

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def image_files(folder: Path) -> list[Path]:
    """The image files directly in `folder`, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def strict(value: Any) -> Any:
    """`value` with every NaN or infinity replaced by None, so it serialises as strict JSON; paths
    as strings, and a string that is not valid Unicode (a file name that is not UTF-8) as
    printable text (`printable`), so the JSON is valid UTF-8."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if value.isascii() or _unicode(value) else printable(value)
    if isinstance(value, dict):
        return {strict(str(k)): strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    if isinstance(value, Path):
        return strict(str(value))
    return value


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def to_json(value: Any, indent: int | None = None) -> str:
    """Strict JSON (no NaN or Infinity: they become null); paths as strings."""
    return json.dumps(strict(value), indent=indent, allow_nan=False)


def json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of a JSON-lines file (frames.jsonl); a line that
    is not JSON raises ValueError naming the file and line."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{path}:{number}: not a JSON line ({exc.msg}); was the file cut short?"
                ) from None


def write_json(path: Path, value: Any, indent: int | None = 1) -> None:
    """Write strict JSON atomically: a reader sees the old file or the whole new one."""
    write_atomic(path, to_json(value, indent) + "\n")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path` whole or not at all (see the module's docstring);
    its folder is made where missing."""
    make_parent(path, "the file")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:  # as open() makes a new file: 0666 less the umask (mkstemp would make it 0600)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def disk_full_hint(exc: BaseException) -> str:
    """'; is the disk full?' for an error that says the disk or the user's quota is full, else ''."""
    return "; is the disk full?" if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) else ""
