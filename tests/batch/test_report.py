"""summary.csv and report.html: rows, escaping, a page that needs nothing but itself, and how it renders."""

from __future__ import annotations

import base64
import csv
import dataclasses
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from polyp_rt.batch.page import PageView, page_view, render, render_report_html, write_report_html
from polyp_rt.batch.report import CSV_COLUMNS, VideoRow, fmt_clock, fmt_span, write_summary_csv
from tests.chromium import cdp

NASTY = "case 017 <sigmoid> & \"rectum\" 'b'"
# breaks out of an attribute (either quote) and of text, and runs a script if it is not escaped
HOSTILE = "\"'><img src=x onerror=alert(1)>"
Archive = tuple[Path, list[VideoRow]]


class Page(HTMLParser):
    """What a browser would fetch or show: tags, attributes, text, CSS."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.css: list[str] = []
        self._in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        self._in_style = tag == "style"
        if "style" in attributes:
            self.css.append(attributes["style"])

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.css if self._in_style else self.text).append(data)

    def all(self, tag: str, cls: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and (cls is None or cls in a.get("class", "").split())]

    @property
    def body_text(self) -> str:
        return " ".join(self.text)


def test_page_is_self_contained(fake_archive: Archive) -> None:
    out, rows = fake_archive
    page = Page(write_report_html(out, rows).read_text(encoding="utf-8"))
    refs = [a[k] for _, a in page.tags for k in ("src", "href", "srcset", "data", "action") if k in a]
    refs += re.findall(r"url\(\s*['\"]?([^)'\"]*)", " ".join(page.css))
    assert refs, "the page has images"
    for ref in refs:
        assert not re.match(r"\s*(https?:)?//", ref, re.I), ref
        assert ref.startswith(("data:image/jpeg;base64,", "#")), f"needs a file beside the page: {ref[:60]}"
    tags = {t for t, _ in page.tags}
    assert not tags & {"script", "link", "iframe", "object", "embed"}
    assert "@import" not in " ".join(page.css)


def test_every_video_and_episode_appears(fake_archive: Archive) -> None:
    out, rows = fake_archive
    page = Page(render_report_html(out, rows))
    text = page.body_text
    for row in rows:
        assert row.name in text and row.input_path in text.replace("/ ", "/")
    shown = [r for r in rows if r.kind != "failed"]
    n_episodes = sum(len(r.episodes) for r in shown)
    blocks = page.all("span", "ep")
    assert len(blocks) == n_episodes == 12
    titles = [a["title"] for a in blocks]
    figures = [a["title"] for a in page.all("figure")]
    for row in shown:
        for number, ep in enumerate(row.episodes, 1):
            expected = f"Episode {number}: {fmt_clock(ep.start_s)}–{fmt_clock(ep.end_s)}"
            assert any(t.startswith(expected) for t in titles), expected
            assert any(f.startswith(expected) for f in figures), expected
    assert len(page.all("img")) == n_episodes, "every thumbnail in the fake archive exists and is embedded"
    assert "no thumbnail" not in text
    # an hour-long video shows h:mm:ss, the others mm:ss
    assert "1:02:10" in text and "24:13" in text
    # the totals, each card's value right after its key
    texts = [t.strip() for t in page.text if t.strip()]
    assert texts[texts.index("Videos") + 1] == "6"
    assert texts[texts.index("Polyp episodes") + 1] == "12"
    assert texts[texts.index("Frames") + 1] == f"{sum(r.frames for r in shown):,}"
    assert "1 failed" in text and "1 skipped" in text


def test_failed_videos_are_listed_with_their_error(fake_archive: Archive) -> None:
    out, rows = fake_archive
    page = Page(render_report_html(out, rows))
    failed = [r for r in rows if r.kind == "failed"]
    assert len(failed) == 1
    text = page.body_text
    assert "Failed videos (1)" in text
    assert "moov atom not found; the recording was probably cut off" in text, "the error on one line"
    assert text.count(failed[0].name) >= 2, "in the failed list and in the videos"


def test_text_is_escaped(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script> & <b>'
    row = VideoRow(name=evil, input_path=f"/in/{evil}.mp4", status="failed", error=f"{evil} broke\nline two")
    html_text = render_report_html(tmp_path, [row], title=f"Batch {evil}")
    page = Page(html_text)
    assert not {t for t, _ in page.tags} & {"script", "b"}
    assert "<script>" not in html_text and "&lt;script&gt;" in html_text
    assert evil in page.body_text, "the browser shows the name as written"
    assert f"{evil} broke line two" in page.body_text


def test_nasty_name_is_escaped_in_text_and_attributes(fake_archive: Archive) -> None:
    out, rows = fake_archive
    html_text = render_report_html(out, rows)
    assert NASTY not in html_text
    assert "case 017 &lt;sigmoid&gt; &amp; &#34;rectum&#34; &#39;b&#39;" in html_text
    page = Page(html_text)
    alts = [a["alt"] for a in page.all("img")]
    assert any(alt.startswith(f"{NASTY}.mkv, episode 1") for alt in alts)


def no_injected_markup(html_text: str, page: Page, template_tags: set[str]) -> None:
    """Nothing of HOSTILE became markup: no event handler, no tag the template does not write, no
    image but the embedded thumbnails (or, where the page model itself was hostile, its escaped text)."""
    assert "<img src=x" not in html_text
    assert {t for t, _ in page.tags} <= template_tags
    for tag, attributes in page.tags:
        assert not [k for k in attributes if k.startswith("on")], (tag, attributes)
        if tag == "img":
            assert attributes["src"].startswith("data:image/jpeg;base64,") or attributes["src"] == HOSTILE


def test_a_hostile_file_name_status_and_error_come_out_escaped(fake_archive: Archive) -> None:
    out, rows = fake_archive
    template_tags = {t for t, _ in Page(render_report_html(out, rows)).tags}
    hostile = dataclasses.replace(
        rows[0],
        name=f"{HOSTILE}.mp4",
        input_path=f"/in/{HOSTILE}/{HOSTILE}.mp4",
        status=f"skipped: {HOSTILE}",
        thumbnails=[f"../{HOSTILE}.jpg"] + rows[0].thumbnails[1:],
    )
    failed = dataclasses.replace(rows[-1], name=HOSTILE, input_path=HOSTILE, error=f"{HOSTILE}\n{HOSTILE}")
    html_text = render_report_html(out, [hostile, *rows[1:-1], failed], title=HOSTILE)
    page = Page(html_text)

    no_injected_markup(html_text, page, template_tags)
    texts = [t.strip() for t in page.text]
    assert texts.count(HOSTILE) >= 4, "the title twice, the failed video's name in the list and its card"
    assert f"{HOSTILE}.mp4" in texts and f"skipped: {HOSTILE}" in texts
    assert f"{HOSTILE} {HOSTILE}" in texts, "the error, on one line, in the list and in its card"
    assert f"/in/{HOSTILE}/{HOSTILE}.mp4" in page.body_text.replace("/ ", "/")
    alts = [a["alt"] for a in page.all("img")]
    assert any(alt.startswith(f"{HOSTILE}.mp4, episode 2") for alt in alts), "in attributes too"
    assert f"{HOSTILE}.mp4 #1" in page.body_text, "the missing thumbnail named in the footer"


def hostile_everywhere(value: object) -> object:
    """`value` (the page model) with every string in it replaced by HOSTILE."""
    if isinstance(value, str):
        return HOSTILE
    if isinstance(value, tuple):
        return tuple(hostile_everywhere(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = {f.name: hostile_everywhere(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changed)
    return value


def test_every_value_the_template_writes_is_escaped(fake_archive: Archive) -> None:
    out, rows = fake_archive
    model = page_view(out, rows)
    template_tags = {t for t, _ in Page(render(model)).tags}
    evil = hostile_everywhere(model)
    assert isinstance(evil, PageView) and evil.videos[0].timeline is not None
    html_text = render(evil)
    page = Page(html_text)

    no_injected_markup(html_text, page, template_tags)
    texts = [t.strip() for t in page.text]
    assert texts.count(HOSTILE) >= 3 * len(model.cards), "each card's key, value and detail as text"
    values = [v for _, attributes in page.tags for v in attributes.values()]
    for attribute in ("title", "alt", "aria-label", "class"):
        assert any(a.get(attribute) and HOSTILE in a[attribute] for _, a in page.tags), attribute
    assert any(v == f"left:{HOSTILE}%" for v in values), "positions in style attributes"


def test_thumbnails_are_small_jpegs(fake_archive: Archive) -> None:
    out, rows = fake_archive
    page = Page(render_report_html(out, rows))
    widths = set()
    for img in page.all("img"):
        data = base64.b64decode(img["src"].split(",", 1)[1])
        assert data[:3] == b"\xff\xd8\xff"
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        widths.add(image.shape[1])
        assert len(data) < 20_000
    assert widths == {160}, "640 and 1920 px wide thumbnails are scaled down to 160"


def test_missing_and_escaping_thumbnails_are_shown_not_embedded(fake_archive: Archive) -> None:
    out, rows = fake_archive
    first = rows[0]
    (out / first.thumbnails[0]).unlink()
    (out.parent / "secret.jpg").write_bytes((out / first.thumbnails[1]).read_bytes())
    first.thumbnails[1] = "../secret.jpg"
    page = Page(render_report_html(out, rows))
    assert len(page.all("div", "noimg")) == 2
    assert "2 thumbnail(s) missing or unreadable" in page.body_text
    assert len(page.all("img")) == 10


def test_zero_and_one_video(tmp_path: Path) -> None:
    empty = Page(write_report_html(tmp_path / "empty", []).read_text(encoding="utf-8"))
    assert "No videos in this batch." in empty.body_text
    assert "Videos (0)" in empty.body_text

    from_dict = VideoRow.from_dict(
        {
            "video": "only.mp4",
            "input": "/in/only.mp4",
            "status": "ok",
            "duration_s": 65.0,
            "frames": 1625,
            "fps_achieved": 90.0,
            "episodes": [],
        }
    )
    one = Page(write_report_html(tmp_path / "one", [from_dict]).read_text(encoding="utf-8"))
    assert "only.mp4" in one.body_text and "No polyp episodes" in one.body_text
    assert len(one.all("div", "track")) == 1


def test_summary_csv_rows(fake_archive: Archive, tmp_path: Path) -> None:
    out, rows = fake_archive
    path = write_summary_csv(rows, out / "summary.csv")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        lines = list(reader)
    assert [r["video"] for r in lines] == [r.name for r in rows]
    assert lines[1]["video"] == NASTY + ".mkv", "quotes and commas survive the CSV"
    for line, row in zip(lines, rows, strict=True):
        assert line["status"] == row.status and line["input"] == row.input_path
        assert "\n" not in line["error"]
        if row.kind == "failed":
            assert line["episodes"] == line["polyp_s"] == line["duration_s"] == ""
            assert line["error"].startswith("InputFileError: ")
        else:
            assert int(line["episodes"]) == len(row.episodes)
            assert float(line["polyp_s"]) == pytest.approx(sum(e.duration_s for e in row.episodes), abs=1e-3)
            assert float(line["duration_s"]) == pytest.approx(row.duration_s)
            assert int(line["frames"]) == row.frames
            assert line["error"] == ""
    assert [line["status"] for line in lines].count("skipped: unchanged") == 1
    speed = {line["video"]: line["x_realtime"] for line in lines}
    assert speed["2024-03-07_colo_0423.mp4"] == "3.48", "15:05 of video in 260 s of worker time"
    assert speed["2024-03-04_colo_0398.mp4"] == speed["2024-03-06_colo_0420.mp4"] == "", "not processed now"


def test_speed_is_shown_as_times_real_time(tmp_path: Path) -> None:
    """65 s of video, 1,625 frames at 90 frames/s: 18.06 s of worker time, 3.6x real time; over a
    13 s batch, 125 frames/s and 5.0x real time."""
    row = VideoRow("only.mp4", "/in/only.mp4", duration_s=65.0, frames=1625, fps_achieved=90.0)
    assert row.x_realtime == pytest.approx(65 / (1625 / 90))
    per_worker = " ".join(
        Page(write_report_html(tmp_path / "a", [row]).read_text(encoding="utf-8")).body_text.split()
    )
    assert "Processed at 3.6× real time (90.0 frames/s)" in per_worker
    assert "Throughput 3.6× real time 90 frames/s per worker" in per_worker
    wall = Page(write_report_html(tmp_path / "b", [row], elapsed_s=13.0).read_text(encoding="utf-8"))
    wall_text = " ".join(wall.body_text.split())
    assert "Throughput 5.0× real time 125 frames/s over 00:13 wall clock, the whole batch" in wall_text


def test_writes_replace_whole_files_and_leave_no_temporaries(fake_archive: Archive) -> None:
    out, rows = fake_archive
    (out / "report.html").write_text("old")
    (out / "summary.csv").write_text("old")
    write_report_html(out, rows)
    write_summary_csv(rows, out / "summary.csv")
    assert (out / "report.html").read_text(encoding="utf-8").startswith("<!doctype html>")
    assert (out / "summary.csv").read_text(encoding="utf-8").startswith("video,input,status")
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["report.html", "summary.csv"]


def test_rows_validate_and_round_trip(fake_archive: Archive) -> None:
    _, rows = fake_archive
    for row in rows:
        data = json.loads(json.dumps(row.to_dict(), allow_nan=False))
        again = VideoRow.from_dict(data)
        assert again.to_dict() == row.to_dict()
    with pytest.raises(ValueError, match="status 'done'"):
        VideoRow("a.mp4", "/in/a.mp4", status="done")
    with pytest.raises(ValueError, match="1 thumbnails for 5 episodes"):
        VideoRow("a.mp4", "/in/a.mp4", episodes=rows[0].episodes, thumbnails=["x.jpg"])
    first_thumb = rows[0].thumbnails[0]
    assert first_thumb == f"2024-03-05_colo_0412.mp4/peaks/{rows[0].episodes[0].peak_frame:06d}.jpg"


def test_time_formats() -> None:
    assert fmt_clock(0) == "00:00" and fmt_clock(59.99) == "00:59" and fmt_clock(1453.2) == "24:13"
    assert fmt_clock(3730) == "1:02:10" and fmt_clock(None) == "–"
    assert fmt_span(0) == "0 s" and fmt_span(0.02) == "0.02 s" and fmt_span(8.44) == "8.4 s"
    assert fmt_span(67.6) == "1 min 07 s" and fmt_span(3730) == "1 h 02 min"


@pytest.mark.skipif(cdp.chromium() is None, reason="headless Chromium is not installed")
def test_report_renders_in_headless_chromium(fake_archive: Archive, tmp_path: Path) -> None:
    out, rows = fake_archive
    page = write_report_html(out, rows, elapsed_s=1250.0)
    shot = tmp_path / "report.png"
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    command = [
        str(cdp.chromium()),
        *cdp.FLAGS,
        f"--user-data-dir={profile}",
        f"--screenshot={shot}",
        "--window-size=1280,1600",
        page.resolve().as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    image = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (1600, 1280, 3)
    assert float(image.std()) > 15, "not a blank page"
    colours = np.unique(image.reshape(-1, 3) // 16, axis=0)
    assert len(colours) > 50, "text, cards, strips and thumbnails give many colours"
    # the episodes' green and the failed box's red are on the first screen
    b, g, r = (image[..., i].astype(int) for i in range(3))
    assert ((g > r + 60) & (g > b + 60)).sum() > 200
    assert ((r > g + 80) & (r > b + 80)).sum() > 200
