"""The videos a batch works on: collected from files, folders and list files, each with the name of
its output folder.

A folder is searched for files with a video suffix (sub-folders too, hidden ones and the output
folder left out, and so is the output folder of an earlier batch: it holds a polyp-rt manifest, and
its annotated recordings are not procedures). A `.txt` / `.list` / `.lst` file lists one path per
line (blank lines and lines starting with # are skipped; relative paths are relative to the list's
folder). Any other file is taken as a video, whatever its suffix: one that is not a video fails as
a bad video, in the summary.

Inputs are kept as the user named them (absolute, symbolic links not followed), so two case names
linked to one file are two videos, each named after its link. What is not a regular file (a FIFO,
a device, a broken link) or lies in an earlier batch's output is refused (`Refused`): one line in
the log, a skipped row in the summary, never opened.

Output names are the video's file name as printable text (`core.names.printable`); two inputs with
the same name in different folders get distinct names (the parent folder's name in front, then a
number), and a name once given to an input is kept by the manifest, so reruns find their results
where they left them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from polyp_rt.batch.manifest import MANIFEST, RESERVED, file_kind, is_batch_output
from polyp_rt.core.errors import InputFileError
from polyp_rt.core.names import printable

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv"}
)
LIST_SUFFIXES = frozenset({".txt", ".list", ".lst"})


@dataclass(frozen=True)
class Video:
    path: Path  # absolute, as the user named it (symbolic links kept)
    name: str  # its output folder's name, unique in the output folder


NOT_A_FILE = "not a regular file"
UNREADABLE = "cannot be read"
AN_OUTPUT = "a batch's output"


@dataclass(frozen=True)
class Refused:
    """An input that is not processed: its path as named, what it is (`NOT_A_FILE`, `UNREADABLE`,
    `AN_OUTPUT`: its row's status is ``skipped: <that>``) and why, in a sentence."""

    path: Path
    what: str
    why: str


@dataclass
class Inputs:
    videos: list[Path]  # absolute, as named, each once, in the order given (folders sorted)
    refused: list[Refused] = field(default_factory=list)


def absolute(path: Path) -> Path:
    """`path` made absolute as the user named it: relative parts resolved, symbolic links kept."""
    return Path(os.path.abspath(path))


def collect(inputs: Iterable[Path], out_dir: Path) -> Inputs:
    """Every video the inputs name, and the inputs refused (see the module's docstring).

    InputFileError for an input that does not exist, a video inside the output folder, or no
    video at all.
    """
    out_dir = out_dir.resolve()
    outputs = _Outputs()
    found: dict[Path, None] = {}
    refused: dict[Path, Refused] = {}
    for given in inputs:
        if not given.exists():
            raise InputFileError(f"{printable(given)}: no such file or folder")
        path = absolute(given)
        if path.is_dir():
            above = outputs.above(path.resolve(), itself=True)
            if above is not None:
                refused.setdefault(path, _an_output(path, above))
                continue
            videos = _search(path, out_dir, outputs)
            if not videos:
                raise InputFileError(
                    f"{printable(given)}: no videos in this folder ({', '.join(sorted(VIDEO_SUFFIXES))})"
                )
        elif given.suffix.lower() in LIST_SUFFIXES:
            videos = _listed(given)
        else:
            videos = [path]
        for video in videos:
            real = video.resolve()
            if real == out_dir or out_dir in real.parents:
                raise InputFileError(
                    f"{printable(video)}: inside the output folder {printable(out_dir)}; outputs never "
                    "overwrite inputs, so pick another --out"
                )
            above = outputs.above(real)
            problem = _not_a_video_file(video) or (_an_output(video, above) if above else None)
            if problem:
                refused.setdefault(video, problem)
            else:
                found.setdefault(video)
    for problem in refused.values():
        log.warning("%s: %s; skipped", printable(problem.path), problem.why)
    if not found:
        first = next(iter(refused.values()), None)
        because = f" ({printable(first.path)}: {first.why})" if first else ""
        raise InputFileError(f"no videos to process: the inputs name none{because}")
    return Inputs(list(found), list(refused.values()))


def _not_a_video_file(path: Path) -> Refused | None:
    """Why `path` cannot be a video file (a FIFO, a broken link, ...), or None."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if path.is_symlink() and isinstance(exc, FileNotFoundError):
            return Refused(path, NOT_A_FILE, "a broken symbolic link")
        return Refused(path, UNREADABLE, f"cannot be read ({exc.strerror or exc})")
    kind = file_kind(mode)
    return None if kind == "a regular file" else Refused(path, NOT_A_FILE, f"{kind}, not a regular file")


def _an_output(path: Path, folder: Path) -> Refused:
    """`path`, in (or being) the output folder `folder` of an earlier batch, refused."""
    if path.resolve() == folder:
        why = f"the output folder of an earlier polyp-rt batch (it holds its {MANIFEST})"
    else:
        why = f"an output of an earlier polyp-rt batch (in {printable(folder)}, which holds its {MANIFEST})"
    return Refused(path, AN_OUTPUT, why)


class _Outputs:
    """Which folders are the output folder of a batch (`is_batch_output`), each looked at once."""

    def __init__(self) -> None:
        self.seen: dict[Path, bool] = {}

    def holds(self, folder: Path) -> bool:
        if folder not in self.seen:
            self.seen[folder] = is_batch_output(folder)
        return self.seen[folder]

    def above(self, path: Path, itself: bool = False) -> Path | None:
        """The batch output folder that `path` (real) lies in (or is, with `itself`), or None."""
        folders = [path, *path.parents] if itself else list(path.parents)
        return next((f for f in folders if self.holds(f)), None)


def _search(folder: Path, out_dir: Path, outputs: _Outputs) -> list[Path]:
    videos = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        kept = []
        for d in sorted(dirs):
            real = (here / d).resolve()
            if d.startswith(".") or real == out_dir:
                continue
            if outputs.holds(real):
                log.info("%s: %s; not searched", printable(here / d), _an_output(here / d, real).why)
                continue
            kept.append(d)
        dirs[:] = kept
        videos += [
            here / f
            for f in sorted(files)
            if Path(f).suffix.lower() in VIDEO_SUFFIXES and not f.startswith(".")
        ]
    return videos


def _listed(list_file: Path) -> list[Path]:
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{printable(list_file)}: cannot read the list of videos ({exc})") from exc
    base = list_file.resolve().parent
    paths = []
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            paths.append(absolute(base / Path(text).expanduser()))
    return paths


def name_videos(paths: list[Path], known: Mapping[str, str]) -> list[Video]:
    """Each path with its output name. `known` maps names to the inputs they were given to before
    (the manifest): an input keeps its name; a new input never takes another input's name."""
    by_input = {inp: name for name, inp in known.items() if printable(name) == name}
    taken = set(known) | RESERVED
    named: dict[Path, str] = {}
    for path in paths:
        name = by_input.pop(printable(path), None)  # a name goes to one input
        real = printable(path.resolve())
        if name is None and by_input.get(real) == printable(path.name):
            name = by_input.pop(real)  # recorded under its real path, as polyp-rt once did
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
    name = printable(path.name)
    yield name
    if path.parent.name:
        yield f"{printable(path.parent.name)}_{name}"
    number = 2
    while True:
        yield f"{name}-{number}"
        number += 1
