"""The curve a clinician reads: per-lesion sensitivity against false alarms per minute, one line per
alarm duration tau through the streams (no gate and each gate, in order of false alarms), as SVG
or PNG.

The picture is laid out once as a few shapes, then written as SVG text (for a page: it scales and
its labels are escaped) or drawn with OpenCV into a PNG (the live install has no matplotlib).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from polyp_rt.core.errors import OutputError
from polyp_rt.evaluation.score import VideoScore

W, H = 760, 480
LEFT, RIGHT, TOP, BOTTOM = 80, 200, 64, 60  # margins; the legend sits on the right
COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))
INK, GRID = (40, 40, 40), (225, 225, 225)


@dataclass(frozen=True)
class Shape:
    kind: str  # "line", "dot" or "text"
    points: tuple[tuple[float, float], ...]
    colour: tuple[int, int, int] = INK
    text: str = ""
    size: float = 12.0  # text height in px, dot radius, line width
    anchor: str = "start"  # text: start, middle or end


def layout(scores: Mapping[str, VideoScore], title: str) -> list[Shape]:
    """The picture as shapes: axes, grid, one polyline per tau through the streams, a legend."""
    names = list(scores)
    taus = next(iter(scores.values())).taus if scores else ()
    points = {tau: [(scores[n].alarms_per_minute(tau), scores[n].sensitivity) for n in names] for tau in taus}
    xs = [x for pts in points.values() for x, _ in pts if x is not None]
    ys = [y for pts in points.values() for _, y in pts if y is not None]
    x_top = _nice(max(xs, default=1.0) * 1.1 or 1.0)
    y_low = min(0.9, np.floor(min(ys, default=0.9) * 10) / 10)
    x0, x1, y0, y1 = LEFT, W - RIGHT, H - BOTTOM, TOP

    def at(x: float, y: float) -> tuple[float, float]:
        return (x0 + (x1 - x0) * x / x_top, y0 + (y1 - y0) * (y - y_low) / (1.0 - y_low))

    shapes = [Shape("text", ((14, 22),), text=title, size=15)]
    for k in range(6):
        gx, gy = x_top * k / 5, y_low + (1.0 - y_low) * k / 5
        shapes += [
            Shape("line", (at(gx, y_low), at(gx, 1.0)), GRID, size=1),
            Shape("line", (at(0, gy), at(x_top, gy)), GRID, size=1),
            Shape("text", ((at(gx, y_low)[0], y0 + 20),), text=f"{gx:.3g}", size=11, anchor="middle"),
            Shape("text", ((x0 - 8, at(0, gy)[1] + 4),), text=f"{gy:.2f}", size=11, anchor="end"),
        ]
    shapes += [
        Shape("line", ((x0, y0), (x1, y0)), size=1),
        Shape("line", ((x0, y0), (x0, y1)), size=1),
        Shape("text", (((x0 + x1) / 2, H - 18),), text="false alarms per minute", size=13, anchor="middle"),
        Shape("text", ((14, TOP - 16),), text="lesions found (sensitivity)", size=13),
    ]
    for i, tau in enumerate(taus):
        colour = COLOURS[i % len(COLOURS)]
        drawn = sorted(  # along the false-alarm axis: the curve a gate traces as it tightens
            (at(x, y), n)
            for (x, y), n in zip(points[tau], names, strict=True)
            if x is not None and y is not None
        )
        if len(drawn) > 1:
            shapes.append(Shape("line", tuple(p for p, _ in drawn), colour, size=2))
        labelled: list[tuple[float, float]] = []
        for p, n in drawn:
            shapes.append(Shape("dot", (p,), colour, size=4))
            if i == 0 and all(abs(p[0] - q[0]) + abs(p[1] - q[1]) > 12 for q in labelled):
                shapes.append(Shape("text", ((p[0] + 6, p[1] - 6),), text=_short(n), size=10))
                labelled.append(p)
        ly = TOP + 20 + 22 * i
        shapes += [
            Shape("line", ((x1 + 20, ly), (x1 + 44, ly)), colour, size=2),
            Shape("text", ((x1 + 50, ly + 4),), text=f"alarms >= {tau:g} s", size=12),
        ]
    return shapes


def plot_operating_points(scores: Mapping[str, VideoScore], path: Path, title: str = "") -> Path:
    """Write the plot of `scores` (stream name -> score) to `path` (.svg or .png)."""
    import cv2  # here, not at import: the CLI's --help loads this module

    shapes = layout(scores, title or "per-lesion sensitivity against false alarms per minute")
    suffix = path.suffix.lower()
    try:
        if suffix == ".svg":
            path.write_text(to_svg(shapes), encoding="utf-8")
        elif suffix == ".png":
            ok, png = cv2.imencode(".png", cv2.cvtColor(to_image(shapes), cv2.COLOR_RGB2BGR))
            if not ok:
                raise OSError("PNG encoding failed")
            path.write_bytes(png.tobytes())
        else:
            raise OutputError(f"{path}: the plot is written as .svg or .png")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the plot ({exc.strerror or exc})") from exc
    return path


def to_svg(shapes: list[Shape]) -> str:
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">']
    out.append(f'<rect width="{W}" height="{H}" fill="white"/>')
    for s in shapes:
        colour = "rgb({},{},{})".format(*s.colour)
        if s.kind == "line":
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in s.points)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="{s.size:g}"/>')
        elif s.kind == "dot":
            ((x, y),) = s.points
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{s.size:g}" fill="{colour}"/>')
        else:
            ((x, y),) = s.points
            out.append(
                f'<text x="{x:.1f}" y="{y:.1f}" font-family="sans-serif" font-size="{s.size:g}" '
                f'text-anchor="{s.anchor}" fill="{colour}">{escape(s.text)}</text>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def to_image(shapes: list[Shape]) -> np.ndarray:
    """The shapes drawn into an RGB picture."""
    import cv2  # here, not at import: the CLI's --help loads this module

    img = np.full((H, W, 3), 255, np.uint8)
    for s in shapes:
        pts = [(round(x), round(y)) for x, y in s.points]
        if s.kind == "line":
            cv2.polylines(img, [np.array(pts, np.int32)], False, s.colour, max(1, round(s.size)), cv2.LINE_AA)
        elif s.kind == "dot":
            cv2.circle(img, pts[0], round(s.size), s.colour, -1, cv2.LINE_AA)
        else:
            scale = s.size / 30
            (tw, _), _ = cv2.getTextSize(s.text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            x = pts[0][0] - {"start": 0, "middle": tw // 2, "end": tw}[s.anchor]
            cv2.putText(
                img, s.text, (x, pts[0][1]), cv2.FONT_HERSHEY_SIMPLEX, scale, s.colour, 1, cv2.LINE_AA
            )
    return img


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above `value`."""
    power = 10 ** np.floor(np.log10(value))
    return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value))


def _short(name: str) -> str:
    return name.removeprefix("gate ")
