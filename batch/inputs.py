"""The videos a batch works on: collected from files, folders and list files, each with the name of
its output folder.

A folder is searched for files with a video suffix (sub-folders too, hidden ones and the output
folder left out). A `.txt` / `.list` / `.lst` file lists one path per line (blank lines and lines
starting with # are skipped; relative paths are relative to the list's folder). Any other file is
taken as a video, whatever its suffix: one that is not a video fails as a bad video, in the summary.

Output names are the video's file name; two inputs with the same name in different folders get
distinct names (the parent folder's name in front, then a number), and a name once given to an
input is kept by the manifest, so reruns find their results where they left them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from polyp_rt.core.errors import InputFileError

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv"}
)
LIST_SUFFIXES = frozenset({".txt", ".list", ".lst"})
# names in the output folder that are not a video's folder
RESERVED = frozenset({"summary.csv", "report.html", "manifest.json", ".work", ".lock"})


@dataclass(frozen=True)
class Video:
    path: Path  # absolute, symlinks resolved
    name: str  # its output folder's name, unique in the output folder


def collect(inputs: Iterable[Path], out_dir: Path) -> list[Path]:
    """Every video the inputs name, absolute, each once, in the order given (folders sorted).

    InputFileError for an input that does not exist, a video inside the output folder, or no
    video at all.
    """
    out_dir = out_dir.resolve()
    found: dict[Path, None] = {}
    for given in inputs:
        if not given.exists():
            raise InputFileError(f"{given}: no such file or folder")
        if given.is_dir():
            videos = _search(given.resolve(), out_dir)
            if not videos:
                raise InputFileError(
                    f"{given}: no videos in this folder ({', '.join(sorted(VIDEO_SUFFIXES))})"
                )
        elif given.suffix.lower() in LIST_SUFFIXES:
            videos = _listed(given)
        else:
            videos = [given.resolve()]
        for video in videos:
            if video == out_dir or out_dir in video.parents:
                raise InputFileError(
                    f"{video}: inside the output folder {out_dir}; outputs never overwrite inputs, "
                    "so pick another --out"
                )
            found.setdefault(video)
    if not found:
        raise InputFileError("no videos to process: the inputs name none")
    return list(found)


def _search(folder: Path, out_dir: Path) -> list[Path]:
    videos = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != out_dir)
        videos += [
            (here / f).resolve()
            for f in sorted(files)
            if Path(f).suffix.lower() in VIDEO_SUFFIXES and not f.startswith(".")
        ]
    return videos


def _listed(list_file: Path) -> list[Path]:
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{list_file}: cannot read the list of videos ({exc})") from exc
    base = list_file.resolve().parent
    paths = []
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            paths.append((base / Path(text).expanduser()).resolve())
    return paths


def name_videos(paths: list[Path], known: Mapping[str, str]) -> list[Video]:
    """Each path with its output name. `known` maps names to the inputs they were given to before
    (the manifest): an input keeps its name; a new input never takes another input's name."""
    by_input = {inp: name for name, inp in known.items()}
    taken = set(known) | RESERVED
    named: dict[Path, str] = {}
    for path in paths:
        name = by_input.get(str(path))
        if name is not None:
            named[path] = name
    for path in paths:
        if path in named:
            continue
        name = next(c for c in _candidates(path) if c not in taken)
        taken.add(name)
        named[path] = name
    return [Video(path, named[path]) for path in paths]


def _candidates(path: Path) -> Iterable[str]:
    yield path.name
    if path.parent.name:
        yield f"{path.parent.name}_{path.name}"
    number = 2
    while True:
        yield f"{path.name}-{number}"
        number += 1
