"""Leftovers (issue 33, class 15): a JSON write that fails part-way, and a batch driver stopped by
a signal while a video runs. Real processes: a full disk is a file size limit (RLIMIT_FSIZE), the
batch runs on a real embedded Ray, and its processes are found by a mark in their environment
(every process Ray starts inherits the driver's), not by name."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from polyp_rt.realtime.config import DEMO_MODEL_INT8
from tests.reliability.batch_cli import command, environment, make_clip, wait_for_exit, wait_on_process

MARK = "POLYP_RT_TEST_MARK"

WRITE_PAST_THE_LIMIT = """
import resource, signal, sys
from pathlib import Path
from polyp_rt.core.files import write_json
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    write_json(Path(sys.argv[1]), {"videos": {f"case_{i:04d}.mp4": "x" * 100 for i in range(1000)}})
except OSError as exc:
    print("failed:", exc.strerror)
"""


def test_a_json_write_that_fails_part_way_leaves_the_old_file_and_nothing_else(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"videos": {}}\n')
    done = subprocess.run(
        [sys.executable, "-c", WRITE_PAST_THE_LIMIT, str(manifest)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == "failed: File too large\n", done.stderr
    assert manifest.read_text() == '{"videos": {}}\n', "the old file, whole"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"], "no partial temporary file"


def marked(mark: str, but: int) -> dict[int, str]:
    """pid -> command line of every process whose environment holds `mark` (but `but`)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == but:
            continue
        try:
            if f"{MARK}={mark}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_a_batch_stopped_by_a_signal_writes_its_reports_and_leaves_no_ray_process(
    tmp_path: Path, signum: signal.Signals
) -> None:
    pytest.importorskip("ray")
    clip = make_clip(tmp_path / "in" / "long.mp4", frames=720)
    out = tmp_path / "out"
    mark = uuid.uuid4().hex
    # the bundled model, not the micro one: a batch reads files flat out, and with a model that
    # takes microseconds the video could end before the signal arrives
    args = ["batch", str(clip), "--out", str(out), "--model", str(DEMO_MODEL_INT8), "--workers", "1"]
    driver = subprocess.Popen(
        command(args),
        env=environment(**{MARK: mark}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # a driver started under nohup keeps ignoring SIGHUP, as it should; this one has a terminal
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    try:
        work = out / ".work"
        wait_on_process(
            driver.pid, lambda: any(f.stat().st_size > 0 for f in work.glob("*/frames.jsonl")), timeout=180
        )
        ray = marked(mark, but=driver.pid)
        assert any("raylet" in line for line in ray.values()), ray
        assert any("video_task" in line for line in ray.values()), "the video's worker is running"
        driver.send_signal(signum)
        stdout, stderr = driver.communicate(timeout=120)
    finally:
        driver.kill()
    reason, code = {signal.SIGHUP: ("hung up", 129), signal.SIGTERM: ("terminated", 143)}[signum]
    assert driver.returncode == code, stderr.decode()[-2000:]
    assert f"{reason}: 1 video(s) not finished; run the same command again to resume" in stdout.decode()
    with (out / "summary.csv").open(newline="", encoding="utf-8") as f:
        assert [row["status"] for row in csv.DictReader(f)] == ["skipped: interrupted"]
    assert (out / "report.html").is_file() and not work.exists()
    left = {pid: line for pid, line in ray.items() if not wait_for_exit(pid, timeout=20)}
    assert not left, f"Ray processes left after the driver exited: {left}"
