"""Polyp episodes: maximal runs of frames with the indicator on, found in one pass over a video.

A worker writes one record per frame to ``frames.jsonl``::

    {"frame": 123, "t": 4.92, "area": 0.031, "max_prob": 0.97, "polyp": true}

``t`` is the presentation time in seconds, ``area`` the fraction of the frame predicted as polyp
and ``polyp`` the (hysteresis) indicator state. An episode is a maximal run of consecutive records
with ``polyp`` true. It starts at the presentation time of its first frame and ends when its last
frame stops being shown: at the next frame's time, or, where there is no next frame (the video ends
inside the episode) or the next frame is far away (a gap in the timestamps), one frame period later,
the period being the median of the recent frame intervals. This holds for variable frame rates too.

`EpisodeTracker` does this incrementally, one frame at a time, so a worker never holds a video's
frame records in memory, and says when a frame is the new peak (largest area) of the current
episode, so the worker can keep that frame's thumbnail. `episodes()` runs the tracker over an
iterable of records.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from polyp_rt.core.files import json_lines

# A frame interval longer than this many typical periods is a gap in the timestamps (frames the
# decoder skipped), not a slow frame: the last frame of an episode then counts one typical period.
MAX_GAP_PERIODS = 3.0
# How many recent frame intervals the frame-period estimate (their median) looks at.
PERIOD_WINDOW = 64


@dataclass(frozen=True, slots=True)
class Episode:
    """One polyp episode; times are presentation times in seconds, frames are frame indices.

    ``end_frame`` is the last frame of the run (inclusive); ``end_s`` is when that frame stops
    being shown. ``at_video_end`` is true when the video ended while the indicator was still on
    (``end_s`` is then the last frame's time plus one estimated frame period).
    """

    start_s: float
    end_s: float
    duration_s: float
    start_frame: int
    end_frame: int
    frames: int
    peak_area: float
    peak_frame: int
    peak_t: float
    max_prob: float
    at_video_end: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """Strict JSON (raises ValueError on NaN or Infinity rather than writing them)."""
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Episode:
        """The inverse of `to_dict` (also accepts the parsed output of `to_json`)."""
        try:
            return cls(
                start_s=float(data["start_s"]),
                end_s=float(data["end_s"]),
                duration_s=float(data["duration_s"]),
                start_frame=int(data["start_frame"]),
                end_frame=int(data["end_frame"]),
                frames=int(data["frames"]),
                peak_area=float(data["peak_area"]),
                peak_frame=int(data["peak_frame"]),
                peak_t=float(data["peak_t"]),
                max_prob=float(data["max_prob"]),
                at_video_end=bool(data.get("at_video_end", False)),
            )
        except KeyError as exc:
            raise ValueError(f"episode record lacks {exc.args[0]!r}: {dict(data)!r}") from None


@dataclass(frozen=True, slots=True)
class Step:
    """What one frame did to the tracker.

    ``new_peak``: this frame is the new peak of the current episode (keep its thumbnail; the first
    frame of an episode always is one). ``started``: this frame opened an episode. ``closed``: the
    episode that ended just before this frame (its thumbnail is the last one kept), else None.
    """

    new_peak: bool = False
    started: bool = False
    closed: Episode | None = None


@dataclass(slots=True)
class _Open:
    start_s: float
    start_frame: int
    last_frame: int
    last_t: float
    frames: int
    peak_area: float
    peak_frame: int
    peak_t: float
    max_prob: float


def _finite(value: Any, name: str, frame: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"frame {frame}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"frame {frame}: {name} must be finite, got {value!r}")
    return number


@dataclass
class EpisodeTracker:
    """Finds episodes frame by frame. Feed frames in presentation order, then call `finish()`.

    ``nominal_fps`` (the container's frame rate, if known) gives the frame period only while no
    frame interval has been seen yet (a one-frame video); after that the timestamps decide.
    """

    nominal_fps: float | None = None
    episodes: list[Episode] = field(default_factory=list, init=False)
    frames_seen: int = field(default=0, init=False)
    first_t: float | None = field(default=None, init=False)
    last_t: float | None = field(default=None, init=False)
    _intervals: deque[float] = field(default_factory=lambda: deque(maxlen=PERIOD_WINDOW), init=False)
    _open: _Open | None = field(default=None, init=False)
    _finished: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.nominal_fps is not None and not (math.isfinite(self.nominal_fps) and self.nominal_fps > 0):
            raise ValueError(f"nominal_fps must be a positive number, got {self.nominal_fps!r}")

    @property
    def in_episode(self) -> bool:
        return self._open is not None

    @property
    def period_s(self) -> float:
        """The frame period estimate: median of the recent positive frame intervals."""
        if self._intervals:
            return statistics.median(self._intervals)
        return 1.0 / self.nominal_fps if self.nominal_fps else 0.0

    @property
    def polyp_s(self) -> float:
        """Time with the indicator on, over the closed episodes."""
        return sum(e.duration_s for e in self.episodes)

    @property
    def duration_s(self) -> float:
        """The span of the frames seen: first frame's time to the end of the last frame."""
        if self.first_t is None or self.last_t is None:
            return 0.0
        return self.last_t - self.first_t + self.period_s

    def update(self, frame: int, t: float, area: float, polyp: bool, max_prob: float) -> Step:
        """Feed one frame; returns what it did (see `Step`)."""
        if self._finished:
            raise RuntimeError("EpisodeTracker.update() after finish()")
        t = _finite(t, "t", frame)
        area = _finite(area, "area", frame)
        max_prob = _finite(max_prob, "max_prob", frame)
        frame = int(frame)
        self.frames_seen += 1
        closed: Episode | None = None
        if self.last_t is not None and t > self.last_t:
            self._intervals.append(t - self.last_t)
        if self.first_t is None:
            self.first_t = t
        current = self._open
        if current is not None and not polyp:
            closed = self._close(current, next_t=t)
        self.last_t = t
        if not polyp:
            return Step(closed=closed)
        if current is None:
            self._open = _Open(t, frame, frame, t, 1, area, frame, t, max_prob)
            return Step(new_peak=True, started=True)
        current.last_frame, current.last_t = frame, t
        current.frames += 1
        current.max_prob = max(current.max_prob, max_prob)
        if area > current.peak_area:  # ties: the earliest frame stays the peak
            current.peak_area, current.peak_frame, current.peak_t = area, frame, t
            return Step(new_peak=True)
        return Step()

    def feed(self, record: Mapping[str, Any]) -> Step:
        """`update` from one frames.jsonl record."""
        try:
            return self.update(
                record["frame"], record["t"], record["area"], bool(record["polyp"]), record["max_prob"]
            )
        except KeyError as exc:
            raise ValueError(f"frame record lacks {exc.args[0]!r}: {dict(record)!r}") from None

    def finish(self) -> Episode | None:
        """End of video: closes and returns the episode still open, if any (idempotent)."""
        self._finished = True
        current = self._open
        return self._close(current, next_t=None) if current is not None else None

    def _close(self, current: _Open, next_t: float | None) -> Episode:
        period = self.period_s
        shown = math.nan if next_t is None else next_t - current.last_t
        if next_t is not None and shown > 0 and not (period > 0 and shown > MAX_GAP_PERIODS * period):
            end_s = next_t  # the last frame is shown until the next one
        else:
            end_s = current.last_t + period  # end of video, or a gap in the timestamps
        episode = Episode(
            start_s=current.start_s,
            end_s=end_s,
            duration_s=end_s - current.start_s,
            start_frame=current.start_frame,
            end_frame=current.last_frame,
            frames=current.frames,
            peak_area=current.peak_area,
            peak_frame=current.peak_frame,
            peak_t=current.peak_t,
            max_prob=current.max_prob,
            at_video_end=next_t is None,
        )
        self.episodes.append(episode)
        self._open = None
        return episode


def episodes(frames: Iterable[Mapping[str, Any]], nominal_fps: float | None = None) -> list[Episode]:
    """All episodes of a video's frame records (in presentation order), using `EpisodeTracker`."""
    tracker = EpisodeTracker(nominal_fps=nominal_fps)
    for record in frames:
        tracker.feed(record)
    tracker.finish()
    return tracker.episodes


def iter_frames_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a frames.jsonl file, one at a time; a malformed line raises ValueError
    naming the file and line (blank lines are allowed)."""
    path = Path(path)
    for number, record in json_lines(path):
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        yield record
