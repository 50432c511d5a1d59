"""One video scored several ways at once: the model's masks as they are ("ungated"), what the live
loop drew, and alert gates replayed over the masks (a gate sees only the masks, so a replay is what
it would have drawn).

`StreamScorer` is fed one frame at a time (by `polyp-rt eval --video`'s sink, or from a record);
`VideoEvaluation` is its result: a `VideoScore` per stream. `pool_evaluations` pools many videos.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from polyp_rt.core.errors import DataError, PolypRtError
from polyp_rt.evaluation.config import UNGATED, MetricsConfig
from polyp_rt.evaluation.score import VideoScore, pool
from polyp_rt.evaluation.scorer import VideoScorer
from polyp_rt.evaluation.truth import TruthFolder

MaskGate = Callable[[np.ndarray], np.ndarray]  # called per frame in order: the mask -> what is drawn
GateFactory = Callable[[], MaskGate]  # a fresh gate for each video (realtime.alert_gate.AlertGate)


@dataclass(frozen=True)
class VideoEvaluation:
    video: str
    scores: dict[str, VideoScore]  # UNGATED first, then what was drawn and the replayed gates
    notes: tuple[str, ...] = ()  # what the figures could not use (no masks: overlap in time only)

    def summary(self, lesions: bool = True) -> dict[str, Any]:
        return {
            "video": self.video,
            "notes": list(self.notes),
            "scores": {name: score.summary(lesions) for name, score in self.scores.items()},
        }


def pool_evaluations(
    evaluations: Sequence[VideoEvaluation], name: str = "all videos"
) -> dict[str, VideoScore]:
    """Per stream (those every video has), the videos pooled: `score.pool`."""
    if not evaluations:
        raise PolypRtError("nothing to pool: no video evaluations")
    names = [n for n in evaluations[0].scores if all(n in e.scores for e in evaluations)]
    return {n: pool([e.scores[n] for e in evaluations], name) for n in names}


class StreamScorer:
    """Frames of one video against `truth`, scored as the streams named when it was made."""

    def __init__(
        self,
        truth: TruthFolder,
        min_area: float,
        *,
        drawn: str | None = None,
        gates: Mapping[str, GateFactory] | None = None,
        video: str = "",
    ) -> None:
        self.truth, self.video = truth, video
        self.drawn = drawn  # the name of the stream `add(..., drawn=)` feeds, if any
        self.gates = {name: make() for name, make in (gates or {}).items() if name not in (UNGATED, drawn)}
        names = [UNGATED, *([drawn] if drawn else []), *self.gates]
        self.scorers = {name: VideoScorer(min_area, name) for name in names}
        self.frames = 0

    def add(
        self, index: int, t: float, prediction: np.ndarray | float, drawn: np.ndarray | float | None = None
    ) -> None:
        """Frame `index`: the model's mask (or its area) and, if the stream exists, what was drawn."""
        truth = self.truth.mask(index)
        if isinstance(prediction, np.ndarray) and prediction.shape != truth.shape:
            h, w = prediction.shape[:2]
            raise DataError(
                f"frame {index}: the prediction is {w}x{h}, its truth mask {self.truth.files[index]} "
                f"{truth.shape[1]}x{truth.shape[0]}; is the truth of another video?"
            )
        self.scorers[UNGATED].add(index, t, truth, prediction)
        if self.drawn:
            if drawn is None:
                raise DataError(f"frame {index}: no record of what was drawn")
            self.scorers[self.drawn].add(index, t, truth, drawn)
        if self.gates:
            if not isinstance(prediction, np.ndarray):
                raise PolypRtError("alert gates are replayed over masks; this stream has only areas")
            for name, gate in self.gates.items():
                self.scorers[name].add(index, t, truth, gate(prediction))
        self.frames += 1

    def finish(
        self, config: MetricsConfig, nominal_fps: float | None = None, notes: Sequence[str] = ()
    ) -> VideoEvaluation:
        """The figures of every stream; DataError when fewer frames came than the truth has."""
        self.truth.expect_frames(self.frames, self.video or "the video")
        lesions = self.truth.info.lesions
        fps = nominal_fps or self.truth.info.fps
        scores = {name: s.finish(config, lesions, fps) for name, s in self.scorers.items()}
        return VideoEvaluation(self.video, scores, tuple(notes))
