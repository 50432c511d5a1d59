"""The batch's reports: ``summary.csv`` (one row per video) and a self-contained ``report.html``.

A row (`VideoRow`) says what became of one video: its name and input path, status (``ok``,
``failed`` or ``skipped: <reason>``, e.g. ``skipped: unchanged``), duration, frames, the throughput
its worker achieved, a one-line error, and, where it was processed, its episodes with the path of
each episode's peak-frame thumbnail relative to the output folder (by convention
``<video>/peaks/<peak frame, 6 digits>.jpg``, see `peak_thumbnail_path`).

The HTML page needs nothing but itself: CSS inline, thumbnails embedded as small JPEG data URIs,
no scripts, no network. Every piece of text from a row is escaped. Both files are written to a
temporary name beside the target and renamed when complete.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .episodes import Episode

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped: unchanged"

CSV_COLUMNS = (
    "video",
    "input",
    "status",
    "duration_s",
    "frames",
    "fps_achieved",
    "episodes",
    "polyp_s",
    "error",
)
THUMB_WIDTH = 160  # px, as embedded in the page
THUMB_QUALITY = 80  # JPEG quality of embedded thumbnails
ERROR_MAX_CHARS = 400
MARK_GAP_PCT = 2.2  # closest two episode numbers above a timeline may be, in % of its width


def peak_thumbnail_path(video: str, peak_frame: int) -> str:
    """Where a worker keeps an episode's peak-frame thumbnail, relative to the output folder."""
    return f"{video}/peaks/{peak_frame:06d}.jpg"


def one_line(text: str | None, limit: int = ERROR_MAX_CHARS) -> str:
    """`text` on one line (whitespace runs, newlines included, become one space), at most `limit` chars."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass
class VideoRow:
    """What became of one video. ``fps_achieved`` is frames processed per second of worker time.

    ``thumbnails`` runs parallel to ``episodes`` (None: no thumbnail); left empty, it is filled
    with the `peak_thumbnail_path` convention.
    """

    name: str
    input_path: str
    status: str = STATUS_OK
    duration_s: float | None = None
    frames: int = 0
    fps_achieved: float | None = None
    error: str = ""
    episodes: list[Episode] = field(default_factory=list)
    thumbnails: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind == "other":
            raise ValueError(
                f"video {self.name!r}: status {self.status!r} is not one of "
                f"'ok', 'failed', 'skipped' or 'skipped: <reason>'"
            )
        self.episodes = list(self.episodes)
        self.thumbnails = list(self.thumbnails)
        if not self.thumbnails:
            self.thumbnails = [peak_thumbnail_path(self.name, e.peak_frame) for e in self.episodes]
        if len(self.thumbnails) != len(self.episodes):
            raise ValueError(
                f"video {self.name!r}: {len(self.thumbnails)} thumbnails for {len(self.episodes)} episodes"
            )

    @property
    def kind(self) -> str:
        """``ok``, ``failed``, ``skipped`` (any ``skipped: ...`` status), else ``other``."""
        status = self.status.strip().lower()
        if status in (STATUS_OK, STATUS_FAILED):
            return status
        if status == "skipped" or status.startswith("skipped:"):
            return "skipped"
        return "other"

    @property
    def episode_count(self) -> int:
        return len(self.episodes)

    @property
    def polyp_s(self) -> float:
        """Time with the indicator on: the episodes' durations summed."""
        return sum(e.duration_s for e in self.episodes)

    @property
    def worker_s(self) -> float | None:
        """Worker time spent on the frames, from ``frames / fps_achieved``."""
        if self.fps_achieved and self.fps_achieved > 0 and self.frames > 0:
            return self.frames / self.fps_achieved
        return None

    @property
    def timeline_s(self) -> float:
        """The span a timeline draws: the duration, or the last episode's end where that is later."""
        ends = [e.end_s for e in self.episodes]
        return max([self.duration_s or 0.0, *ends])

    def to_dict(self) -> dict[str, Any]:
        return {
            "video": self.name,
            "input": self.input_path,
            "status": self.status,
            "duration_s": self.duration_s,
            "frames": self.frames,
            "fps_achieved": self.fps_achieved,
            "episodes": [e.to_dict() for e in self.episodes],
            "thumbnails": list(self.thumbnails),
            "polyp_s": self.polyp_s,
            "error": one_line(self.error),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoRow:
        """A row from `to_dict` output (or an equivalent mapping, e.g. a Ray task's result)."""
        return cls(
            name=str(data.get("video", data.get("name", ""))),
            input_path=str(data.get("input", data.get("input_path", ""))),
            status=str(data.get("status", STATUS_OK)),
            duration_s=None if data.get("duration_s") is None else float(data["duration_s"]),
            frames=int(data.get("frames") or 0),
            fps_achieved=None if data.get("fps_achieved") is None else float(data["fps_achieved"]),
            error=str(data.get("error") or ""),
            episodes=[
                e if isinstance(e, Episode) else Episode.from_dict(e) for e in data.get("episodes") or []
            ],
            thumbnails=list(data.get("thumbnails") or []),
        )


def _rows(rows: Iterable[VideoRow | Mapping[str, Any]]) -> list[VideoRow]:
    return [r if isinstance(r, VideoRow) else VideoRow.from_dict(r) for r in rows]


def _write_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# CSV


def _num(value: float | None, digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def write_summary_csv(rows: Iterable[VideoRow | Mapping[str, Any]], path: str | Path) -> Path:
    """``summary.csv``: a header (`CSV_COLUMNS`) and one row per video, in the order given."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in _rows(rows):
        failed = row.kind == "failed"  # episodes unknown, not zero
        writer.writerow(
            [
                row.name,
                row.input_path,
                row.status,
                _num(row.duration_s, 3),
                row.frames,
                _num(row.fps_achieved, 2),
                "" if failed else row.episode_count,
                "" if failed else _num(row.polyp_s, 3),
                one_line(row.error),
            ]
        )
    path = Path(path)
    _write_atomic(path, buffer.getvalue())
    return path


# ---------------------------------------------------------------------------------------------
# Formatting


def fmt_clock(seconds: float | None) -> str:
    """A time in a video as ``mm:ss``, or ``h:mm:ss`` from one hour on (seconds rounded down)."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def fmt_span(seconds: float | None) -> str:
    """A duration: ``0 s``, ``0.04 s``, ``8.4 s``, ``2 min 07 s``, ``1 h 02 min``."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds <= 0:
        return "0 s"
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    total = int(seconds)
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"


def fmt_hms(seconds: float) -> str:
    """A total time as ``h:mm:ss`` (hours unbounded, e.g. ``112:34:10``)."""
    total = max(0, int(seconds)) if math.isfinite(seconds) else 0
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def fmt_pct(fraction: float) -> str:
    if fraction <= 0:
        return "0 %"
    return f"{100 * fraction:.1f} %" if fraction >= 0.001 else f"{100 * fraction:.2f} %"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _path(text: str) -> str:
    """A path, escaped, that may wrap after its slashes."""
    return _e(text).replace("/", "/<wbr>")


# ---------------------------------------------------------------------------------------------
# Thumbnails


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


# ---------------------------------------------------------------------------------------------
# HTML

CSS = """
:root { --ink:#1d2329; --muted:#5f6b76; --line:#dde2e7; --track:#e9edf1; --ep:#2b9a48;
        --ep-edge:#1c6e32; --bad:#c92a2a; --bad-bg:#fff4f4; --skip:#6c757d; --card:#ffffff; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6f8; color: var(--ink);
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 18px; margin: 32px 0 12px; }
.sub { color: var(--muted); margin: 0; font-size: 13px; }
.num { font-variant-numeric: tabular-nums; }
.mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12px; }
.totals { display: grid; grid-template-columns: repeat(auto-fit, minmax(165px, 1fr)); gap: 12px; margin-top: 20px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .05em; }
.card .v { font-size: 24px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
.card .d { color: var(--muted); font-size: 12.5px; }
.card .v .bad { color: var(--bad); }
.failed { background: var(--bad-bg); border: 1px solid #f1c4c4; border-radius: 8px; padding: 4px 16px 12px; margin-top: 20px; }
.failed a { color: inherit; }
.failed h2 { color: var(--bad); margin-top: 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 6px 10px 6px 0; border-bottom: 1px solid #efd6d6; }
th { font-size: 12px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
td.err { color: var(--bad); word-break: break-word; }
td.name { font-weight: 600; word-break: break-word; }
td.path { overflow-wrap: anywhere; color: var(--muted); }
.legend { color: var(--muted); font-size: 13px; display: flex; gap: 18px; align-items: center; flex-wrap: wrap; margin: -4px 0 12px; }
.sw { display: inline-block; width: 22px; height: 10px; border-radius: 2px; vertical-align: middle; margin-right: 6px; }
.video { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px 12px;
         margin-bottom: 12px; content-visibility: auto; contain-intrinsic-size: auto 260px; }
.video.is-failed { border-left: 4px solid var(--bad); }
.vhead { display: flex; align-items: baseline; gap: 10px; flex-wrap: wrap; }
.vhead h3 { font-size: 16.5px; margin: 0; word-break: break-word; }
.badge { font-size: 11.5px; font-weight: 600; border-radius: 10px; padding: 1px 8px; text-transform: uppercase; letter-spacing: .04em; }
.badge.ok { background: #e6f4ea; color: #1c6e32; }
.badge.failed { background: #fde2e2; color: var(--bad); }
.badge.skipped { background: #eceff1; color: var(--skip); }
.path { color: var(--muted); overflow-wrap: anywhere; margin-top: 1px; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 8px 0 10px; font-size: 13.5px; }
.facts span b { font-weight: 600; }
.facts .lbl { color: var(--muted); }
.timeline { margin: 4px 0 2px; }
.marks { position: relative; height: 15px; font-size: 11px; font-weight: 650; color: var(--ep-edge); font-variant-numeric: tabular-nums; }
.marks span { position: absolute; bottom: 1px; transform: translateX(-50%); }
.track { position: relative; height: 20px; background: var(--track); border-radius: 4px; overflow: hidden; }
.ep { position: absolute; top: 0; bottom: 0; min-width: 3px; background: var(--ep); border-left: 1px solid var(--ep-edge);
      border-right: 1px solid var(--ep-edge); }
.ep:hover { background: #37b85a; }
.tick { position: absolute; top: 0; bottom: 0; width: 1px; background: rgba(0,0,0,.10); }
.scale { position: relative; height: 16px; font-size: 11px; color: var(--muted); font-variant-numeric: tabular-nums; }
.scale span { position: absolute; top: 1px; transform: translateX(-50%); white-space: nowrap; }
.scale span.first { transform: none; }
.scale span.last { transform: translateX(-100%); }
.thumbs { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 10px; }
figure { margin: 0; width: 160px; }
figure img, figure .noimg { display: block; width: 160px; border-radius: 4px; border: 1px solid var(--line); background: #111; }
figure .noimg { height: 90px; background: #f1f3f5; color: var(--muted); font-size: 12px; display: flex; align-items: center; justify-content: center; }
figcaption { font-size: 12px; line-height: 1.35; margin-top: 3px; font-variant-numeric: tabular-nums; }
figcaption .n { font-weight: 650; color: var(--ep-edge); }
figcaption .m { color: var(--muted); }
.none { color: var(--muted); font-size: 13px; margin: 8px 0 2px; }
.errbox { color: var(--bad); background: var(--bad-bg); border-radius: 6px; padding: 8px 10px; margin-top: 8px; word-break: break-word; }
.empty { background: var(--card); border: 1px dashed var(--line); border-radius: 8px; padding: 28px; text-align: center; color: var(--muted); }
footer { color: var(--muted); font-size: 12px; margin-top: 28px; }
@media print { body { background: #fff; } .video { break-inside: avoid; content-visibility: visible; } }
"""


def _tick_step(span_s: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if span_s / step <= 8:
            return float(step)
    return 3600.0 * math.ceil(span_s / 3600 / 8)


def _pos(t: float, span: float) -> float:
    return min(100.0, max(0.0, 100.0 * t / span))


def _episode_title(number: int, ep: Episode) -> str:
    end_note = " (still on when the video ended)" if ep.at_video_end else ""
    return (
        f"Episode {number}: {fmt_clock(ep.start_s)}–{fmt_clock(ep.end_s)} ({fmt_span(ep.duration_s)}){end_note}; "
        f"peak area {fmt_pct(ep.peak_area)} at {fmt_clock(ep.peak_t)} (frame {ep.peak_frame})"
    )


def _timeline(row: VideoRow) -> str:
    span = row.timeline_s
    if span <= 0:
        return ""
    blocks = []
    step = _tick_step(span)
    ticks = [k * step for k in range(1, int(span // step) + 1) if k * step < span]
    for t in ticks:
        blocks.append(f'<i class="tick" style="left:{_pos(t, span):.3f}%"></i>')
    for number, ep in enumerate(row.episodes, 1):
        left = _pos(ep.start_s, span)
        width = _pos(ep.end_s, span) - left
        blocks.append(
            f'<span class="ep" style="left:{left:.3f}%;width:{width:.3f}%" title="{_e(_episode_title(number, ep))}"></span>'
        )
    groups: list[list[Any]] = []  # [centre %, first number, last number]: close neighbours share one label
    for number, ep in enumerate(row.episodes, 1):
        centre = (_pos(ep.start_s, span) + _pos(ep.end_s, span)) / 2
        if groups and centre - groups[-1][0] < MARK_GAP_PCT:
            groups[-1][2] = number
        else:
            groups.append([centre, number, number])
    marks = [
        f'<span style="left:{min(max(c, 0.6), 99.4):.3f}%">{a if a == b else f"{a}–{b}"}</span>'
        for c, a, b in groups
    ]
    labels = ['<span class="first">00:00</span>']
    for t in ticks:
        if t < span - 0.6 * step:  # leave room for the end label
            labels.append(f'<span style="left:{_pos(t, span):.3f}%">{fmt_clock(t)}</span>')
    labels.append(f'<span class="last" style="left:100%">{fmt_clock(span)}</span>')
    return (
        '<div class="timeline"><div class="marks">'
        + "".join(marks)
        + f'</div><div class="track" role="img" aria-label="{_e(_track_label(row))}">'
        + "".join(blocks)
        + '</div><div class="scale">'
        + "".join(labels)
        + "</div></div>"
    )


def _track_label(row: VideoRow) -> str:
    if not row.episodes:
        return f"Timeline of {fmt_clock(row.timeline_s)}: no polyp episodes"
    spans = ", ".join(f"{fmt_clock(e.start_s)}–{fmt_clock(e.end_s)}" for e in row.episodes)
    return f"Timeline of {fmt_clock(row.timeline_s)}; polyp episodes at {spans}"


def _thumbs(row: VideoRow, out_dir: Path, width: int, missing: list[str]) -> str:
    if not row.episodes:
        return '<p class="none">No polyp episodes: the indicator stayed off for the whole video.</p>'
    figures = []
    for number, (ep, rel) in enumerate(zip(row.episodes, row.thumbnails, strict=True), 1):
        uri = _thumbnail_uri(out_dir, rel, width)
        alt = f"{row.name}, episode {number}: peak frame {ep.peak_frame} at {fmt_clock(ep.peak_t)}"
        if uri is None:
            missing.append(f"{row.name} #{number}")
            image = '<div class="noimg">no thumbnail</div>'
        else:
            image = f'<img src="{uri}" width="{width}" alt="{_e(alt)}">'
        still = '<br><span class="m">still on at video end</span>' if ep.at_video_end else ""
        figures.append(
            f'<figure title="{_e(_episode_title(number, ep))}">{image}<figcaption>'
            f'<span class="n">#{number}</span> {fmt_clock(ep.start_s)}–{fmt_clock(ep.end_s)}'
            f' <span class="m">({_e(fmt_span(ep.duration_s))})</span><br>'
            f'<span class="m">peak</span> {fmt_clock(ep.peak_t)} · <span class="m">area</span> {fmt_pct(ep.peak_area)}{still}'
            "</figcaption></figure>"
        )
    return '<div class="thumbs">' + "".join(figures) + "</div>"


def _facts(row: VideoRow) -> str:
    parts = []
    if row.duration_s is not None:
        parts.append(
            f'<span><span class="lbl">Duration</span> <b class="num">{fmt_clock(row.duration_s)}</b></span>'
        )
    if row.frames:
        parts.append(f'<span><span class="lbl">Frames</span> <b class="num">{row.frames:,}</b></span>')
    if row.kind != "failed":
        parts.append(f'<span><span class="lbl">Episodes</span> <b class="num">{row.episode_count}</b></span>')
        share = f" ({fmt_pct(row.polyp_s / row.duration_s)})" if row.duration_s else ""
        parts.append(
            f'<span><span class="lbl">Polyp time</span> <b class="num">{fmt_span(row.polyp_s)}</b>{share}</span>'
        )
    if row.fps_achieved:
        speed = ""
        if row.worker_s and row.duration_s:
            speed = f" ({row.duration_s / row.worker_s:.1f}× real time)"
        parts.append(
            f'<span><span class="lbl">Processed at</span> <b class="num">{row.fps_achieved:,.1f}</b> frames/s{speed}</span>'
        )
    return '<div class="facts">' + "".join(parts) + "</div>" if parts else ""


def _video(index: int, row: VideoRow, out_dir: Path, width: int, missing: list[str]) -> str:
    kind = row.kind
    head = (
        f'<div class="vhead"><h3>{_e(row.name)}</h3><span class="badge {kind}">{_e(row.status)}</span></div>'
        f'<div class="path mono">{_path(row.input_path)}</div>'
    )
    if kind == "failed":
        body = (
            _facts(row)
            + f'<div class="errbox">{_e(one_line(row.error) or "failed (no error message)")}</div>'
        )
    else:
        body = _facts(row) + _timeline(row) + _thumbs(row, out_dir, width, missing)
    cls = "video is-failed" if kind == "failed" else "video"
    return f'<article class="{cls}" id="v{index}">{head}{body}</article>'


def _card(key: str, value: str, detail: str = "") -> str:
    d = f'<div class="d">{detail}</div>' if detail else ""
    return f'<div class="card"><div class="k">{_e(key)}</div><div class="v">{value}</div>{d}</div>'


def _totals(rows: Sequence[VideoRow], elapsed_s: float | None) -> str:
    n_ok = sum(r.kind == "ok" for r in rows)
    n_failed = sum(r.kind == "failed" for r in rows)
    n_skipped = sum(r.kind == "skipped" for r in rows)
    video_s = sum(r.duration_s or 0.0 for r in rows if r.kind != "failed")
    frames = sum(r.frames for r in rows if r.kind != "failed")
    n_eps = sum(r.episode_count for r in rows)
    polyp_s = sum(r.polyp_s for r in rows)
    split = [f"{n_ok} ok"]
    if n_failed:
        split.append(f'<span style="color:var(--bad)">{n_failed} failed</span>')
    else:
        split.append("0 failed")
    if n_skipped:
        split.append(f"{n_skipped} skipped")
    with_eps = sum(1 for r in rows if r.episodes)
    cards = [
        _card("Videos", f"{len(rows):,}", " · ".join(split)),
        _card("Video time", f"{video_s / 3600:.1f} h", f"{fmt_hms(video_s)} (h:mm:ss)"),
        _card("Frames", f"{frames:,}"),
        _card("Polyp episodes", f"{n_eps:,}", f"in {with_eps} of {len(rows)} videos"),
        _card(
            "Polyp time", fmt_span(polyp_s), f"{fmt_pct(polyp_s / video_s)} of video time" if video_s else ""
        ),
    ]
    # Throughput of this run: the rows processed now (not the failed or skipped ones).
    done = [r for r in rows if r.kind == "ok" and r.worker_s]
    done_frames = sum(r.frames for r in done)
    worker_s = sum(r.worker_s or 0.0 for r in done)
    if elapsed_s and elapsed_s > 0 and done_frames:
        cards.append(
            _card(
                "Throughput",
                f"{done_frames / elapsed_s:,.0f} fps",
                f"all workers, over {fmt_clock(elapsed_s)} wall clock",
            )
        )
    elif worker_s > 0:
        cards.append(
            _card("Throughput", f"{done_frames / worker_s:,.0f} fps", "per worker (frames ÷ worker time)")
        )
    else:
        cards.append(_card("Throughput", "–", "no video processed in this run"))
    return '<section class="totals">' + "".join(cards) + "</section>"


def _failed_section(rows: Sequence[VideoRow]) -> str:
    failed = [(i, r) for i, r in enumerate(rows, 1) if r.kind == "failed"]
    if not failed:
        return ""
    lines = "".join(
        f'<tr><td class="name"><a href="#v{i}">{_e(r.name)}</a></td><td class="path mono">{_path(r.input_path)}</td>'
        f'<td class="err">{_e(one_line(r.error) or "failed (no error message)")}</td></tr>'
        for i, r in failed
    )
    return (
        f'<section class="failed"><h2>Failed videos ({len(failed)})</h2>'
        '<table><thead><tr><th style="width:22%">Video</th><th style="width:30%">Input</th><th>Error</th></tr></thead>'
        f"<tbody>{lines}</tbody></table></section>"
    )


def render_report_html(
    out_dir: str | Path,
    rows: Iterable[VideoRow | Mapping[str, Any]],
    title: str = "Polyp detection: batch report",
    *,
    elapsed_s: float | None = None,
    generated: datetime | None = None,
    thumb_width: int = THUMB_WIDTH,
) -> str:
    """The report page as a string (see `write_report_html`)."""
    out_dir = Path(out_dir)
    rows = _rows(rows)
    when = (generated or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M %Z").strip()
    missing: list[str] = []
    videos = "".join(_video(i, r, out_dir, thumb_width, missing) for i, r in enumerate(rows, 1))
    if not rows:
        videos = '<div class="empty">No videos in this batch.</div>'
    legend = (
        '<div class="legend"><span><i class="sw" style="background:var(--ep)"></i>Polyp episode (indicator on), '
        "numbered as its thumbnail; hover a block for its times. Each bar spans its whole video. Thumbnails show "
        "each episode's frame with the largest predicted polyp area.</span></div>"
        if rows
        else ""
    )
    note = ""
    if missing:
        note = (
            f"<p>{len(missing)} thumbnail(s) missing or unreadable: {_e(', '.join(missing[:20]))}"
            + (" …" if len(missing) > 20 else "")
            + ".</p>"
        )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
        f'<header><h1>{_e(title)}</h1><p class="sub">Generated {_e(when)} · output folder '
        f'<span class="mono">{_e(out_dir)}</span></p></header>'
        + _totals(rows, elapsed_s)
        + _failed_section(rows)
        + f"<h2>Videos ({len(rows)})</h2>"
        + legend
        + f'<section class="videos">{videos}</section>'
        + "<footer>"
        + note
        + "<p>Times are positions in each video (mm:ss or h:mm:ss). Area: fraction of the frame predicted "
        "as polyp. An episode is a run of frames with the polyp indicator on. polyp-rt batch report; "
        "a research aid, not a diagnosis.</p></footer></main></body></html>\n"
    )


def write_report_html(
    out_dir: str | Path,
    rows: Iterable[VideoRow | Mapping[str, Any]],
    title: str = "Polyp detection: batch report",
    *,
    elapsed_s: float | None = None,
    generated: datetime | None = None,
    thumb_width: int = THUMB_WIDTH,
    filename: str = "report.html",
) -> Path:
    """Write ``out_dir/report.html``: totals, failed videos with their errors, and per video a
    timeline strip of its episodes and the thumbnails of their peak frames (embedded, at most
    `thumb_width` px wide). ``elapsed_s``, the batch's wall-clock time, gives the aggregate
    throughput; without it the page shows the per-worker throughput. Returns the path written."""
    path = Path(out_dir) / filename
    _write_atomic(
        path,
        render_report_html(
            out_dir, rows, title, elapsed_s=elapsed_s, generated=generated, thumb_width=thumb_width
        ),
    )
    return path
