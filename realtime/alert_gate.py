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
    age: int  # frames in a row it was found
    drawn: bool
    missed: int = 0  # frames since it was last found
    seen: _Seen | None = None  # drawn tracks, with a hold: where to find its last pixels


@dataclass(frozen=True)
class _Seen:
    """Where a drawn region was last seen: its frame's window (pixels), mask and region labels."""

    window: tuple[slice, slice]
    mask: np.ndarray  # a copy of the window of that frame's mask
    labels: np.ndarray  # that frame's region labels over the window's cells
    label: int

    def pixels(self, step: int) -> np.ndarray:
        own = (self.labels == self.label).astype(np.uint8)
        return self.mask & _from_grid(own, step, self.mask.shape)


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
        self._tracks: list[_Track] = []  # track k owns the grid cells where `_owner` is k + 1
        self._owner = np.zeros((0, 0), np.int32)
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
        x, y, w, h = cv2.boundingRect(mask)  # the work is done inside this window only
        c.with_mask += w > 0
        if self.passes_all or (w == 0 and not self._tracks):
            c.drawn += w > 0
            return mask
        step = cell_size(mask.shape)
        if mask.shape != self._shape:  # a new frame size: the old regions mean nothing here
            self._tracks, self._shape = [], mask.shape
            self._owner = np.zeros((-(-mask.shape[0] // step), -(-mask.shape[1] // step)), np.int32)
        cells = (slice(y // step, -(-(y + h) // step)), slice(x // step, -(-(x + w) // step)))
        window = (
            slice(cells[0].start * step, cells[0].stop * step),
            slice(cells[1].start * step, cells[1].stop * step),
        )
        count, local = 1, np.zeros((0, 0), np.int32)  # an empty mask: only held regions to draw
        if w:
            count, found = cv2.connectedComponents(_to_grid(mask[window], step), connectivity=8)
            local = np.asarray(found, np.int32)
        labels = np.zeros(self._owner.shape, np.int32)
        labels[cells] = local
        parents = self._links(labels, count)
        tracks = []
        for label in range(1, count):
            older = [self._tracks[k] for k in parents[label]]
            age = 1 + max((t.age for t in older), default=0)
            tracks.append(_Track(age, age >= self.min_frames or any(t.drawn for t in older)))
        continued = {k for ks in parents for k in ks}
        held = [
            k for k, t in enumerate(self._tracks) if k not in continued and t.drawn and t.missed < self.hold
        ]
        drawn = np.array([False, *(t.drawn for t in tracks)])
        c.held_back += not drawn[1:].all()
        c.held_over += bool(held)
        c.drawn += bool(drawn[1:].any() or held)
        out = mask
        if not drawn[1:].all() or held:
            out = np.zeros_like(mask)
            if w:
                keep = _from_grid(drawn[local].astype(np.uint8), step, mask[window].shape)
                out[window] = mask[window] & keep
            for k in held:
                seen = self._tracks[k].seen
                assert seen is not None
                out[seen.window] |= seen.pixels(step)
        self._remember(tracks, held, labels, _Seen(window, mask[window], local, 0))
        return out

    def _links(self, labels: np.ndarray, count: int) -> list[list[int]]:
        """For each label of this frame, the tracks (indices) whose last cells it overlaps."""
        parents: list[list[int]] = [[] for _ in range(count)]
        if not self._tracks or count < 2:
            return parents
        both = (labels > 0) & (self._owner > 0)
        base = len(self._tracks) + 1
        for pair in np.unique(labels[both].astype(np.int64) * base + self._owner[both]):
            parents[int(pair) // base].append(int(pair) % base - 1)
        return parents

    def _remember(self, tracks: list[_Track], held: list[int], labels: np.ndarray, frame: _Seen) -> None:
        """This frame's regions own their cells, the held tracks keep theirs: a held track's cells
        never meet a region of this frame, which would have continued it."""
        if self.hold and any(t.drawn for t in tracks):
            kept = frame.mask.copy()  # the caller's buffer may be reused (the GPU path's ring)
            for label, t in enumerate(tracks, 1):
                if t.drawn:
                    t.seen = _Seen(frame.window, kept, frame.labels, label)
        owner = labels  # a new array each frame
        for k in held:
            track = self._tracks[k]
            track.missed += 1
            tracks.append(track)
            owner[self._owner == k + 1] = len(tracks)
        self._tracks, self._owner = tracks, owner


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
