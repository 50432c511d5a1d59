"""What became of each video (`VideoRow`), ``summary.csv`` (one row per video), and the formats of
times both the page (batch/page.py) and the closing table use.

A row (`VideoRow`) says what became of one video: its name and input path, status (``ok``,
``damaged``, ``failed`` or ``skipped: <reason>``, e.g. ``skipped: unchanged``), duration, frames, the
throughput its worker achieved (frames/s and × real time), a one-line error, what was wrong with the input (``damage``: a file
cut short or with frames that did not decode; its status is then ``damaged``, and its results hold
the frames that could be read; a rerun that skips it keeps the damage), and, where it was
processed, its episodes with the path of each episode's peak-frame thumbnail relative to the output
folder (by convention ``<video>/peaks/<peak frame, 6 digits>.jpg``, see `peak_thumbnail_path`).

Every text a row holds (name, input, status, error, damage) is printable (`core.names.printable`), so a
file name that is not UTF-8, or holds terminal control characters, comes out escaped in the CSV,
the page and the terminal alike. A CSV cell that a spreadsheet would take for a formula (it starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, OWASP's list) is written with a
leading apostrophe, as spreadsheets expect; numbers stay numbers. The CSV is written atomically
(`core.files.write_atomic`).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyp_rt.core.files import write_atomic
from polyp_rt.core.names import printable
from polyp_rt.evaluation.config import UNGATED
from polyp_rt.evaluation.score import VideoScore

from .episodes import Episode

if TYPE_CHECKING:
    from polyp_rt.batch.truth import TruthOutcome

STATUS_OK = "ok"
STATUS_DAMAGED = "damaged"  # processed, but the input was damaged or cut short
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped: unchanged"

CSV_COLUMNS = (
    "video",
    "input",
    "status",
    "damage",
    "duration_s",
    "frames",
    "fps_achieved",
    "x_realtime",
    "episodes",
    "polyp_s",
    "error",
    # --truth: the video metrics (docs/VIDEO_METRICS.md) of the model's masks, then of what was drawn
    "truth",
    "truth_error",
    "lesions",
    *(
        f"{prefix}{figure}"
        for prefix in ("", "gated_")
        for figure in (
            "found",
            "sensitivity",
            "first_detection_ms",
            "false_alarms_per_min",
            "frame_sensitivity",
            "frame_specificity",
            "dice",
        )
    ),
)
TAU_S = 0.5  # the false alarms of summary.csv and the page: those lasting at least this long
ERROR_MAX_CHARS = 400
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may read as a formula
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def peak_thumbnail_path(video: str, peak_frame: int) -> str:
    """Where a worker keeps an episode's peak-frame thumbnail, relative to the output folder."""
    return f"{video}/peaks/{peak_frame:06d}.jpg"


def one_line(text: str | None, limit: int = ERROR_MAX_CHARS) -> str:
    """`text` on one line (whitespace runs, newlines included, become one space), printable, at
    most `limit` chars."""
    flat = printable(" ".join((text or "").split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass
class VideoRow:
    """What became of one video. ``fps_achieved`` is frames processed per second of worker time.

    ``thumbnails`` runs parallel to ``episodes`` (None: no thumbnail); left empty, it is filled
    with the `peak_thumbnail_path` convention.
    """

    name: str
    input_path: str
    status: str = STATUS_OK
    duration_s: float | None = None
    frames: int = 0
    fps_achieved: float | None = None
    error: str = ""
    damage: str = ""  # what was wrong with the input (stats' `damage`), one line
    episodes: list[Episode] = field(default_factory=list)
    thumbnails: list[str | None] = field(default_factory=list)
    truth: str = ""  # --truth: the video's truth folder ("" where it has none)
    truth_error: str = ""  # why the video has no figures though it has a truth folder
    scores: dict[str, VideoScore] | None = None  # its figures per stream (UNGATED, the drawn one, ...)
    drawn: str = ""  # which of `scores` is what was drawn

    def __post_init__(self) -> None:
        if self.kind == "other":
            raise ValueError(
                f"video {self.name!r}: status {self.status!r} is not one of "
                f"'ok', 'damaged', 'failed', 'skipped' or 'skipped: <reason>'"
            )
        self.episodes = list(self.episodes)
        self.thumbnails = list(self.thumbnails)
        if not self.thumbnails:
            self.thumbnails = [peak_thumbnail_path(self.name, e.peak_frame) for e in self.episodes]
        self.name, self.input_path = printable(self.name), printable(self.input_path)
        self.status, self.error = printable(self.status), one_line(self.error)
        self.damage = one_line(self.damage)
        self.truth, self.truth_error = printable(self.truth), one_line(self.truth_error)
        if len(self.thumbnails) != len(self.episodes):
            raise ValueError(
                f"video {self.name!r}: {len(self.thumbnails)} thumbnails for {len(self.episodes)} episodes"
            )

    @property
    def kind(self) -> str:
        """``ok``, ``damaged``, ``failed``, ``skipped`` (any ``skipped: ...`` status), else ``other``."""
        status = self.status.strip().lower()
        if status in (STATUS_OK, STATUS_DAMAGED, STATUS_FAILED):
            return status
        if status == "skipped" or status.startswith("skipped:"):
            return "skipped"
        return "other"

    @property
    def ran(self) -> bool:
        """Whether the video went through the pipeline in this run (``ok`` or ``damaged``)."""
        return self.kind in (STATUS_OK, STATUS_DAMAGED)

    @property
    def processed(self) -> bool:
        """Whether the video went through the pipeline (now or before): not failed, not an input
        skipped unopened (its duration unknown)."""
        return self.kind != "failed" and (self.ran or self.duration_s is not None)

    def take_truth(self, outcome: TruthOutcome | None) -> None:
        """The video's figures against its truth (or why there are none)."""
        if outcome is None:
            return
        self.truth, self.truth_error = printable(outcome.truth), one_line(outcome.error)
        self.scores, self.drawn = outcome.scores, outcome.drawn

    @property
    def model_score(self) -> VideoScore | None:
        """The figures of the model's masks as they are (before the alert gate)."""
        return self.scores.get(UNGATED) if self.scores else None

    @property
    def drawn_score(self) -> VideoScore | None:
        """The figures of what was drawn (after the alert gate)."""
        return self.scores.get(self.drawn or UNGATED) if self.scores else None

    @property
    def episode_count(self) -> int:
        return len(self.episodes)

    @property
    def polyp_s(self) -> float:
        """Time with the indicator on: the episodes' durations summed."""
        return sum(e.duration_s for e in self.episodes)

    @property
    def worker_s(self) -> float | None:
        """Worker time spent on the frames, from ``frames / fps_achieved``."""
        if self.fps_achieved and self.fps_achieved > 0 and self.frames > 0:
            return self.frames / self.fps_achieved
        return None

    @property
    def x_realtime(self) -> float | None:
        """How many times faster than real time its worker went: duration ÷ worker time."""
        worker_s = self.worker_s
        return self.duration_s / worker_s if worker_s and self.duration_s else None

    @property
    def timeline_s(self) -> float:
        """The span a timeline draws: the duration, or the last episode's end where that is later."""
        ends = [e.end_s for e in self.episodes]
        return max([self.duration_s or 0.0, *ends])

    def to_dict(self) -> dict[str, Any]:
        return {
            "video": self.name,
            "input": self.input_path,
            "status": self.status,
            "duration_s": self.duration_s,
            "frames": self.frames,
            "fps_achieved": self.fps_achieved,
            "episodes": [e.to_dict() for e in self.episodes],
            "thumbnails": list(self.thumbnails),
            "polyp_s": self.polyp_s,
            "error": one_line(self.error),
            "damage": self.damage,
            "truth": self.truth,
            "truth_error": self.truth_error,
            "scores": None if self.scores is None else {n: v.to_json() for n, v in self.scores.items()},
            "drawn": self.drawn,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoRow:
        """A row from `to_dict` output (or an equivalent mapping, e.g. a Ray task's result)."""
        return cls(
            name=str(data.get("video", data.get("name", ""))),
            input_path=str(data.get("input", data.get("input_path", ""))),
            status=str(data.get("status", STATUS_OK)),
            duration_s=None if data.get("duration_s") is None else float(data["duration_s"]),
            frames=int(data.get("frames") or 0),
            fps_achieved=None if data.get("fps_achieved") is None else float(data["fps_achieved"]),
            error=str(data.get("error") or ""),
            damage=str(data.get("damage") or ""),
            episodes=[
                e if isinstance(e, Episode) else Episode.from_dict(e) for e in data.get("episodes") or []
            ],
            thumbnails=list(data.get("thumbnails") or []),
            truth=str(data.get("truth") or ""),
            truth_error=str(data.get("truth_error") or ""),
            scores=None
            if data.get("scores") is None
            else {n: VideoScore.from_json(v) for n, v in data["scores"].items()},
            drawn=str(data.get("drawn") or ""),
        )


def rows_of(rows: Iterable[VideoRow | Mapping[str, Any]]) -> list[VideoRow]:
    """Rows, each a `VideoRow` (mappings, e.g. `to_dict` output, converted)."""
    return [r if isinstance(r, VideoRow) else VideoRow.from_dict(r) for r in rows]


# ---------------------------------------------------------------------------------------------
# CSV


def _num(value: float | None, digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def csv_text(text: str) -> str:
    """A text cell as spreadsheets read it safely: one that starts like a formula gets a leading
    apostrophe (shown as text, not run), unless it is a number (``-1.5`` stays a number)."""
    if text.startswith(FORMULA_START) and not NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_summary_csv(rows: Iterable[VideoRow | Mapping[str, Any]], path: str | Path) -> Path:
    """``summary.csv``: a header (`CSV_COLUMNS`) and one row per video, in the order given."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows_of(rows):
        failed = not row.processed  # episodes unknown, not zero
        writer.writerow(
            [
                csv_text(row.name),
                csv_text(row.input_path),
                csv_text(row.status),
                csv_text(row.damage),
                _num(row.duration_s, 3),
                row.frames,
                _num(row.fps_achieved, 2),
                _num(row.x_realtime, 2),
                "" if failed else row.episode_count,
                "" if failed else _num(row.polyp_s, 3),
                csv_text(row.error),
                *metric_cells(row),
            ]
        )
    path = Path(path)
    write_atomic(path, buffer.getvalue())
    return path


def metric_cells(row: VideoRow) -> list[str | int]:
    """The --truth columns of `row` (empty where it has no figures)."""
    head: list[str | int] = [csv_text(row.truth), csv_text(row.truth_error)]
    model, drawn = row.model_score, row.drawn_score
    if model is None or drawn is None:
        return head + [""] * (1 + 2 * 7)
    return head + [len(model.lesions), *figures(model), *figures(drawn)]


def figures(score: VideoScore) -> list[str | int]:
    """found, sensitivity, median first detection (ms), false alarms >= TAU_S per minute, per-frame
    sensitivity and specificity, Dice: as the CSV writes them ("" where there is nothing to count)."""
    quartiles = score.delay_quartiles("ms")
    return [
        score.found,
        _num(score.sensitivity, 4),
        _num(None if quartiles is None else quartiles[1], 1),
        _num(score.alarms_per_minute(TAU_S), 3),
        _num(score.frame_sensitivity, 4),
        _num(score.frame_specificity, 4),
        _num(score.dice, 4),
    ]


# ---------------------------------------------------------------------------------------------
# Formatting


def fmt_clock(seconds: float | None) -> str:
    """A time in a video as ``mm:ss``, or ``h:mm:ss`` from one hour on (seconds rounded down)."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def fmt_span(seconds: float | None) -> str:
    """A duration: ``0 s``, ``0.04 s``, ``8.4 s``, ``2 min 07 s``, ``1 h 02 min``."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds <= 0:
        return "0 s"
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    total = int(seconds)
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"


def fmt_hms(seconds: float) -> str:
    """A total time as ``h:mm:ss`` (hours unbounded, e.g. ``112:34:10``)."""
    total = max(0, int(seconds)) if math.isfinite(seconds) else 0
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def fmt_pct(fraction: float) -> str:
    if fraction <= 0:
        return "0 %"
    return f"{100 * fraction:.1f} %" if fraction >= 0.001 else f"{100 * fraction:.2f} %"
