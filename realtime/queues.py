"""The bounded queue between threads: block (files) or drop the oldest (live sources)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from polyp_rt.core.signals import Stopped

T = TypeVar("T")

__all__ = ["EndOfStream", "FrameQueue", "Stopped"]


class EndOfStream(Exception):
    """The producer closed the queue and every item has been taken."""


class FrameQueue(Generic[T]):
    """A bounded FIFO. `drop_oldest` never blocks the producer: it discards and counts."""

    def __init__(self, maxsize: int, drop_oldest: bool, stop: threading.Event) -> None:
        if maxsize < 1:
            raise ValueError("queue size must be at least 1")
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self.dropped = 0
        self.high_water = 0
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._stop = stop
        self._closed = False

    def put(self, item: T, timeout: float = 0.05) -> None:
        """Add an item; blocks while full unless drop_oldest. Raises Stopped when stop is set."""
        with self._cond:
            while len(self._items) >= self.maxsize:
                if self.drop_oldest:
                    self._items.popleft()
                    self.dropped += 1
                    break
                if self._stop.is_set():
                    raise Stopped
                self._cond.wait(timeout)
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()

    def close(self) -> None:
        """No more items will come; `get` raises EndOfStream once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get(self, timeout: float = 0.05) -> T:
        """Next item; waits until one arrives. Raises Stopped or EndOfStream."""
        with self._cond:
            while not self._items:
                if self._stop.is_set():
                    raise Stopped
                if self._closed:
                    raise EndOfStream
                self._cond.wait(timeout)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def wait(self, timeout: float) -> bool:
        """True once `get` would not block (an item, the end or stop); False after `timeout` seconds."""
        return self.wait_for(lambda: bool(self._items) or self._closed or self._stop.is_set(), timeout)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate()` (about this queue: its length, drops) holds; False after `timeout` s."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def drain(self) -> list[T]:
        with self._cond:
            items = list(self._items)
            self._items.clear()
            self._cond.notify_all()
            return items

    def __len__(self) -> int:
        return len(self._items)
