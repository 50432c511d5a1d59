"""One stream of predictions against the truth, frame by frame, then the video's figures.

`VideoScorer.add` takes a frame's truth mask and its prediction: a mask (alerts are its regions,
followed from frame to frame and compared with the truth pixel by pixel: evaluation/regions.py) or
only the area it covers (as a batch record holds it: an alert is a run of frames whose area reaches
`min_area`, compared with the truth frame by frame). It keeps a few numbers per frame, never the
masks, so an hour of video fits; `finish` finds the lesions and returns a `VideoScore`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from polyp_rt.core.errors import DataError
from polyp_rt.evaluation.config import MetricsConfig
from polyp_rt.evaluation.regions import RegionTracker
from polyp_rt.evaluation.score import Alarm, Lesion, VideoScore
from polyp_rt.train.metrics import Counts

MAX_GAP_PERIODS = 3.0  # a longer frame interval is a gap in the timestamps: it counts one period


@dataclass
class VideoScorer:
    """Feed every frame in order with `add`, then call `finish`."""

    min_area: float  # an alert is a prediction covering at least this fraction of the frame
    name: str = ""
    index: list[int] = field(default_factory=list)
    t: list[float] = field(default_factory=list)
    truth: list[bool] = field(default_factory=list)
    alert: list[bool] = field(default_factory=list)
    hit: list[bool] = field(default_factory=list)  # an alert on the polyp
    dice: list[float] = field(default_factory=list)
    iou_sum: float = 0.0
    iou_pairs: int = 0
    masks: bool | None = None  # predictions were masks (None: no frame yet)
    tracker: RegionTracker | None = None  # the alert regions of mask predictions
    _previous: tuple[np.ndarray, int] | None = None  # the last prediction and its pixel count

    def add(self, index: int, t: float, truth: np.ndarray, prediction: np.ndarray | float) -> None:
        """One frame: its index, presentation time (s), truth mask and prediction (mask or area)."""
        is_mask = isinstance(prediction, np.ndarray)
        if self.masks is None:
            self.masks = is_mask
        assert self.masks == is_mask, "a stream's predictions are all masks or all areas"
        if isinstance(prediction, np.ndarray):
            counts = self._counts(prediction, truth)
            polyp = counts.tp + counts.fn > 0
            if self.tracker is None:
                self.tracker = RegionTracker(self.min_area)
            alert, hit = self.tracker.add(len(self.t), _as_u8(prediction), _as_u8(truth))
            self.dice.append(counts.ratios()["dice"])
        else:
            polyp = bool(truth.any())
            alert = float(prediction) >= self.min_area
            hit = alert and polyp
        self.index.append(int(index))
        self.t.append(float(t))
        self.truth.append(polyp)
        self.alert.append(alert)
        self.hit.append(hit)

    def _counts(self, prediction: np.ndarray, truth: np.ndarray) -> Counts:
        """The confusion counts (OpenCV counts pixels 10x faster than numpy), and the IoU with the
        previous frame's prediction."""
        pred, gt = _as_u8(prediction), _as_u8(truth)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {pred.shape} and truth {gt.shape} differ in shape")
        n_pred, n_truth = cv2.countNonZero(pred), cv2.countNonZero(gt)
        tp = cv2.countNonZero(cv2.bitwise_and(pred, gt)) if n_pred and n_truth else 0
        previous, self._previous = self._previous, (pred, n_pred)
        if previous is not None and previous[0].shape == pred.shape and (previous[1] or n_pred):
            both = cv2.countNonZero(cv2.bitwise_and(previous[0], pred)) if previous[1] and n_pred else 0
            self.iou_sum += both / (previous[1] + n_pred - both)
            self.iou_pairs += 1
        return Counts(tp, n_pred - tp, n_truth - tp, gt.size - n_pred - n_truth + tp)

    def finish(
        self,
        config: MetricsConfig,
        lesions: Sequence[tuple[int, int]] | None = None,
        nominal_fps: float | None = None,
    ) -> VideoScore:
        """The figures; `lesions`: each lesion's (first, last) frame, as truth.json lists them."""
        taus = config.taus()
        durations = frame_durations(self.t, nominal_fps)
        if self.tracker is not None:  # alerts: regions followed over frames
            found = self.tracker.finished()
            alerts, alarms = len(found), [range(a.first, a.last + 1) for a in found if not a.hit]
        else:  # alerts: runs of frames
            runs = runs_of(self.alert)
            alerts, alarms = len(runs), [r for r in runs if not any(self.hit[p] for p in r)]
        groups = (
            spans_to_lesions(self.truth, self.index, lesions)
            if lesions is not None
            else gap_lesions(self.truth, config.lesion_gap)
        )
        clear = [not polyp for polyp in self.truth]
        return VideoScore(
            name=self.name,
            frames=len(self.t),
            duration_s=float(sum(durations)),
            overlap="mask" if self.masks else "time",
            taus=taus,
            lesions=tuple(self._lesion(group, durations) for group in groups),
            false_alarms=tuple(self._alarm(run, durations) for run in alarms),
            alert_runs=alerts,
            truth_frames=sum(self.truth),
            hit_frames=sum(self.hit),
            clear_frames=sum(clear),
            quiet_frames=sum(c and not a for c, a in zip(clear, self.alert, strict=True)),
            switches=sum(a != b for a, b in zip(self.alert, self.alert[1:], strict=False)),
            dice_sum=float(sum(self.dice)),
            dice_frames=len(self.dice),
            iou_sum=self.iou_sum,
            iou_pairs=self.iou_pairs,
        )

    def _lesion(self, positions: list[int], durations: list[float]) -> Lesion:
        first = positions[0]
        hits = [p for p in positions if self.hit[p]]
        seen = sum(durations[p] for p in positions)
        covered = sum(durations[p] for p in hits)
        hit = hits[0] if hits else None
        return Lesion(
            first_frame=self.index[first],
            last_frame=self.index[positions[-1]],
            start_s=self.t[first],
            truth_frames=len(positions),
            found=hit is not None,
            first_hit_frame=None if hit is None else self.index[hit],
            delay_frames=None if hit is None else self.index[hit] - self.index[first],
            delay_ms=None if hit is None else (self.t[hit] - self.t[first]) * 1000.0,
            coverage=covered / seen if seen > 0 else float(bool(hits)),
        )

    def _alarm(self, run: range, durations: list[float]) -> Alarm:
        return Alarm(
            first_frame=self.index[run[0]],
            last_frame=self.index[run[-1]],
            start_s=self.t[run[0]],
            duration_s=float(sum(durations[p] for p in run)),
            frames=len(run),
        )


def frame_durations(t: Sequence[float], nominal_fps: float | None = None) -> list[float]:
    """How long each frame is shown: until the next one, or one typical period (the median frame
    interval) for the last frame and across a gap in the timestamps."""
    steps = [b - a for a, b in zip(t, t[1:], strict=False) if b > a]
    period = statistics.median(steps) if steps else (1.0 / nominal_fps if nominal_fps else 0.0)
    out = []
    for a, b in zip(t, [*t[1:], None], strict=True):
        step = None if b is None else b - a
        out.append(step if step is not None and 0 < step <= MAX_GAP_PERIODS * period else period)
    return out


def runs_of(flags: Sequence[bool]) -> list[range]:
    """Maximal runs of True, as ranges of positions."""
    runs, start = [], None
    for p, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = p
        elif not flag and start is not None:
            runs.append(range(start, p))
            start = None
    return runs


def gap_lesions(truth: Sequence[bool], gap: int) -> list[list[int]]:
    """Truth frames grouped into lesions: runs of polyp frames, joined across at most `gap`
    polyp-free frames; each lesion as the positions of its polyp frames."""
    lesions: list[list[int]] = []
    for run in runs_of(truth):
        if lesions and run[0] - lesions[-1][-1] - 1 <= gap:
            lesions[-1].extend(run)
        else:
            lesions.append(list(run))
    return lesions


def spans_to_lesions(
    truth: Sequence[bool], index: Sequence[int], spans: Sequence[tuple[int, int]]
) -> list[list[int]]:
    """The polyp frames inside each listed (first, last) frame span; DataError for a span without
    one, or a polyp frame outside every span."""
    lesions: list[list[int]] = [[] for _ in spans]
    k = 0
    for p, (frame, polyp) in enumerate(zip(index, truth, strict=True)):
        while k < len(spans) and spans[k][1] < frame:
            k += 1
        inside = k < len(spans) and spans[k][0] <= frame
        if polyp and not inside:
            raise DataError(f"truth.json: frame {frame} has a polyp mask but lies in none of its lesions")
        if polyp:
            lesions[k].append(p)
    for (first, last), positions in zip(spans, lesions, strict=True):
        if not positions:
            raise DataError(
                f"truth.json: the lesion of frames {first}..{last} has no frame with a polyp mask"
            )
    return lesions


def _as_u8(mask: np.ndarray) -> np.ndarray:
    return mask.view(np.uint8) if mask.dtype == bool else mask
