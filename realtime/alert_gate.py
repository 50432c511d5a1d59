"""What of the mask is drawn: a region once it has persisted, held through short gaps.

The model's mask flickers: a one-frame blob on healthy mucosa is drawn, and noticed, as surely as
a polyp. `AlertGate` decides per region (8-connected blobs of the mask) what reaches the screen:

* a region *continues* a track when it overlaps the track's region of the last frame it was seen;
  its age is one more than the oldest track it continues (a new region: age 1);
* a region is drawn once its age reaches `min_frames`, or when it continues a drawn track;
* a drawn track that is not found in a frame stays drawn where it was last seen for up to `hold`
  frames (and a region found there again is drawn at once); an undrawn one is forgotten.

`AlertGate(1, 0)` draws every mask as it is. The gate sees only the sequence of masks, so replaying
it over the masks `--masks-out` wrote gives, pixel for pixel, what was drawn live.

Regions are traced on a grid of square cells (a cell counts when any of its pixels is set), one
pixel a cell below 480 lines, 2 at 480p, 3 at 720p, 4 at 1080p; the drawn pixels are the mask's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from polyp_rt.core.errors import PolypRtError

GRID_LINES = 240  # regions are traced on a grid of about this many rows (at least one pixel a cell)


@dataclass
class _Track:
    top: int  # the region's last cells: their bounding box's corner on the grid, and the crop
    left: int
    cells: np.ndarray  # bool, the box's cells that belong to the region
    age: int  # frames in a row it was found
    drawn: bool
    pixels: np.ndarray | None = None  # drawn tracks with a hold: the region's last pixels (its box)
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # y0, y1, x0, x1 of `pixels` in the frame
    missed: int = 0  # frames since it was last found


@dataclass
class GateCounts:
    """What the gate did, in frames: for the stats JSON and the tests."""

    frames: int = 0
    with_mask: int = 0  # the mask had a region
    drawn: int = 0  # something was drawn
    held_back: int = 0  # a region of the mask was not drawn (not yet persisted)
    held_over: int = 0  # a region no longer in the mask was drawn (the hold)


class AlertGate:
    """Called once per frame, in order, with the frame's {0,1} mask; returns what to draw."""

    def __init__(self, min_frames: int = 1, hold: int = 0) -> None:
        if min_frames < 1 or hold < 0:
            raise PolypRtError("alert gate: need --alert-min-frames >= 1 and --alert-hold >= 0")
        self.min_frames, self.hold = min_frames, hold
        self.counts = GateCounts()
        self._tracks: list[_Track] = []
        self._shape: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return f"gate {self.min_frames}:{self.hold}"

    @property
    def passes_all(self) -> bool:
        return self.min_frames == 1 and self.hold == 0

    def __call__(self, mask: np.ndarray) -> np.ndarray:
        """The part of `mask` (uint8 {0,1}, HxW) to draw; `mask` itself when all of it is drawn."""
        c = self.counts
        c.frames += 1
        found = cv2.countNonZero(mask) > 0
        c.with_mask += found
        if self.passes_all or (not found and not self._tracks):
            c.drawn += found
            return mask
        if mask.shape != self._shape:  # a new frame size: the old regions mean nothing here
            self._tracks, self._shape = [], mask.shape
        step = cell_size(mask.shape)
        grid = _to_grid(mask, step)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=8)
        parents = self._links(labels, count)
        tracks, drawn = [], np.zeros(count, bool)
        for label in range(1, count):
            left, top, width, height = (int(v) for v in stats[label, :4])
            cells = labels[top : top + height, left : left + width] == label
            older = [self._tracks[k] for k in parents[label]]
            age = 1 + max((t.age for t in older), default=0)
            drawn[label] = age >= self.min_frames or any(t.drawn for t in older)
            tracks.append(_Track(top, left, cells, age, bool(drawn[label])))
        continued = {k for ks in parents for k in ks}
        held = [
            t for k, t in enumerate(self._tracks) if k not in continued and t.drawn and t.missed < self.hold
        ]
        c.held_back += bool((~drawn[1:]).any())
        if drawn[1:].all() and not held:
            self._remember(tracks, held, mask, step)
            c.drawn += found
            return mask
        out = mask & _from_grid(drawn[labels].astype(np.uint8), step, mask.shape)
        for t in held:
            y0, y1, x0, x1 = t.box
            assert t.pixels is not None
            out[y0:y1, x0:x1] |= t.pixels
        self._remember(tracks, held, mask, step)
        c.held_over += bool(held)
        c.drawn += bool(drawn[1:].any() or held)
        return out

    def _links(self, labels: np.ndarray, count: int) -> list[list[int]]:
        """For each label of this frame, the tracks (indices) whose last cells it overlaps."""
        parents: list[list[int]] = [[] for _ in range(count)]
        if not self._tracks or count < 2:
            return parents
        owner = np.zeros(labels.shape, np.int32)  # the tracks' cells never overlap (see _remember)
        for k, t in enumerate(self._tracks):
            h, w = t.cells.shape
            owner[t.top : t.top + h, t.left : t.left + w][t.cells] = k + 1
        both = (labels > 0) & (owner > 0)
        base = len(self._tracks) + 1
        for pair in np.unique(labels[both].astype(np.int64) * base + owner[both]):
            parents[int(pair) // base].append(int(pair) % base - 1)
        return parents

    def _remember(self, tracks: list[_Track], held: list[_Track], mask: np.ndarray, step: int) -> None:
        """This frame's regions, and the held ones not overlapped by them (a held track's cells
        never meet a region of this frame: such a region would have continued it)."""
        if self.hold:
            h, w = mask.shape
            for t in tracks:
                if t.drawn:
                    ch, cw = t.cells.shape
                    y0, x0 = t.top * step, t.left * step
                    y1, x1 = min(h, (t.top + ch) * step), min(w, (t.left + cw) * step)
                    own = _from_grid(t.cells.astype(np.uint8), step, (y1 - y0, x1 - x0))
                    t.pixels, t.box = mask[y0:y1, x0:x1] & own, (y0, y1, x0, x1)
        for t in held:
            t.missed += 1
        self._tracks = tracks + held


def cell_size(shape: tuple[int, ...]) -> int:
    """Grid cell side in pixels for a frame of this shape."""
    return max(1, min(shape[:2]) // GRID_LINES)


def _to_grid(mask: np.ndarray, step: int) -> np.ndarray:
    """uint8 grid: 1 where any pixel of the cell is set."""
    if step == 1:
        return mask
    grown = cv2.dilate(mask, np.ones((step, step), np.uint8), anchor=(0, 0))  # each pixel: its cell's max
    return np.ascontiguousarray(grown[::step, ::step])


def _from_grid(grid: np.ndarray, step: int, shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 grid back at pixel size, cropped to `shape`."""
    if step == 1:
        return grid
    big = cv2.resize(grid, (grid.shape[1] * step, grid.shape[0] * step), interpolation=cv2.INTER_NEAREST)
    return big[: shape[0], : shape[1]]
