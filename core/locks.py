"""One writer per output: an advisory lock (flock) on the output file or folder itself.

A writer takes `lock_output(path, what)` before its first write and closes it when it is
done; a second writer of the same path, in this process or another, is refused at once with one
line naming the path and, where /proc/locks says, the holder's pid. The lock is on the output
itself, not in a lock file beside it, so nothing is left behind: the kernel drops it when the
process ends in any way (SIGKILL included). Only regular files and folders are locked; a device
or FIFO (/dev/null, a pipe to another program) is written as it is.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from polyp_rt.core.closing import Closing
from polyp_rt.core.errors import OutputError
from polyp_rt.core.paths import make_folder

log = logging.getLogger(__name__)

PROC_LOCKS = Path("/proc/locks")


class OutputLock(Closing):
    """The lock one writer holds on its output; `close()` (or leaving the `with`) drops it."""

    def __init__(self, path: Path, fd: int | None, created: bool) -> None:
        self.path = path
        self.created = created  # the file did not exist before this writer made it
        self._fd = fd

    def close(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def discard(self) -> None:
        """Drop the lock and remove the file if this writer created it (a writer that failed to
        start leaves nothing behind; while the lock is held, no other writer has it)."""
        if self.created and self._fd is not None:
            self.path.unlink(missing_ok=True)
        self.close()


def lock_output(path: Path, what: str, folder: bool = False) -> OutputLock:
    """Lock the output `path` for this writer. A file that does not exist is created empty (without
    truncating one that does); a folder must exist. OutputError where another writer holds it."""
    fd: int | None
    try:
        if folder:
            fd, created = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), False
        else:
            fd, created = _open_file(path)
    except OSError as exc:
        raise OutputError(f"{path}: {what} cannot be opened for writing ({exc.strerror or exc})") from exc
    if fd is None:
        return OutputLock(path, None, False)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):  # a file system without locks
            log.warning("%s: cannot lock %s (%s); make sure no other run writes it", path, what, exc.strerror)
            return OutputLock(path, fd, created)
        holder = holder_pid(fd)
        os.close(fd)  # never removed here: the file is the other writer's now
        who = f"another process (pid {holder})" if holder else "another process"
        raise OutputError(
            f"{path}: {what} is being written by {who}; wait for it to finish, or choose another path"
        ) from None
    return OutputLock(path, fd, created)


def check_free(path: Path, what: str, folder: bool = False) -> None:
    """OutputError where another writer holds `path` now. Called with the other output checks,
    before anything is opened, so a run refused for it leaves nothing behind; a path that does
    not exist yet is free (the writer's own lock settles a race)."""
    if path.is_dir() if folder else path.is_file():
        lock_output(path, what, folder).close()


@contextmanager
def held_folder(folder: Path, what: str) -> Iterator[Path]:
    """An output folder, made where missing (`make_folder`) and locked while the `with` runs; one
    made here that is still empty at the end (a writer refused or failed before its first file)
    is removed again."""
    existed = folder.is_dir()
    with lock_output(make_folder(folder, what), what, folder=True):
        try:
            yield folder
        finally:
            if not existed and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def _open_file(path: Path) -> tuple[int | None, bool]:
    """(a descriptor of the regular file `path`, whether it was created now); None for a device."""
    flags = os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK  # non-blocking: a FIFO without a reader
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666), True
    except FileExistsError:
        pass
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None, False
    except FileNotFoundError:  # a dangling symlink: created through it
        return os.open(path, flags | os.O_CREAT, 0o666), True
    return os.open(path, flags), False


def holder_pid(fd: int) -> int | None:
    """The pid holding a flock on the file open as `fd`, from /proc/locks (Linux), or None."""
    st = os.fstat(fd)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = PROC_LOCKS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()  # "3: FLOCK ADVISORY WRITE 11401 fe:00:2146621 0 EOF"; "->" waits
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode and fields[4].isdigit():
            return int(fields[4])
    return None
