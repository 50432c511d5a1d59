"""`polyp-rt batch`: recorded videos processed headless, one task per video, and their reports.

Pure logic lives here without Ray or a model: `episodes` turns per-frame records into polyp
episodes (incrementally, via `EpisodeTracker`); `report` holds the rows and writes summary.csv;
`page` renders report.html from its template.
"""

from .episodes import Episode, EpisodeTracker, Step, episodes, iter_frames_jsonl
from .page import render_report_html, write_report_html
from .report import VideoRow, peak_thumbnail_path, write_summary_csv

__all__ = [
    "Episode",
    "EpisodeTracker",
    "Step",
    "VideoRow",
    "episodes",
    "iter_frames_jsonl",
    "peak_thumbnail_path",
    "render_report_html",
    "write_report_html",
    "write_summary_csv",
]
