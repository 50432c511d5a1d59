"""The batch's ``report.html``: what the page shows, worked out here from the rows, and drawn by the
Jinja2 template ``templates/report.html`` with autoescaping on, so every value (a file name, an
error, a status) reaches the page escaped.

The page needs nothing but itself: CSS inline, thumbnails embedded as small JPEG data URIs, no
scripts, no network. The rows' texts are printable already (batch/report.py); the output folder's
path is made so here. It is written atomically (`core.files.write_atomic`).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polyp_rt.core.files import write_atomic
from polyp_rt.core.names import printable
from polyp_rt.core.pages import page_templates

from .cade_view import MetricsView, metrics_view
from .episodes import Episode
from .report import VideoRow, fmt_clock, fmt_hms, fmt_pct, fmt_span, one_line, rows_of

if TYPE_CHECKING:
    from jinja2 import Template

TITLE = "Polyp detection: batch report"
THUMB_WIDTH = 160  # px, as embedded in the page
THUMB_QUALITY = 80  # JPEG quality of embedded thumbnails
MARK_GAP_PCT = 2.2  # closest two episode numbers above a timeline may be, in % of its width
MISSING_LISTED = 20  # missing thumbnails named in the footer


@dataclass(frozen=True)
class Note:
    """A piece of a card's detail line; `bad` ones are shown in red, `warn` ones in amber."""

    text: str
    bad: bool = False
    warn: bool = False


@dataclass(frozen=True)
class Card:
    key: str
    value: str
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Fact:
    """``label value after`` in a video's line of facts (the value in bold)."""

    label: str
    value: str
    after: str = ""


@dataclass(frozen=True)
class Spot:
    """Something placed along a timeline at `left` % of its width: a tick, a number, a time."""

    left: str
    text: str = ""
    cls: str = ""


@dataclass(frozen=True)
class Block:
    """An episode on a timeline's track."""

    left: str
    width: str
    title: str


@dataclass(frozen=True)
class Timeline:
    label: str  # what the track shows, for screen readers
    ticks: tuple[Spot, ...]
    blocks: tuple[Block, ...]
    marks: tuple[Spot, ...]  # episode numbers above the track
    scale: tuple[Spot, ...]  # times below it


@dataclass(frozen=True)
class Thumb:
    """An episode's peak frame and its caption; `uri` None: no thumbnail to show."""

    number: int
    title: str
    uri: str | None
    alt: str
    start: str
    end: str
    duration: str
    peak: str
    area: str
    at_end: bool


@dataclass(frozen=True)
class VideoView:
    index: int  # its anchor: #v<index>
    name: str
    status: str
    kind: str
    input_path: str
    error: str
    damage: str  # what was wrong with the input ("" where nothing was)
    facts: tuple[Fact, ...]
    timeline: Timeline | None
    thumbs: tuple[Thumb, ...]


@dataclass(frozen=True)
class PageView:
    title: str
    generated: str
    out_dir: str
    cards: tuple[Card, ...]
    videos: tuple[VideoView, ...]
    missing: tuple[str, ...]  # the thumbnails that could not be embedded
    metrics: MetricsView | None = None  # --truth: the video metrics (batch/cade_view.py)
    thumb_width: int = THUMB_WIDTH
    missing_listed: int = MISSING_LISTED

    @property
    def failed(self) -> tuple[VideoView, ...]:
        return tuple(v for v in self.videos if v.kind == "failed")

    @property
    def damaged(self) -> tuple[VideoView, ...]:
        """The videos whose input was damaged or cut short (processed now or in an earlier run)."""
        return tuple(v for v in self.videos if v.damage and v.kind != "failed")


def render_report_html(
    out_dir: str | Path,
    rows: Iterable[VideoRow | Mapping[str, Any]],
    title: str = TITLE,
    *,
    elapsed_s: float | None = None,
    generated: datetime | None = None,
) -> str:
    """The report page as a string (see `write_report_html`)."""
    return render(page_view(Path(out_dir), rows_of(rows), title, elapsed_s, generated))


def write_report_html(
    out_dir: str | Path, rows: Iterable[VideoRow | Mapping[str, Any]], *, elapsed_s: float | None = None
) -> Path:
    """Write ``out_dir/report.html``: totals, failed videos with their errors, and per video a
    timeline strip of its episodes and the thumbnails of their peak frames (embedded, at most
    `THUMB_WIDTH` px wide). ``elapsed_s``, the batch's wall-clock time, gives the aggregate
    throughput; without it the page shows the per-worker throughput. Returns the path written."""
    path = Path(out_dir) / "report.html"
    write_atomic(path, render_report_html(out_dir, rows, elapsed_s=elapsed_s))
    return path


def render(page: PageView) -> str:
    """`page` drawn by the template (every value escaped)."""
    return _template().render(page=page)


@cache
def _template() -> Template:
    from markupsafe import Markup

    env = page_templates("polyp_rt.batch")
    # a path that may wrap after its slashes: each part escaped, <wbr> after each slash
    env.filters["breakable"] = lambda text: Markup("/<wbr>").join(str(text).split("/"))
    return env.get_template("report.html")


def page_view(
    out_dir: Path,
    rows: Sequence[VideoRow],
    title: str = TITLE,
    elapsed_s: float | None = None,
    generated: datetime | None = None,
) -> PageView:
    """What the page shows for `rows` (thumbnails read from `out_dir`)."""
    when = (generated or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M %Z").strip()
    missing: list[str] = []
    videos = tuple(_video(i, row, out_dir, missing) for i, row in enumerate(rows, 1))
    cards = _cards(rows, elapsed_s)
    return PageView(title, when, printable(out_dir), cards, videos, tuple(missing), metrics_view(rows))


# ---------------------------------------------------------------------------------------------
# Totals


def _cards(rows: Sequence[VideoRow], elapsed_s: float | None) -> tuple[Card, ...]:
    n_failed = sum(r.kind == "failed" for r in rows)
    n_skipped = sum(r.kind == "skipped" for r in rows)
    video_s = sum(r.duration_s or 0.0 for r in rows if r.kind != "failed")
    polyp_s = sum(r.polyp_s for r in rows)
    n_damaged = sum(r.kind == "damaged" for r in rows)
    split = [Note(f"{sum(r.kind == 'ok' for r in rows)} ok")]
    if n_damaged:
        split.append(Note(f"{n_damaged} damaged", warn=True))
    split.append(Note(f"{n_failed} failed", bad=n_failed > 0))
    if n_skipped:
        split.append(Note(f"{n_skipped} skipped"))
    with_eps = sum(1 for r in rows if r.episodes)
    share = (Note(f"{fmt_pct(polyp_s / video_s)} of video time"),) if video_s else ()
    return (
        Card("Videos", f"{len(rows):,}", tuple(split)),
        Card("Video time", f"{video_s / 3600:.1f} h", (Note(f"{fmt_hms(video_s)} (h:mm:ss)"),)),
        Card("Frames", f"{sum(r.frames for r in rows if r.kind != 'failed'):,}"),
        Card(
            "Polyp episodes",
            f"{sum(r.episode_count for r in rows):,}",
            (Note(f"in {with_eps} of {len(rows)} videos"),),
        ),
        Card("Polyp time", fmt_span(polyp_s), share),
        _throughput(rows, elapsed_s),
    )


def _throughput(rows: Sequence[VideoRow], elapsed_s: float | None) -> Card:
    """Of this run: the rows processed now (not the failed or skipped ones)."""
    done = [r for r in rows if r.ran and r.worker_s]
    frames = sum(r.frames for r in done)
    worker_s = sum(r.worker_s or 0.0 for r in done)
    video_s = sum(r.duration_s or 0.0 for r in done)
    if elapsed_s and elapsed_s > 0 and frames:
        wall = Note(
            f"{frames / elapsed_s:,.0f} frames/s over {fmt_clock(elapsed_s)} wall clock, the whole batch"
        )
        return Card("Throughput", f"{video_s / elapsed_s:,.1f}× real time", (wall,))
    if worker_s > 0:
        per_worker = Note(f"{frames / worker_s:,.0f} frames/s per worker (frames ÷ worker time)")
        return Card("Throughput", f"{video_s / worker_s:,.1f}× real time", (per_worker,))
    return Card("Throughput", "–", (Note("no video processed in this run"),))


# ---------------------------------------------------------------------------------------------
# One video


def _video(index: int, row: VideoRow, out_dir: Path, missing: list[str]) -> VideoView:
    failed = row.kind == "failed"
    return VideoView(
        index=index,
        name=row.name,
        status=row.status,
        kind=row.kind,
        input_path=row.input_path,
        error=one_line(row.error) or "failed (no error message)",
        damage=row.damage,
        facts=_facts(row),
        timeline=None if failed else _timeline(row),
        thumbs=() if failed else _thumbs(row, out_dir, missing),
    )


def _facts(row: VideoRow) -> tuple[Fact, ...]:
    facts = []
    if row.duration_s is not None:
        facts.append(Fact("Duration", fmt_clock(row.duration_s)))
    if row.frames:
        facts.append(Fact("Frames", f"{row.frames:,}"))
    if row.kind != "failed":
        facts.append(Fact("Episodes", str(row.episode_count)))
        share = f" ({fmt_pct(row.polyp_s / row.duration_s)})" if row.duration_s else ""
        facts.append(Fact("Polyp time", fmt_span(row.polyp_s), share))
    if row.x_realtime:
        facts.append(
            Fact("Processed at", f"{row.x_realtime:.1f}× real time", f" ({row.fps_achieved:,.1f} frames/s)")
        )
    elif row.fps_achieved:
        facts.append(Fact("Processed at", f"{row.fps_achieved:,.1f}", " frames/s"))
    return tuple(facts)


def _episode_title(number: int, ep: Episode) -> str:
    end_note = " (still on when the video ended)" if ep.at_video_end else ""
    return (
        f"Episode {number}: {fmt_clock(ep.start_s)}–{fmt_clock(ep.end_s)} ({fmt_span(ep.duration_s)}){end_note}; "
        f"peak area {fmt_pct(ep.peak_area)} at {fmt_clock(ep.peak_t)} (frame {ep.peak_frame})"
    )


def _tick_step(span_s: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if span_s / step <= 8:
            return float(step)
    return 3600.0 * math.ceil(span_s / 3600 / 8)


def _pos(t: float, span: float) -> float:
    """Where `t` lies on a timeline of `span` seconds, in % of its width."""
    return min(100.0, max(0.0, 100.0 * t / span))


def _timeline(row: VideoRow) -> Timeline | None:
    span = row.timeline_s
    if span <= 0:
        return None
    step = _tick_step(span)
    ticks = [k * step for k in range(1, int(span // step) + 1) if k * step < span]
    blocks = []
    groups: list[list[Any]] = []  # [centre %, first number, last number]: close neighbours share one label
    for number, ep in enumerate(row.episodes, 1):
        left, right = _pos(ep.start_s, span), _pos(ep.end_s, span)
        blocks.append(Block(f"{left:.3f}", f"{right - left:.3f}", _episode_title(number, ep)))
        centre = (left + right) / 2
        if groups and centre - groups[-1][0] < MARK_GAP_PCT:
            groups[-1][2] = number
        else:
            groups.append([centre, number, number])
    marks = [Spot(f"{min(max(c, 0.6), 99.4):.3f}", str(a) if a == b else f"{a}–{b}") for c, a, b in groups]
    scale = [Spot("", "00:00", "first")]
    scale += [Spot(f"{_pos(t, span):.3f}", fmt_clock(t)) for t in ticks if t < span - 0.6 * step]
    scale.append(Spot("100", fmt_clock(span), "last"))  # the end label: no tick label too close to it
    ticked = tuple(Spot(f"{_pos(t, span):.3f}") for t in ticks)
    return Timeline(_track_label(row), ticked, tuple(blocks), tuple(marks), tuple(scale))


def _track_label(row: VideoRow) -> str:
    if not row.episodes:
        return f"Timeline of {fmt_clock(row.timeline_s)}: no polyp episodes"
    spans = ", ".join(f"{fmt_clock(e.start_s)}–{fmt_clock(e.end_s)}" for e in row.episodes)
    return f"Timeline of {fmt_clock(row.timeline_s)}; polyp episodes at {spans}"


def _thumbs(row: VideoRow, out_dir: Path, missing: list[str]) -> tuple[Thumb, ...]:
    thumbs = []
    for number, (ep, rel) in enumerate(zip(row.episodes, row.thumbnails, strict=True), 1):
        uri = _thumbnail_uri(out_dir, rel, THUMB_WIDTH)
        if uri is None:
            missing.append(f"{row.name} #{number}")
        thumbs.append(
            Thumb(
                number=number,
                title=_episode_title(number, ep),
                uri=uri,
                alt=f"{row.name}, episode {number}: peak frame {ep.peak_frame} at {fmt_clock(ep.peak_t)}",
                start=fmt_clock(ep.start_s),
                end=fmt_clock(ep.end_s),
                duration=fmt_span(ep.duration_s),
                peak=fmt_clock(ep.peak_t),
                area=fmt_pct(ep.peak_area),
                at_end=ep.at_video_end,
            )
        )
    return tuple(thumbs)


def _thumbnail_uri(out_dir: Path, rel: str | None, width: int) -> str | None:
    """The thumbnail at `rel` (inside `out_dir`) as a JPEG data URI at most `width` px wide;
    None where it is missing, unreadable or outside `out_dir`."""
    if not rel:
        return None
    root = out_dir.resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    data = path.read_bytes()
    import cv2  # a dependency of the project; only needed once a thumbnail is embedded
    import numpy as np

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    h, w = image.shape[:2]
    if w <= width and data[:3] == b"\xff\xd8\xff":
        jpeg = data
    else:
        if w > width:
            image = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
        if not ok:
            return None
        jpeg = encoded.tobytes()
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
