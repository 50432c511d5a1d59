"""`polyp-rt batch`: recorded videos processed headless, one task per video, and their reports.

Pure logic lives here without Ray or a model: `episodes` turns per-frame records into polyp
episodes (incrementally, via `EpisodeTracker`); `report` holds the rows and writes summary.csv;
`page` renders report.html from its template (imported where a report is written: it
brings the video metrics and OpenCV, which `--help` must not load).
"""

from .episodes import Episode, EpisodeTracker, Step, episodes, iter_frames_jsonl
from .report import VideoRow, peak_thumbnail_path, write_summary_csv

__all__ = [
    "Episode",
    "EpisodeTracker",
    "Step",
    "VideoRow",
    "episodes",
    "iter_frames_jsonl",
    "peak_thumbnail_path",
    "write_summary_csv",
]
