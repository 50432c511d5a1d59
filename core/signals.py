"""Ctrl-C, SIGTERM and SIGHUP: the reasons a run stops on them, their exit codes, and the handler
that notes them.

The live loop, the batch driver and the CLI all stop on these signals and exit with these codes
(SIGHUP: the terminal or the SSH session that ran the command is gone; without a handler the
process would die at once, leaving its recording unfinished and an embedded Ray's agents behind). The handler (`SignalWatch.handle`) only notes the signal; the loop that runs looks at the
note at the top of each turn (`check`) and stops there. A handler that raised would raise wherever
the main thread happens to be: inside Ray's Cython `wait` that came out as a SystemError (exit 1),
not as the interruption it was.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Self

INTERRUPTED = "interrupted"  # Ctrl-C (SIGINT)
TERMINATED = "terminated"  # SIGTERM
HUNG_UP = "hung up"  # SIGHUP
REASONS: dict[int, str] = {signal.SIGINT: INTERRUPTED, signal.SIGTERM: TERMINATED, signal.SIGHUP: HUNG_UP}
EXIT_CODES: dict[str, int] = {INTERRUPTED: 130, TERMINATED: 143, HUNG_UP: 129}  # 128 + the signal's number


class Stopped(BaseException):
    """The run is stopping: raised to unwind whoever waits on it (a pipeline thread at its queue,
    the batch driver between two waits). `reason` is a signal's (`INTERRUPTED`, `TERMINATED`, ...), or
    None where the stop came from elsewhere (the end of the stream, an error, the quit key)."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "stopped")
        self.reason = reason


class SignalWatch:
    """While entered, in the main thread: Ctrl-C, SIGTERM and SIGHUP (unless ignored, as under
    nohup) are noted by `handle`; on exit the handlers that were there before are put back.
    Entered in another thread it watches nothing (Python delivers signals to the main thread only).

    `reason` is the first signal's reason and `interrupts` counts the Ctrl-Cs; `check()` raises
    `Stopped` once a signal is noted. Subclasses extend `handle` (the live loop stops its pipeline
    there and quits on the third Ctrl-C).
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self.interrupts = 0
        self.saved: dict[int, Any] = {}  # signal -> the handler this one replaced

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for signum in REASONS:
                if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
                    continue  # started under nohup: asked to outlive the terminal
                self.saved[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)
        self.saved.clear()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """Note the signal; never raises (see the module's docstring)."""
        self.reason = self.reason or REASONS[signum]
        if signum == signal.SIGINT:
            self.interrupts += 1

    def check(self) -> None:
        """Raise `Stopped` with the noted reason once a signal has come; else return."""
        if self.reason is not None:
            raise Stopped(self.reason)
