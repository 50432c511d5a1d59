"""`polyp-rt batch --ray-address` against a separately started Ray cluster (head node on 127.0.0.1,
token authentication on), run as a user runs it: the command in its own process. Ctrl-C there
stops the batch cleanly and the next run resumes. The cluster is stopped at the end."""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from polyp_rt.batch.episodes import iter_frames_jsonl
from polyp_rt.batch.report import CSV_COLUMNS

pytest.importorskip("ray", reason='polyp-rt batch needs Ray: pip install "polyp-rt[batch]"')

RAY = Path(sys.executable).with_name("ray")
POLYP_RT = Path(sys.executable).with_name("polyp-rt")
FRAMES = 96


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """`ray start --head` on 127.0.0.1 with a token of its own: (address, environment to join it)."""
    from tests.conftest import wait_until

    root = tmp_path_factory.mktemp("cluster")
    token = root / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # a one-machine cluster: Ray binds 127.0.0.1
    }
    log = root / "head.log"
    command = [str(RAY), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port)]
    command += ["--include-dashboard=false", "--num-cpus", "2", "--disable-usage-stats"]
    with log.open("w") as out:
        head = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        wait_until(lambda: "Ray runtime started" in log.read_text(), 120, "the Ray head to start", head)
        yield f"127.0.0.1:{port}", env
    finally:
        head.terminate()  # `ray start --block` stops its node's processes on SIGTERM
        head.wait(timeout=60)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six real clips (96 frames, 160x128, distinct seeds) and a file that is not a video."""
    from polyp_rt.cli.main import main

    root = tmp_path_factory.mktemp("videos")
    paths = []
    for seed in range(6):
        path = root / f"case{seed}.mp4"
        args = ["synth", "--video", str(path), "--frames", str(FRAMES), "--fps", "24", "--width", "160"]
        assert main([*args, "--height", "128", "--seed", str(seed)]) == 0
        shutil.rmtree(root / f"case{seed}_masks")
        paths.append(path)
    return paths


def batch(args: list[str], env: dict[str, str], **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(POLYP_RT), "batch", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,  # type: ignore[call-overload]
    )


def summary(out: Path) -> dict[str, str]:
    with (out / "summary.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return {row["video"]: row["status"] for row in reader}


def complete(folder: Path) -> bool:
    stats = json.loads((folder / "stats.json").read_text())
    records = [r["frame"] for r in iter_frames_jsonl(folder / "frames.jsonl")]
    return records == list(range(FRAMES)) == list(range(stats["frames_processed"]))


def test_batch_on_a_started_cluster(
    cluster: tuple[str, dict[str, str]], videos: list[Path], micro_onnx: Path, tmp_path: Path
) -> None:
    address, env = cluster
    broken = tmp_path / "broken.mkv"
    broken.write_text("not a video")
    out = tmp_path / "out"
    args = [str(videos[0]), str(videos[1]), str(broken), "--out", str(out), "--model", str(micro_onnx)]
    run = batch([*args, "--ray-address", address], env)
    output, _ = run.communicate(timeout=300)
    assert run.returncode == 2, output
    assert summary(out) == {"case0.mp4": "ok", "case1.mp4": "ok", "broken.mkv": "failed"}
    assert complete(out / "case0.mp4") and complete(out / "case1.mp4")
    stats = json.loads((out / "case0.mp4" / "stats.json").read_text())
    assert stats["batch"]["attempt"] == 1 and stats["batch"]["pid"] != run.pid, "run by the cluster's worker"
    assert "2 ok, 1 failed" in output

    wrong = {**env, "RAY_AUTH_TOKEN_PATH": "", "RAY_AUTH_TOKEN": "not-the-cluster-token"}
    wrong["RAY_gcs_server_port_wait_time_s"] = "2"  # Ray's connection attempts (default 20, 1 s apart)
    refused = batch([*args, "--ray-address", address], wrong)
    output, _ = refused.communicate(timeout=300)
    assert refused.returncode == 2 and "cannot join the Ray cluster" in output, output


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(
    cluster: tuple[str, dict[str, str]], videos: list[Path], micro_onnx: Path, tmp_path: Path
) -> None:
    from tests.conftest import wait_until

    address, env = cluster
    out = tmp_path / "out"
    args = [*map(str, videos), "--out", str(out), "--model", str(micro_onnx), "--ray-address", address]
    run = batch([*args, "--workers", "1"], env)
    manifest = out / "manifest.json"

    def finished() -> dict[str, dict]:
        return json.loads(manifest.read_text())["videos"] if manifest.exists() else {}

    wait_until(lambda: len(finished()) >= 1, 300, "the first finished video", run)
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 130, output
    assert "run the same command again to resume" in output

    done = finished()
    assert 1 <= len(done) < len(videos)
    status = summary(out)
    assert sorted(n for n, s in status.items() if s == "ok") == sorted(done)
    assert {s for n, s in status.items() if n not in done} == {"skipped: interrupted"}
    for name in status:
        assert (out / name).is_dir() == (name in done), "a folder is a finished video"
    assert all(complete(out / name) for name in done)
    assert not (out / ".work").exists()

    again = batch(args, env)
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0, output
    status = summary(out)
    assert {n for n, s in status.items() if s == "skipped: unchanged"} == set(done)
    assert {n for n, s in status.items() if s == "ok"} == {p.name for p in videos} - set(done)
    assert all(complete(out / p.name) for p in videos)
    assert sorted(finished()) == sorted(p.name for p in videos)


WAIT_THROUGH_CTRL_C = """
import os, signal, sys, threading
import ray
from polyp_rt.core.signals import SignalWatch, Stopped

ray.init(address=sys.argv[1], log_to_driver=False)


@ray.remote(num_cpus=0)
def unfinished(seconds):
    threading.Event().wait(seconds)  # nothing sets it: a task still running when Ctrl-C comes


with SignalWatch() as stop:  # as the batch driver watches, from after ray.init
    ref = unfinished.remote(30)
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    for _ in range(60):  # Ctrl-C arrives in here, inside Ray's Cython code
        ray.wait([ref], timeout=1)
        if stop.reason is not None:
            break
    try:
        stop.check()
    except Stopped as stopped:
        print("stopped:", stopped.reason)
    ray.cancel(ref, force=True)
"""


def test_ctrl_c_inside_ray_wait_is_noted_not_raised_there(cluster: tuple[str, dict[str, str]]) -> None:
    """A handler that raised would turn Ctrl-C into a SystemError out of `ray.wait` (Ray 2.x)."""
    address, env = cluster
    run = subprocess.run(
        [sys.executable, "-c", WAIT_THROUGH_CTRL_C, address],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1:] == ["stopped: interrupted"], run.stderr
