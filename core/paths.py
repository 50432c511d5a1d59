"""Outputs never touch inputs: every path a command writes is checked before anything is written.

Paths are compared after resolving symlinks and relative parts (and, for files that exist, by
identity, so a hard link is caught too): an output may not be an input, may not lie in a folder
whose files are read (an image folder, ground-truth masks), may not meet another output, must
be writable, and may not replace an earlier output unless the user passed --overwrite
(`check_new`). Output folders are created by `make_folder` / `make_parent` only. The first
problem is an `OutputError`, one line.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from polyp_rt.core.errors import OutputError


@dataclass(frozen=True)
class Place:
    """A path a command reads or writes, as the user named it (`what`, e.g. "--record")."""

    what: str
    path: Path
    folder: bool = False  # a folder whose files are read (an input) or written (an output)


def resolved(path: Path) -> Path:
    return Path(os.path.abspath(path)).resolve()


def same(a: Path, b: Path) -> bool:
    if resolved(a) == resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def directly_in(path: Path, folder: Path) -> bool:
    return same(resolved(path).parent, folder)


def check_outputs(inputs: Sequence[Place], outputs: Sequence[Place]) -> None:
    """OutputError for the first output that is an input, shares a folder of files with one, or
    meets another output."""
    for n, out in enumerate(outputs):
        for read, other in [*((True, p) for p in inputs), *((False, p) for p in outputs[:n])]:
            if same(out.path, other.path):
                if read:
                    raise OutputError(
                        f"{out.path}: {out.what} would overwrite {other.what} ({other.path}); "
                        "outputs never replace inputs, choose another path"
                    )
                raise OutputError(
                    f"{out.path}: {out.what} and {other.what} are the same path; give each its own"
                )
            folder, inside = (other, out) if other.folder and not out.folder else (out, other)
            if folder.folder and not inside.folder and directly_in(inside.path, folder.path):
                raise OutputError(
                    f"{inside.path}: {inside.what} lies in the folder of {folder.what} ({folder.path}); "
                    "keep outputs out of folders that are read or filled, choose another path"
                )


def check_writable(place: Place) -> None:
    """OutputError unless `place` can be written: created where it does not exist, replaced where
    it does (nothing is written: a file is opened for appending, a folder holds a probe briefly)."""
    path, target = place.path, resolved(place.path)
    if target.exists():
        if place.folder and not target.is_dir():
            raise OutputError(f"{path}: {place.what} is a file, not a folder")
        if not place.folder and target.is_dir():
            raise OutputError(f"{path}: {place.what} is a folder; give a file name")
        if target.is_dir():
            _probe(place, target)
        elif target.is_file():
            try:
                with open(target, "ab"):
                    pass
            except OSError as exc:
                raise OutputError(f"{path}: {place.what} cannot be written ({exc.strerror or exc})") from exc
        return
    folder = target.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"{path}: {place.what} cannot be created: {folder} is a file, not a folder")
    _probe(place, folder)


def _probe(place: Place, folder: Path) -> None:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".polyp-rt-probe-"):
            pass
    except OSError as exc:
        raise OutputError(
            f"{place.path}: {place.what} cannot be written in {folder} ({exc.strerror or exc})"
        ) from exc


def check_paths(inputs: Sequence[Place], outputs: Sequence[Place]) -> None:
    """Every output against every input and every other output, then each output writable."""
    check_outputs(inputs, outputs)
    for out in outputs:
        check_writable(out)


def check_new(place: Place, overwrite: bool) -> None:
    """OutputError where `place` holds an earlier output and `overwrite` is off: a file that exists
    (a device such as /dev/null is no earlier output), or a folder that holds files."""
    if overwrite:
        return
    target = resolved(place.path)
    if place.folder and target.is_dir():
        held = sum(1 for _ in target.iterdir())
        if held:
            raise OutputError(
                f"{place.path}: {place.what} already holds {held} files; choose an empty or new folder, "
                "or pass --overwrite to write into it"
            )
    elif not place.folder and target.is_file():
        raise OutputError(
            f"{place.path}: {place.what} exists already; choose another name, or pass --overwrite to replace it"
        )


def make_folder(folder: Path, what: str) -> Path:
    """Create the output folder `folder` and its parents where missing; OutputError with the path
    and the reason where it cannot be (read-only, below a file, a file system that refuses)."""
    problem = _mkdir(folder)
    if problem:
        raise OutputError(f"{folder}: {what} cannot be created ({problem})")
    return folder


def make_parent(path: Path, what: str) -> Path:
    """Create the folder the output file `path` goes into (see `make_folder`); returns `path`."""
    problem = _mkdir(path.parent)
    if problem:
        raise OutputError(f"{path}: {what} cannot be created: its folder {path.parent}: {problem}")
    return path


def _mkdir(folder: Path) -> str | None:
    """Why `folder` cannot be made (None once it exists)."""
    if folder.exists() and not folder.is_dir():
        return "is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
