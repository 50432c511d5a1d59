"""Alerts as the screen shows them: regions of the drawn mask, followed from frame to frame.

An alert region is an 8-connected region of a frame's prediction covering at least `min_area` of
the frame. A region continues the alerts of the previous frame it overlaps (two that meet become
one, one that splits stays one), so an alert is a region's life in space and time, as a box
is in the CADe studies; it *hits* when, in any frame, one of its regions overlaps the truth.
An alert is thus always present from its first frame to its last.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class Alert:
    first: int  # positions (frames in the order fed) of its first and last frame
    last: int
    hit: bool = False


@dataclass
class _Frame:
    """The previous frame's alert regions: their labels over a window of the frame, and alerts."""

    window: tuple[int, int, int, int]  # y0, y1, x0, x1
    labels: np.ndarray  # int32, 0 where no alert region
    alert_of: list[int]  # region label - 1 -> alert index


@dataclass
class RegionTracker:
    min_area: float
    alerts: list[Alert] = field(default_factory=list)
    _parent: list[int] = field(default_factory=list)  # union-find over alerts: merged ones share a root
    _previous: _Frame | None = None

    def add(self, position: int, prediction: np.ndarray, truth: np.ndarray) -> tuple[bool, bool]:
        """Frame `position`'s {0,1} prediction and truth (every frame, in order): whether an alert
        region is on, and whether one overlaps the truth."""
        x, y, w, h = cv2.boundingRect(prediction)
        if w == 0:
            self._previous = None
            return False, False
        count, labels = cv2.connectedComponents(prediction[y : y + h, x : x + w], connectivity=8)
        areas = np.bincount(labels.ravel(), minlength=count)
        big = areas >= self.min_area * prediction.size
        big[0] = False
        if not big.any():
            self._previous = None
            return False, False
        keep = np.cumsum(big).astype(np.int32) * big  # old label -> new label 1..k, 0 dropped
        labels = keep[labels]
        regions = int(keep.max())
        hits = np.zeros(regions + 1, bool)
        hits[labels[truth[y : y + h, x : x + w] > 0]] = True
        links = self._links(labels, (y, y + h, x, x + w), regions)
        alert_of = []
        for region in range(1, regions + 1):
            roots = {self._root(a) for a in links[region]}
            if roots:
                root = min(roots)
                for other in roots - {root}:
                    self._parent[other] = root
                    self.alerts[root].first = min(self.alerts[root].first, self.alerts[other].first)
                    self.alerts[root].hit |= self.alerts[other].hit
            else:
                root = len(self.alerts)
                self.alerts.append(Alert(position, position))
                self._parent.append(root)
            self.alerts[root].last = position
            self.alerts[root].hit |= bool(hits[region])
            alert_of.append(root)
        self._previous = _Frame((y, y + h, x, x + w), labels, alert_of)
        return True, bool(hits[1:].any())

    def _links(self, labels: np.ndarray, window: tuple[int, int, int, int], regions: int) -> list[list[int]]:
        """For each region of this frame, the alerts of the previous frame it overlaps."""
        links: list[list[int]] = [[] for _ in range(regions + 1)]
        prev = self._previous
        if prev is None:
            return links
        y0, y1 = max(window[0], prev.window[0]), min(window[1], prev.window[1])
        x0, x1 = max(window[2], prev.window[2]), min(window[3], prev.window[3])
        if y0 >= y1 or x0 >= x1:
            return links
        now = labels[y0 - window[0] : y1 - window[0], x0 - window[2] : x1 - window[2]]
        before = prev.labels[
            y0 - prev.window[0] : y1 - prev.window[0], x0 - prev.window[2] : x1 - prev.window[2]
        ]
        both = (now > 0) & (before > 0)
        base = len(prev.alert_of) + 1
        for pair in np.unique(now[both].astype(np.int64) * base + before[both]):
            links[int(pair) // base].append(prev.alert_of[int(pair) % base - 1])
        return links

    def _root(self, alert: int) -> int:
        while self._parent[alert] != alert:
            self._parent[alert] = self._parent[self._parent[alert]]
            alert = self._parent[alert]
        return alert

    def finished(self) -> list[Alert]:
        """Every alert (merged ones once), in the order they began."""
        return sorted((a for k, a in enumerate(self.alerts) if self._parent[k] == k), key=lambda a: a.first)
