"""An MP4's top-level boxes, read for one question: does the file end inside one, that is, was it cut?

An MP4 (or MOV) file is a row of boxes, each starting with its size, so a file cut short ends inside
its last box. A fragmented MP4 (the recorder's layout) declares no length up front, and FFmpeg plays
the fragments that are there and stops without an error: this is the only sign that it lost its end.
A file that ends on a whole box is not called cut, whatever it lacks (a fragmented MP4 without its
closing `mfra` index is what other writers, and a killed recorder, leave). Only box headers are read.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

# boxes that hold no frames: the closing fragment index, padding; a cut inside one loses nothing
FRAMELESS = frozenset({b"mfra", b"free", b"skip", b"wide"})


@dataclass(frozen=True)
class Cut:
    """The top-level box a file ends inside."""

    kind: str  # its four-character type ("mdat", "moof"); "" where the file ends inside its header
    size: int  # bytes it declares (0: unknown, its header is cut)
    present: int  # bytes of it in the file
    fragmented: bool  # the file is a fragmented MP4 (it has `moof` boxes)

    def describe(self) -> str:
        """What was found, in words, for the damage line."""
        if self.kind:
            where = (
                f"an MP4 '{self.kind}' box ({self.size - self.present:,} of its {self.size:,} bytes missing)"
            )
        else:
            where = f"the header of an MP4 box ({self.present} bytes of it there)"
        lost = (
            "; the fragments after the cut are lost, and a fragmented MP4 does not say how many frames they held"
            if self.fragmented
            else ""
        )
        return f"cut short: the file ends inside {where}{lost}"


def mp4_cut(path: Path) -> Cut | None:
    """The top-level box that the MP4 at `path` ends inside, where that box may hold frames; None for
    a file that ends on a whole box (or inside its closing index or padding), or whose boxes cannot
    be followed (a size below 8: damage FFmpeg reports, not a cut)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        end = os.fstat(fd).st_size
        if _ends_on_its_index(fd, end):
            return None
        at, fragmented = 0, False
        while at < end:
            head = os.pread(fd, 16, at)
            if len(head) < 8:
                return Cut("", 0, len(head), fragmented)
            size, kind = struct.unpack(">I4s", head[:8])
            if size == 1:  # a 64-bit size follows the type
                if len(head) < 16:
                    return Cut("", 0, len(head), fragmented)
                size = struct.unpack(">Q", head[8:16])[0]
            elif size == 0:  # the box runs to the end of the file
                return None
            if size < 8:
                return None
            fragmented = fragmented or kind == b"moof"
            if at + size > end:
                if kind in FRAMELESS:
                    return None
                return Cut(kind.decode("latin-1"), size, end - at, fragmented)
            at += size
        return None
    finally:
        os.close(fd)


def _ends_on_its_index(fd: int, end: int) -> bool:
    """Whether the file ends on a whole `mfra` index (its last 16 bytes, `mfro`, give its size):
    a finalised fragmented MP4, known whole without walking its thousands of fragments."""
    tail = os.pread(fd, 16, max(0, end - 16))
    if len(tail) < 16 or tail[4:8] != b"mfro":
        return False
    size = struct.unpack(">I", tail[12:16])[0]
    return 16 <= size <= end and os.pread(fd, 8, end - size)[4:8] == b"mfra"
