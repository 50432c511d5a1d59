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
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from polyp_rt.core.errors import InputFileError
from polyp_rt.core.files import write_json
from polyp_rt.realtime.config import RunConfig

log = logging.getLogger(__name__)

FORMAT = "polyp-rt batch manifest"
VERSION = 1
CHUNK = 1 << 20
# RunConfig's options that do not change a video's results: the video and the model file (their
# content is compared instead), where and how fast it runs (the inference mode gives the same
# masks), a live run's window and reports, and how a live source is kept open. Every other option does: with another value the video is redone.
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
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns, sha256_of(path))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
        return cls(path, dict(data["videos"]))

    def save(self) -> None:
        write_json(self.path, {"format": FORMAT, "version": VERSION, "videos": self.videos})

    def names(self) -> dict[str, str]:
        """Output name -> the input it belongs to."""
        return {name: str(entry.get("input", "")) for name, entry in self.videos.items()}

    def finished(
        self, name: str, path: Path, settings: dict[str, Any], out_dir: Path
    ) -> dict[str, Any] | None:
        """The entry of `name` if its result is in place and `path` is unchanged since, with the
        same `settings`; else None. A matching SHA-256 under a new time updates the time."""
        entry = self.videos.get(name)
        if entry is None or entry.get("input") != str(path) or entry.get("settings") != settings:
            return None
        if not (out_dir / name).is_dir():
            return None
        try:
            st = path.stat()
        except OSError:
            return None
        if st.st_size != entry.get("size"):
            return None
        if st.st_mtime_ns != entry.get("mtime_ns"):
            try:
                same = sha256_of(path) == entry.get("sha256")
            except OSError:
                return None
            if not same:
                return None
            log.info("%s: modification time changed, content did not: still finished", path)
            entry["mtime_ns"] = st.st_mtime_ns
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
            "input": str(path),
            "size": fingerprint.size,
            "mtime_ns": fingerprint.mtime_ns,
            "sha256": fingerprint.sha256,
            "settings": settings,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            **figures,
        }
        self.save()

    def forget(self, names: list[str]) -> None:
        """Drop entries (their videos are redone); saved at once, before any result is replaced."""
        dropped = [n for n in names if self.videos.pop(n, None) is not None]
        if dropped:
            self.save()


def settings_of(run: RunConfig) -> dict[str, Any]:
    """What makes two results of one video the same, as the manifest keeps it (JSON): the model's
    SHA-256 and the options of `run` that change results (all but `NOT_RESULTS`)."""
    options = {name: value for name, value in asdict(run).items() if name not in NOT_RESULTS}
    settings = {"model_sha256": sha256_of(run.model), **options}
    loaded: dict[str, Any] = json.loads(json.dumps(settings, default=str, allow_nan=False))
    return loaded
