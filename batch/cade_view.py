"""What report.html and the closing table show of the video metrics (`polyp-rt batch --truth`): the
archive's figures pooled per stream (`evaluation.streams.pool_evaluations`), each video's, and the
operating-point plot laid out as shapes (`evaluation.plot.layout`) for the template to draw as
inline SVG, every text escaped there.

A stream is what the figures are of: the model's masks as they are ("ungated"), what the live loop
drew (the batch's alert gate), and the gates `--gates` replays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from polyp_rt.evaluation.config import UNGATED
from polyp_rt.evaluation.plot import H, W, layout
from polyp_rt.evaluation.score import VideoScore
from polyp_rt.evaluation.streams import VideoEvaluation, pool_evaluations

from .report import TAU_S, VideoRow

HEADERS = (
    "lesions found",
    "sensitivity",
    "first detection, median",
    f"false alarms ≥ {TAU_S:g} s",
    "frames with a polyp: alert on it",
    "polyp-free frames: no alert",
    "Dice",
)


def cells(score: VideoScore) -> tuple[str, ...]:
    """`score`'s figures as the page and the table show them, one per `HEADERS`."""
    quartiles = score.delay_quartiles("ms")
    rate = score.alarms_per_minute(TAU_S)
    return (
        f"{score.found}/{len(score.lesions)}",
        _f(score.sensitivity, ".3f"),
        "–" if quartiles is None else f"{quartiles[1]:.0f} ms",
        "–" if rate is None else f"{rate:.1f}/min ({len(score.alarms(TAU_S))})",
        _f(score.frame_sensitivity, ".3f"),
        _f(score.frame_specificity, ".3f"),
        _f(score.dice, ".3f"),
    )


def stream_title(name: str, drawn: str) -> str:
    """How a stream is named on the page: what it is, then its name."""
    if name == drawn:
        return f"drawn ({name})" if name != UNGATED else "drawn (every mask: no gate)"
    return "model's masks (ungated)" if name == UNGATED else f"replayed: {name}"


def ordered(names: Sequence[str], drawn: str) -> list[str]:
    """What was drawn first, then the model's masks, then the replayed gates."""
    return sorted(names, key=lambda n: (n != drawn, n != UNGATED))


@dataclass(frozen=True)
class Line:
    """One row of a figures table: which video (or "" in the pooled table), which stream, cells."""

    video: str
    index: int  # the video's anchor on the page (#v<index>); 0: none
    stream: str
    cells: tuple[str, ...]
    first: bool  # the video's first line (its name shown)
    error: str = ""  # why the video has no figures (then `cells` is empty)


@dataclass(frozen=True)
class PlotPart:
    kind: str  # "line", "dot" or "text"
    points: str  # line: "x,y x,y ..."; dot and text: "x,y"
    x: str
    y: str
    colour: str
    size: str
    anchor: str
    text: str


@dataclass(frozen=True)
class MetricsView:
    caption: str
    headers: tuple[str, ...]
    pooled: tuple[Line, ...]
    videos: tuple[Line, ...]
    plot: tuple[PlotPart, ...]
    width: int = W
    height: int = H


def pooled_scores(rows: Sequence[VideoRow]) -> dict[str, VideoScore]:
    """Per stream, every video with figures pooled (lesions over all videos, false alarms over all
    minutes); empty where no video has figures."""
    scored = [VideoEvaluation(r.name, r.scores) for r in rows if r.scores]
    return pool_evaluations(scored, "all videos") if scored else {}


def caption(rows: Sequence[VideoRow]) -> str:
    scored = sum(1 for r in rows if r.scores)
    refused = sum(1 for r in rows if r.truth_error)
    none = sum(1 for r in rows if not r.truth and r.kind != "failed")
    parts = [f"{scored} of {len(rows)} videos scored against their truth"]
    if refused:
        parts.append(f"{refused} with a truth that does not fit")
    if none:
        parts.append(f"{none} without a truth folder")
    return ", ".join(parts)


def metrics_view(rows: Sequence[VideoRow]) -> MetricsView | None:
    """The page's "CADe metrics" section; None where no video has a truth folder."""
    if not any(r.truth or r.truth_error for r in rows):
        return None
    drawn = next((r.drawn for r in rows if r.scores), UNGATED)
    pooled = pooled_scores(rows)
    names = ordered(list(pooled), drawn)
    pooled_lines = tuple(
        Line("all videos", 0, stream_title(n, drawn), cells(pooled[n]), i == 0) for i, n in enumerate(names)
    )
    lines: list[Line] = []
    for index, row in enumerate(rows, 1):
        if row.scores:
            for i, n in enumerate(ordered([n for n in row.scores if n in (drawn, UNGATED)], drawn)):
                lines.append(Line(row.name, index, stream_title(n, drawn), cells(row.scores[n]), i == 0))
        elif row.truth_error:
            lines.append(Line(row.name, index, "", (), True, row.truth_error))
    plot = plot_parts({n: pooled[n] for n in names}) if pooled else ()
    return MetricsView(caption(rows), HEADERS, pooled_lines, tuple(lines), plot)


def plot_parts(scores: dict[str, VideoScore]) -> tuple[PlotPart, ...]:
    """The operating-point plot (per-lesion sensitivity against false alarms per minute, a line
    per tau through the streams) as parts the template writes into an inline SVG."""
    parts = []
    for shape in layout(scores, "all videos: lesions found against false alarms per minute"):
        (x, y), colour = shape.points[0], "rgb({},{},{})".format(*shape.colour)
        parts.append(
            PlotPart(
                kind=shape.kind,
                points=" ".join(f"{px:.1f},{py:.1f}" for px, py in shape.points),
                x=f"{x:.1f}",
                y=f"{y:.1f}",
                colour=colour,
                size=f"{shape.size:g}",
                anchor=shape.anchor,
                text=shape.text,
            )
        )
    return tuple(parts)


def _f(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)
