"""One writer per output: an advisory lock beside the output file (or inside a run directory) that names
its holder's PID. The kernel drops the lock when the holder dies, even by kill -9, so a stale lock file is
simply taken over."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from prefkit.errors import OutputLocked


class OutputLock:
    """`with OutputLock(path, what):` holds `path` exclusively, or raises OutputLocked at once."""

    def __init__(self, path: str | Path, what: str):
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock without waiting; a live holder is an OutputLocked error naming its PID."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise OutputLocked(
                    f"{self.what} is in use by another prefkit process (pid {holder}, lock {self.path}); "
                    "wait for it to finish or stop it"
                ) from None
            # The holder before us may have removed the file after we opened it: lock the file that is there now.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file, then let go of the lock."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
