"""`DIR/manifest.json`: what a batch has finished, so that a rerun skips it.

One entry per finished video, under its output name: the input's path, size, modification time
and SHA-256, the settings it was processed with, when, and its summary figures. The driver alone
writes it, as strict JSON, atomically (a reader sees the old file or the new one, never half),
after each video whose results are in place; an entry is removed before its video is redone. So
every entry names a complete result folder.

A video is unchanged when its size and modification time are those recorded, or, where only the
time differs (a copy, a `touch`), when its SHA-256 is; anything else redoes it. So does a change of
the settings (`settings_of`): the model's content and every option of the run's `RunConfig` but
those in `NOT_RESULTS`, so an option added to the pipeline counts from the start.

The driver renames, replaces and deletes the folders the manifest names, so a manifest is refused
whole (`Manifest.load`) where a name is not one folder directly inside the output folder (`../x`,
an absolute path, a reserved name, a symbolic link): nothing is touched. An input is kept as
printable text (`core.names.printable`), as the summary shows it. A folder holding a manifest is
the output of a batch (`is_batch_output`): no later batch takes its recordings for procedures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from polyp_rt.core.errors import InputFileError
from polyp_rt.core.files import write_json
from polyp_rt.core.names import printable
from polyp_rt.realtime.config import RunConfig

log = logging.getLogger(__name__)

FORMAT = "polyp-rt batch manifest"
VERSION = 1
CHUNK = 1 << 20
MANIFEST = "manifest.json"
# names in the output folder that are not a video's folder
RESERVED = frozenset({"summary.csv", "report.html", MANIFEST, ".work", ".lock"})
# RunConfig's options that do not change a video's results: the video and the model file (their
# content is compared instead), where and how fast it runs (the inference mode gives the same
# masks), a live run's window, browser view and reports, and how a live source is kept open.
# Every other option does: with another value the video is redone.
NOT_RESULTS = frozenset(
    {
        "source",
        "model",
        "device",
        "cuda_graph",
        "threads",
        "stages",
        "queue_size",
        "inference",
        "headless",
        "serve",
        "token",
        "stats_json",
        "overwrite",
        "capture",
    }
)


@dataclass(frozen=True)
class Fingerprint:
    """What identifies an input's content: size, modification time (ns) and SHA-256."""

    size: int
    mtime_ns: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> Fingerprint:
        """Stat first, then hash: a file changed while it is hashed shows a newer time next run."""
        with _open_regular(path) as f:
            st = os.fstat(f.fileno())
            return cls(st.st_size, st.st_mtime_ns, _sha256(f))


def sha256_of(path: Path) -> str:
    """The SHA-256 of a regular file (InputFileError for a FIFO, a device, a folder)."""
    with _open_regular(path) as f:
        return _sha256(f)


def _sha256(f: Any) -> str:
    digest = hashlib.sha256()
    while chunk := f.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _open_regular(path: Path) -> Any:
    """`path` open for reading, checked to be a regular file before a byte is read: opened without
    waiting (a FIFO would wait for a writer), then its kind is taken from the open file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    kind = os.fstat(fd).st_mode
    if not stat.S_ISREG(kind):
        os.close(fd)
        raise InputFileError(f"{printable(path)}: {file_kind(kind)}, not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def file_kind(mode: int) -> str:
    """What a file of this mode is, in words ("a FIFO", "a folder", ...)."""
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((words for test, words in kinds if test(mode)), "a file of an unknown kind")


def is_batch_output(folder: Path) -> bool:
    """Whether `folder` is the output folder of a polyp-rt batch: it holds our manifest."""
    manifest = folder / MANIFEST
    try:
        if not manifest.is_file():
            return False
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


@dataclass
class Manifest:
    path: Path
    videos: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """The manifest at `path` (empty where there is none); InputFileError if it is not ours."""
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(
                f"{path}: not a readable batch manifest ({exc}); move it away to redo every video"
            ) from exc
        if (
            not isinstance(data, dict)
            or data.get("format") != FORMAT
            or not isinstance(data.get("videos"), dict)
        ):
            raise InputFileError(f"{path}: not a polyp-rt batch manifest; pick another --out")
        if data.get("version") != VERSION:
            raise InputFileError(
                f"{path}: manifest version {data.get('version')!r}, this polyp-rt reads {VERSION}"
            )
        for name, entry in data["videos"].items():
            problem = _not_a_result(path.parent, name, entry)
            if problem:
                raise InputFileError(
                    f'{printable(path)}: its entry "{printable(name)}" {problem}; the manifest was '
                    "edited or belongs elsewhere, so nothing was touched: move it away to redo every video"
                )
        return cls(path, dict(data["videos"]))

    def save(self) -> None:
        write_json(self.path, {"format": FORMAT, "version": VERSION, "videos": self.videos})

    def names(self) -> dict[str, str]:
        """Output name -> the input it belongs to (as `printable` writes it)."""
        return {name: str(entry.get("input", "")) for name, entry in self.videos.items()}

    def finished(
        self, name: str, path: Path, settings: dict[str, Any], out_dir: Path
    ) -> dict[str, Any] | None:
        """The entry of `name` if its result is in place and `path` is unchanged since, with the
        same `settings`; else None. A matching SHA-256 under a new time updates the time."""
        entry = self.videos.get(name)
        if entry is None or entry.get("settings") != settings:
            return None
        if entry.get("input") not in (printable(path), printable(path.resolve())):  # see name_videos
            return None
        if not (out_dir / name).is_dir():
            return None
        try:
            st = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size != entry.get("size"):
            return None
        if st.st_mtime_ns != entry.get("mtime_ns"):
            try:
                same = sha256_of(path) == entry.get("sha256")
            except (OSError, InputFileError):
                return None
            if not same:
                return None
            log.info("%s: modification time changed, content did not: still finished", printable(path))
            entry["mtime_ns"] = st.st_mtime_ns
        entry["input"] = printable(path)  # as named now
        return entry

    def record(
        self,
        name: str,
        path: Path,
        fingerprint: Fingerprint,
        settings: dict[str, Any],
        figures: dict[str, Any],
    ) -> None:
        self.videos[name] = {
            "input": printable(path),
            "size": fingerprint.size,
            "mtime_ns": fingerprint.mtime_ns,
            "sha256": fingerprint.sha256,
            "settings": settings,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            **figures,
        }
        self.save()

    def update(self, name: str, **values: Any) -> None:
        """Change what the entry of a finished video says (saved at once)."""
        self.videos[name].update(values)
        self.save()

    def forget(self, names: list[str]) -> None:
        """Drop entries (their videos are redone); saved at once, before any result is replaced."""
        dropped = [n for n in names if self.videos.pop(n, None) is not None]
        if dropped:
            self.save()


def _not_a_result(out: Path, name: Any, entry: Any) -> str | None:
    """What is wrong with a manifest entry as the name of a result folder in `out`, or None."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
        return f"is not a folder name inside {printable(out)}"
    if name in RESERVED:
        return f"names {name}, which is not a video's folder"
    if not isinstance(entry, dict):
        return "is not a record of a finished video"
    if (out / name).is_symlink():
        return f"is a symbolic link to {printable(os.readlink(out / name))}, not a folder of results"
    return None


def settings_of(run: RunConfig) -> dict[str, Any]:
    """What makes two results of one video the same, as the manifest keeps it (JSON): the model's
    SHA-256 and the options of `run` that change results (all but `NOT_RESULTS`)."""
    options = {name: value for name, value in asdict(run).items() if name not in NOT_RESULTS}
    settings = {"model_sha256": sha256_of(run.model_file), **options}
    loaded: dict[str, Any] = json.loads(json.dumps(settings, default=str, allow_nan=False))
    return loaded
