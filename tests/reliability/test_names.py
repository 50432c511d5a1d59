"""Names that are not clean text, and summary cells a spreadsheet would run (issue 33, classes 2
and 3): a file name that is not UTF-8, one with terminal control characters, a right-to-left
override, rich markup, and names that start like a spreadsheet formula, through `polyp-rt batch`
(real Ray, real clips, the page in headless Chromium) and `polyp-rt run --stats-json`."""

from __future__ import annotations

import csv
import html.parser
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import pytest

from polyp_rt.batch.report import csv_text
from polyp_rt.core.names import printable
from tests.reliability.batch_cli import make_clip, polyp_rt

NOT_UTF8 = os.fsdecode(b"caf\xe9.mp4")  # the byte 0xE9 alone (Latin-1 'e acute'): not UTF-8
CONTROL = "x\x1b[31mred\x07.mp4"  # an escape sequence (red) and a bell
RTL = "rtl\u202egpj.mp4"  # a right-to-left override: shows as "rtlmp4.jpg"
MARKUP = "x[red]y.mp4"  # rich markup: printed by rich as "xy.mp4" in red
FORMULAS = ['=HYPERLINK("evil","click").mp4', "@SUM(1+1).mp4", "+1+1.mp4", "-2+3.mp4"]
# as the summary, the page and the terminal show them (worked out by hand)
SHOWN = {
    NOT_UTF8: "caf\\xe9.mp4",
    CONTROL: "x\\x1b[31mred\\x07.mp4",
    RTL: "rtl\\u202egpj.mp4",
    MARKUP: MARKUP,
    **{name: name for name in FORMULAS},
}
RAW = [b"\x1b", b"\x07", "\u202e".encode(), b"\xe9", b"\\udce9", "\udce9".encode("utf-8", "surrogatepass")]


def test_printable_escapes_what_a_terminal_would_obey_or_cannot_show() -> None:
    assert printable(Path(NOT_UTF8)) == "caf\\xe9.mp4" == printable(b"caf\xe9.mp4")
    assert printable(CONTROL) == "x\\x1b[31mred\\x07.mp4"
    assert printable("a\tb\nc\rd\x7fe\x85f") == "a\\tb\\nc\\rd\\x7fe\\x85f"
    assert printable(RTL) == "rtl\\u202egpj.mp4"
    assert printable("zero\u200bwidth\u2028line") == "zero\\u200bwidth\\u2028line"
    for clean in ("Überweisung 日本 é.mp4", "a\\x1b.mp4", "case [1] (copy).mp4", ""):
        assert printable(clean) == clean, "letters of any script, and backslashes, stay"
    for name in (NOT_UTF8, CONTROL, RTL, "a\tb"):
        assert printable(printable(name)) == printable(name), "idempotent"
    assert printable("é日😀\x1b", ascii_only=True) == "\\xe9\\u65e5\\U0001f600\\x1b"


def test_a_cell_that_starts_like_a_formula_gets_an_apostrophe_and_numbers_stay_numbers() -> None:
    for formula in ("=1+1", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "-", "+", '=HYPERLINK("a","b")'):
        assert csv_text(formula) == "'" + formula
    for kept in ("-1.5", "+2", "-3e-5", "-.5", "12", "a=b", "case-1.mp4", "", "'=x"):
        assert csv_text(kept) == kept


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def chromium_text(page: Path, profile: Path) -> str:
    """The text of `page` as headless Chromium builds it (its DOM, tags dropped)."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        pytest.skip("headless Chromium is not installed")
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    command += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    command += [f"--user-data-dir={profile}", "--dump-dom", page.as_uri()]
    done = subprocess.run(command, capture_output=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    parser = _Text()
    parser.feed(done.stdout.decode("utf-8"))
    return "".join(parser.parts)


def test_a_batch_of_hostile_names_finishes_and_shows_every_name_escaped(
    micro_onnx: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    clip = make_clip(tmp_path / "clip.mp4")
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in SHOWN:
        shutil.copy(clip, archive / name)
    out = tmp_path / "out"
    args = ["batch", str(archive), "--out", str(out), "--model", str(micro_onnx)]
    first = polyp_rt(args)
    terminal = first.stdout + first.stderr
    assert first.returncode == 0, terminal[-3000:]
    for raw in RAW:
        assert raw not in terminal, f"{raw!r} reached the terminal"
    for shown in SHOWN.values():
        assert shown.encode() in first.stdout, f"{shown} is in the closing table, escaped"

    text = (out / "summary.csv").read_bytes().decode("utf-8")  # valid UTF-8
    rows = {row["video"]: row for row in csv.DictReader(io.StringIO(text, newline=""))}
    cells = {("'" + s if s in FORMULAS else s) for s in SHOWN.values()}
    assert set(rows) == cells, "formulas get an apostrophe, the other names are shown escaped"
    for name, shown in SHOWN.items():
        row = rows["'" + shown if name in FORMULAS else shown]
        assert row["status"] == "ok" and row["input"] == printable(archive) + "/" + shown
        assert (out / shown).is_dir(), "the result folder is named as shown"

    manifest = json.loads((out / "manifest.json").read_bytes().decode("utf-8"))
    assert set(manifest["videos"]) == set(SHOWN.values())
    for shown in SHOWN.values():
        entry = manifest["videos"][shown]
        assert entry["input"] == f"{printable(archive)}/{shown}"
        for document in ("episodes.json", "stats.json"):
            data = (out / shown / document).read_bytes().decode("utf-8")
            assert "\\udc" not in data, "no lone surrogate in the JSON"
        episodes = json.loads((out / shown / "episodes.json").read_text(encoding="utf-8"))
        stats = json.loads((out / shown / "stats.json").read_text(encoding="utf-8"))
        assert episodes["video"] == stats["batch"]["video"] == shown
        assert episodes["input"] == stats["batch"]["input"] == entry["input"]

    page = chromium_text(out / "report.html", tmp_path / "profile")
    for shown in SHOWN.values():
        assert shown in page, f"{shown} is on the page as text"
    for raw in ("\x1b", "\x07", "\u202e", "\udce9"):
        assert raw not in page

    again = polyp_rt(args)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    text = (out / "summary.csv").read_text(encoding="utf-8")
    statuses = [row["status"] for row in csv.DictReader(io.StringIO(text, newline=""))]
    assert statuses == ["skipped: unchanged"] * len(SHOWN), "a rerun finds every result"


def test_run_with_a_name_that_is_not_utf8_writes_its_statistics_and_plot(
    micro_onnx: Path, tmp_path: Path
) -> None:
    name = os.fsdecode(b"caf\xe9 \x1b[31mred\x07.mp4")
    source = make_clip(tmp_path / "clip.mp4")
    source = source.rename(tmp_path / name)
    stats = tmp_path / "stats.json"
    args = ["run", "--source", str(source), "--model", str(micro_onnx), "--headless"]
    done = polyp_rt([*args, "--stats-json", str(stats)], timeout=180)
    terminal = done.stdout + done.stderr
    assert done.returncode == 0, f"exit {done.returncode}: {terminal[-2000:]!r}"
    for raw in RAW:
        assert raw not in terminal, f"{raw!r} reached the terminal"
    assert b"caf\\xe9 \\x1b[31mred\\x07.mp4" in done.stdout, "the closing table names the file, escaped"
    document = json.loads(stats.read_bytes().decode("utf-8"))
    assert document["config"]["source"] == f"{tmp_path}/caf\\xe9 \\x1b[31mred\\x07.mp4", (
        "the JSON is valid UTF-8: a name that is not is stored printable"
    )
    plot = cv2.imread(str(tmp_path / "stats.png"))
    assert plot is not None and plot.shape[1] > 0, "the histogram is drawn, its title escaped"
