"""The figures of one stream of alerts against the truth, and of many pooled (docs/VIDEO_METRICS.md).

`VideoScore` keeps counts, durations and the lists of lesions and false alarms, so scores of many
videos pool exactly (`pool`): lesions are counted over all videos, false alarms over all minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from polyp_rt.core.errors import PolypRtError

EPS_S = 1e-6  # durations are sums of frame intervals: a run of exactly tau counts


@dataclass(frozen=True)
class Lesion:
    """One lesion: a run of truth frames with a polyp (or a span truth.json lists)."""

    first_frame: int
    last_frame: int
    start_s: float
    truth_frames: int
    found: bool
    first_hit_frame: int | None  # first frame an alert overlaps the lesion
    delay_frames: int | None  # time to first detection, in frames and ms
    delay_ms: float | None
    coverage: float  # share of the lesion's time with an alert on it


@dataclass(frozen=True)
class Alarm:
    """An alert run that overlaps no truth."""

    first_frame: int
    last_frame: int
    start_s: float
    duration_s: float
    frames: int


@dataclass(frozen=True)
class VideoScore:
    name: str
    frames: int
    duration_s: float
    overlap: str  # "mask" (alerts and truth compared pixel by pixel) or "time" (frame by frame)
    taus: tuple[float, ...]
    lesions: tuple[Lesion, ...]
    false_alarms: tuple[Alarm, ...]  # every one, however short; `alarms(tau)` counts the long ones
    alert_runs: int
    truth_frames: int  # frames with a polyp in the truth
    hit_frames: int  # of those, with an alert on the polyp
    clear_frames: int  # frames without a polyp in the truth
    quiet_frames: int  # of those, without an alert
    switches: int  # alert on -> off and off -> on, frame to frame
    dice_sum: float  # per-frame Dice, summed (mask overlap only)
    dice_frames: int
    iou_sum: float  # IoU of consecutive frames' masks, summed over pairs where one is not empty
    iou_pairs: int

    # ------------------------------------------------------------ lesions

    @property
    def found(self) -> int:
        return sum(lesion.found for lesion in self.lesions)

    @property
    def sensitivity(self) -> float | None:
        return self.found / len(self.lesions) if self.lesions else None

    def delays(self, unit: str = "ms") -> list[float]:
        """Times to first detection of the found lesions, in ms or frames."""
        key = "delay_ms" if unit == "ms" else "delay_frames"
        return [float(getattr(lesion, key)) for lesion in self.lesions if lesion.found]

    def delay_quartiles(self, unit: str = "ms") -> tuple[float, float, float] | None:
        """(25th percentile, median, 75th percentile) of the times to first detection."""
        values = self.delays(unit)
        if not values:
            return None
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        return float(q1), float(median), float(q3)

    @property
    def coverage(self) -> float | None:
        """Mean over lesions of the share of each lesion's time with an alert on it."""
        return float(np.mean([lesion.coverage for lesion in self.lesions])) if self.lesions else None

    # ------------------------------------------------------------ false alarms

    def alarms(self, tau: float) -> list[Alarm]:
        return [a for a in self.false_alarms if a.duration_s >= tau - EPS_S]

    def per_minute(self, count: float) -> float | None:
        return count / (self.duration_s / 60) if self.duration_s > 0 else None

    def alarms_per_minute(self, tau: float) -> float | None:
        return self.per_minute(len(self.alarms(tau)))

    def alarm_share(self, tau: float) -> float | None:
        """Share of the video's time inside false alarms lasting at least `tau`."""
        if self.duration_s <= 0:
            return None
        return sum(a.duration_s for a in self.alarms(tau)) / self.duration_s

    # ------------------------------------------------------------ frames

    @property
    def frame_sensitivity(self) -> float | None:
        return self.hit_frames / self.truth_frames if self.truth_frames else None

    @property
    def frame_specificity(self) -> float | None:
        return self.quiet_frames / self.clear_frames if self.clear_frames else None

    @property
    def dice(self) -> float | None:
        return self.dice_sum / self.dice_frames if self.dice_frames else None

    @property
    def switches_per_minute(self) -> float | None:
        return self.per_minute(self.switches)

    @property
    def frame_iou(self) -> float | None:
        return self.iou_sum / self.iou_pairs if self.iou_pairs else None

    def to_json(self) -> dict[str, Any]:
        """Everything the score holds (counts and the lists of lesions and alarms), as JSON values:
        `from_json` gives the same score back, so stored scores still pool exactly."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VideoScore:
        """The score `to_json` wrote; ValueError where `data` is not one."""
        try:
            fields = dict(data)
            fields["taus"] = tuple(float(t) for t in fields["taus"])
            fields["lesions"] = tuple(Lesion(**lesion) for lesion in fields["lesions"])
            fields["false_alarms"] = tuple(Alarm(**alarm) for alarm in fields["false_alarms"])
            return cls(**fields)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a stored video score ({exc})") from None

    def summary(self, lesions: bool = True) -> dict[str, Any]:
        """Every figure, for JSON (None where a figure has nothing to count); `lesions`: with the
        per-lesion list."""
        quartiles = {unit: self.delay_quartiles(unit) for unit in ("ms", "frames")}
        out: dict[str, Any] = {
            "name": self.name,
            "frames": self.frames,
            "duration_s": self.duration_s,
            "overlap": self.overlap,
            "lesions": len(self.lesions),
            "lesions_found": self.found,
            "lesion_sensitivity": self.sensitivity,
            **{
                f"first_detection_{unit}": None
                if q is None
                else dict(zip(("q1", "median", "q3"), q, strict=True))
                for unit, q in quartiles.items()
            },
            "lesion_coverage": self.coverage,
            "alert_runs": self.alert_runs,
            "false_alarms": [
                {
                    "tau_s": tau,
                    "count": len(self.alarms(tau)),
                    "per_minute": self.alarms_per_minute(tau),
                    "share_of_time": self.alarm_share(tau),
                }
                for tau in self.taus
            ],
            "frame_sensitivity": self.frame_sensitivity,
            "frame_specificity": self.frame_specificity,
            "dice": self.dice,
            "switches_per_minute": self.switches_per_minute,
            "frame_to_frame_iou": self.frame_iou,
        }
        if lesions:
            out["per_lesion"] = [asdict(lesion) for lesion in self.lesions]
        return out


def pool(scores: Sequence[VideoScore], name: str = "all videos") -> VideoScore:
    """The scores of many videos as one: lesions and alarms listed together, counts summed."""
    if not scores:
        raise PolypRtError("nothing to pool: no video scores")
    if len({s.taus for s in scores}) > 1 or len({s.overlap for s in scores}) > 1:
        raise PolypRtError("cannot pool scores made with different --tau values or overlap rules")

    def total(key: str) -> Any:
        return sum(getattr(s, key) for s in scores)

    return VideoScore(
        name=name,
        frames=total("frames"),
        duration_s=total("duration_s"),
        overlap=scores[0].overlap,
        taus=scores[0].taus,
        lesions=tuple(lesion for s in scores for lesion in s.lesions),
        false_alarms=tuple(alarm for s in scores for alarm in s.false_alarms),
        **{
            key: total(key)
            for key in (
                "alert_runs",
                "truth_frames",
                "hit_frames",
                "clear_frames",
                "quiet_frames",
                "switches",
                "dice_sum",
                "dice_frames",
                "iou_sum",
                "iou_pairs",
            )
        },
    )
