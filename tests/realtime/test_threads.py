"""The thread plan's background priority: only the calling thread gives way."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from polyp_rt.realtime.threads import BACKGROUND_NICE, run_in_background


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a nice value per thread is Linux's")
def test_a_background_thread_runs_nicer_and_the_others_keep_their_priority():
    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: dict[str, object] = {}

    def background() -> None:
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        seen["took"] = run_in_background()
        seen["change"] = os.getpriority(os.PRIO_PROCESS, tid) - before

    def neighbour() -> None:
        seen["neighbour"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    for target in (background, neighbour):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    assert seen["took"] is True
    # nice tops out at 19: a test runner started nicer than 9 sees the rest of the step
    assert seen["change"] == min(BACKGROUND_NICE, 19 - main_before)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before
    assert seen["neighbour"] == main_before  # a thread started later inherits nothing of it
