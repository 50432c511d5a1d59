"""What a worker tells the driver while it works on a video, for the progress bars.

Events travel through a bounded queue (a Ray actor); a worker whose event does not fit waits for
the driver to take one, so no queue grows without bound. Events of an earlier attempt of a video
that arrive after a later attempt started are stale: the driver drops them.
"""

from __future__ import annotations

from dataclasses import dataclass

STARTED = "started"  # the video is open: frames_expected is known, pid and work_dir say where
FRAMES = "frames"  # `frames` finished so far (the first frame, then every PROGRESS_INTERVAL_S)
DONE = "done"  # every frame is through; the outputs are being finished

PROGRESS_INTERVAL_S = 0.5


@dataclass(frozen=True)
class Event:
    kind: str
    video: str  # output name
    attempt: int
    frames: int = 0
    frames_expected: int | None = None
    pid: int = 0
    host: str = ""
    work_dir: str = ""
