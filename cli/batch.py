"""`polyp-rt batch`: progress bars over videos and frames while the batch runs, a closing table.

The table's texts are plain `Text` or escaped (a name such as ``case[red].mp4`` is not rich markup);
names, errors and paths in it are printable already (batch/report.py) or made so here.
"""

from __future__ import annotations

import time

from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table
from rich.text import Text

from polyp_rt.batch.config import BatchConfig
from polyp_rt.batch.events import STARTED, Event
from polyp_rt.batch.inputs import Video
from polyp_rt.batch.report import VideoRow, fmt_clock, fmt_span, one_line
from polyp_rt.batch.runner import STATUS_INTERRUPTED, BatchResult, Watcher
from polyp_rt.cli.report import console
from polyp_rt.core.names import printable
from polyp_rt.core.progress import progress_bar

TABLE_ROWS = 40  # videos listed in the closing table; summary.csv has them all
ERROR_CHARS = 200  # of an error under the table; summary.csv and report.html have it whole
ROW_STYLES = {"failed": "red", "damaged": "yellow", "skipped": "dim"}


def batch_command(config: BatchConfig) -> int:
    from polyp_rt.batch.cluster import import_ray
    from polyp_rt.batch.runner import run_batch

    if not config.in_process:
        import_ray(local=config.ray_address is None)  # a missing Ray is one line before anything starts
    with progress_bar() as progress:
        result = run_batch(config, ProgressBars(progress))
    table, lines = closing_table(result, config.in_process)
    console.print(table)
    console.print(lines)
    metrics = metrics_table(result)
    if metrics is not None:
        console.print(metrics)
    if result.interrupted:
        left = sum(r.status == STATUS_INTERRUPTED for r in result.rows)
        console.print(
            f"{result.interrupted}: {left} video(s) not finished; run the same command again to resume"
        )
    return result.exit_code


class ProgressBars(Watcher):
    """Two bars: videos finished, and frames processed of the frames the started videos announce."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.videos: TaskID | None = None
        self.frames: TaskID | None = None
        self.expected: dict[str, int] = {}  # video -> frames it announced (its count once finished)
        self.done: dict[str, tuple[int, int]] = {}  # video -> (attempt, frames done)
        self.started = time.monotonic()

    def planned(self, videos: list[Video], todo: list[Video], workers: int) -> None:
        finished = len(videos) - len(todo)
        note = f"{workers} at a time" + (f", {finished} finished before" if finished else "")
        self.videos = self.progress.add_task("videos", total=len(todo), status=note)
        self.frames = self.progress.add_task("frames", total=None, status="")
        self.started = time.monotonic()

    def event(self, event: Event) -> None:
        attempt, _ = self.done.get(event.video, (0, 0))
        if event.attempt > attempt:  # a rerun of a video starts again from frame 0
            self.done[event.video] = (event.attempt, 0)
        if event.kind == STARTED:
            self.expected[event.video] = event.frames_expected or 0
        else:
            self.done[event.video] = (event.attempt, event.frames)
        self._show_frames()

    def finished(self, row: VideoRow) -> None:
        if self.videos is not None:
            self.progress.advance(self.videos)
        if row.ran:
            self.expected[row.name] = row.frames
            self.done[row.name] = (self.done.get(row.name, (1, 0))[0], row.frames)
        else:
            self.expected.pop(row.name, None)
            self.done.pop(row.name, None)
        self._show_frames()

    def _show_frames(self) -> None:
        if self.frames is None:
            return
        done = sum(frames for _, frames in self.done.values())
        expected = sum(self.expected.values())
        seconds = time.monotonic() - self.started
        fps = done / seconds if seconds > 0 else 0.0
        self.progress.update(
            self.frames, completed=done, total=max(expected, done) or None, status=f"{fps:,.1f} frames/s"
        )


def closing_table(result: BatchResult, in_process: bool) -> tuple[Table, str]:
    """The closing table and the lines under it (why each listed video failed or is damaged, the
    counts, the speed, the reports), printed apart so a narrow terminal wraps them instead of
    cutting them at the table's width."""
    out = printable(result.out_dir)
    table = Table(title=escape(f"polyp-rt batch · {out}"), pad_edge=False)
    table.add_column("video", overflow="fold", min_width=8)
    table.add_column("status", min_width=7, overflow="fold")
    for column in ("frames", "length", "fps", "× real time", "episodes", "polyp time"):
        table.add_column(column, justify="right", min_width=5)  # a narrow terminal wraps the header
    shown = [r for r in result.rows if r.kind == "failed"]
    shown += [r for r in result.rows if r.kind != "failed"][: max(0, TABLE_ROWS - len(shown))]
    for row in sorted(shown, key=result.rows.index):
        unknown = not row.processed  # failed, or skipped unopened: no episodes to count
        table.add_row(
            Text(row.name),
            Text(row.status),
            f"{row.frames:,}" if row.frames else "",
            fmt_clock(row.duration_s) if row.duration_s is not None else "",
            f"{row.fps_achieved:,.1f}" if row.fps_achieved else "",
            f"{row.x_realtime:.1f}×" if row.x_realtime else "",
            "" if unknown else str(row.episode_count),
            "" if unknown else fmt_span(row.polyp_s),
            style=ROW_STYLES.get(row.kind),
        )
    notes = [(row, row.error or row.damage or _truth_note(row)) for row in shown]
    why = "".join(f"\n{row.name}: {one_line(note, ERROR_CHARS)}" for row, note in notes if note)
    damaged = f", {result.count('damaged')} damaged" if result.count("damaged") else ""
    counts = f"{result.count('ok')} ok{damaged}, {result.count('failed')} failed, {result.count('skipped')} skipped"
    more = len(result.rows) - len(shown)
    speed = ""
    if result.frames and result.elapsed_s > 0:
        where = f"over {result.workers} worker{'' if result.workers == 1 else 's'}"
        speed = (
            f" · {result.frames:,} frames in {fmt_clock(result.elapsed_s)} = "
            f"{result.frames / result.elapsed_s:,.1f} frames/s, "
            f"{result.video_s / result.elapsed_s:.1f}× real time, "
            f"{'in this process' if in_process else where}"
        )
    lines = escape(
        why.lstrip("\n")
        + ("\n" if why else "")
        + f"{len(result.rows)} videos: {counts}{speed}"
        + (f" · {more} more rows in summary.csv" if more > 0 else "")
        + f"\n{out}/summary.csv · {out}/report.html"
    )
    return table, lines


def _truth_note(row: VideoRow) -> str:
    return f"truth: {row.truth_error}" if row.truth_error else ""


def metrics_table(result: BatchResult) -> Table | None:
    """--truth: the archive's video metrics pooled, one row per stream (per video: summary.csv)."""
    from polyp_rt.batch.cade_view import HEADERS, caption, cells, ordered, pooled_scores, stream_title

    rows = result.rows
    if not any(r.truth or r.truth_error for r in rows):
        return None
    pooled = pooled_scores(rows)
    drawn = next((r.drawn for r in rows if r.scores), "")
    table = Table(title="CADe metrics · all videos with truth, pooled")
    table.add_column("stream")
    for header in HEADERS:
        table.add_column(header, justify="right")
    for name in ordered(list(pooled), drawn):
        table.add_row(Text(stream_title(name, drawn)), *cells(pooled[name]))
    table.caption = escape(f"{caption(rows)} · per video: summary.csv; definitions: docs/VIDEO_METRICS.md")
    return table
