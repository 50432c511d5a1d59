"""The latency histogram and CDF as a PNG, drawn with OpenCV (the live install has no matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from polyp_rt.core.names import printable
from polyp_rt.core.paths import make_parent

COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75))
W, H = 1100, 420  # the whole picture
PAD_L, PAD_R, PAD_T, PAD_B = 70, 20, 60, 50
FONT = cv2.FONT_HERSHEY_SIMPLEX
INK, GRID = (40, 40, 40), (225, 225, 225)


def plot_latency(samples: dict[str, Sequence[float]], out_png: Path, title: str) -> None:
    """Histogram (left) and CDF (right) of each named latency series in ms; PNG at `out_png`."""
    series = {name: np.sort(np.asarray(v, np.float64)) for name, v in samples.items() if len(v)}
    img = np.full((H, W, 3), 255, np.uint8)
    _text(img, title, (PAD_L, 28), 0.6, bold=True)
    top = max((float(v[-1]) for v in series.values()), default=1.0) * 1.02 or 1.0
    bins = np.linspace(0.0, top, 51)
    counts = {name: np.histogram(v, bins)[0] for name, v in series.items()}
    peak = max((int(c.max()) for c in counts.values()), default=1) or 1
    half = (W - PAD_L - PAD_R) // 2
    left = (PAD_L, PAD_T, PAD_L + half - 40, H - PAD_B)
    right = (PAD_L + half + 30, PAD_T, W - PAD_R, H - PAD_B)
    _axes(img, left, (0, top), (0, peak), "latency histogram", "ms", "frames")
    _axes(img, right, (0, top), (0, 1), "latency CDF (dashed: p50, p99)", "ms", "fraction")
    for q in (0.5, 0.99):
        y = _map(q, 0, 1, right[3], right[1])
        for x in range(right[0], right[2], 8):
            cv2.line(img, (x, y), (min(x + 4, right[2]), y), (150, 150, 150), 1)
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]  # the picture is RGB until it is encoded
        bars = img.copy()
        for k, n in enumerate(counts[name]):
            if n:
                x0, x1 = _map(bins[k], 0, top, left[0], left[2]), _map(bins[k + 1], 0, top, left[0], left[2])
                cv2.rectangle(
                    bars, (x0, _map(n, 0, peak, left[3], left[1])), (max(x0 + 1, x1 - 1), left[3]), colour, -1
                )
        cv2.addWeighted(bars, 0.55, img, 0.45, 0, img)
        fraction = np.arange(1, values.size + 1) / values.size
        points = np.stack(
            [_map_array(values, 0, top, right[0], right[2]), _map_array(fraction, 0, 1, right[3], right[1])],
            axis=1,
        )
        cv2.polylines(img, [points.astype(np.int32)], False, colour, 2, cv2.LINE_AA)
        _text(img, name, (right[2] - 170, right[3] - 18 - 20 * i), 0.45, colour)
    make_parent(out_png, "the plot")
    ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"{out_png}: PNG encoding failed")
    out_png.write_bytes(png.tobytes())


def _axes(
    img: np.ndarray,
    box: tuple[int, int, int, int],
    xs: tuple[float, float],
    ys: tuple[float, float],
    title: str,
    xlabel: str,
    ylabel: str,
) -> None:
    x0, y0, x1, y1 = box
    for k in range(6):
        x = x0 + (x1 - x0) * k // 5
        y = y1 - (y1 - y0) * k // 5
        cv2.line(img, (x, y0), (x, y1), GRID, 1)
        cv2.line(img, (x0, y), (x1, y), GRID, 1)
        _text(img, _tick(xs[0] + (xs[1] - xs[0]) * k / 5), (x - 12, y1 + 18), 0.4)
        _text(img, _tick(ys[0] + (ys[1] - ys[0]) * k / 5), (x0 - 48, y + 4), 0.4)
    cv2.rectangle(img, (x0, y0), (x1, y1), INK, 1)
    _text(img, title, (x0, y0 - 10), 0.5, bold=True)
    _text(img, xlabel, (x1 - 20, y1 + 38), 0.45)
    _text(img, ylabel, (x0 - 60, y0 - 10), 0.45)


def _tick(value: float) -> str:
    return f"{value:.2f}" if value < 1 else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _map(value: float, lo: float, hi: float, a: int, b: int) -> int:
    return int(round(a + (b - a) * (value - lo) / ((hi - lo) or 1.0)))


def _map_array(values: np.ndarray, lo: float, hi: float, a: int, b: int) -> np.ndarray:
    return a + (b - a) * (values - lo) / ((hi - lo) or 1.0)


def _text(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    scale: float,
    colour: tuple[int, int, int] = INK,
    bold: bool = False,
) -> None:
    # OpenCV's fonts draw ASCII only, and a string that is not valid Unicode (a file name that is
    # not UTF-8) crashes cv2.putText: every text is drawn printable, in ASCII
    cv2.putText(
        img, printable(text, ascii_only=True), org, FONT, scale, colour, 2 if bold else 1, cv2.LINE_AA
    )
