"""The interpreter settings of a run: GIL hand-over interval and garbage-collector pauses."""

import gc
import json
import sys

from polyp_rt.cli.main import main
from polyp_rt.realtime.pauses import InterpreterPauses


def test_pauses_set_the_interval_time_collections_and_restore_everything():
    interval, callbacks = sys.getswitchinterval(), list(gc.callbacks)
    with InterpreterPauses(switch_interval_ms=1.0) as pauses:
        assert sys.getswitchinterval() == 0.001
        assert gc.get_freeze_count() > 0  # what existed before the run is out of the collector's walks
        garbage = [[] for _ in range(1000)]
        for item in garbage:
            item.append(item)  # cycles only the collector frees
        del garbage
        gc.collect()
    assert sys.getswitchinterval() == interval and gc.callbacks == callbacks and gc.get_freeze_count() == 0
    summary = pauses.summary()
    assert summary["gc_collections"]["generation 2"] >= 1 and summary["gc_pause_max_ms"] > 0
    json.dumps(summary)


def test_a_run_reports_its_interpreter_settings(tiny_onnx, tmp_path):
    stats = tmp_path / "stats.json"
    args = [
        "--source",
        "synthetic:160x128@200",
        "--model",
        str(tiny_onnx),
        "--headless",
        "--max-frames",
        "20",
    ]
    assert main([*args, "--stats-json", str(stats)]) == 0
    interpreter = json.loads(stats.read_text())["interpreter"]
    assert interpreter["switch_interval_ms"] == 1.0
    assert set(interpreter["gc_collections"]) == {"generation 0", "generation 1", "generation 2"}
    assert sys.getswitchinterval() == 0.005 and gc.get_freeze_count() == 0
