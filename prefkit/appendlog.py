"""Append-only JSON Lines with crash recovery: each finished record is one flushed line, and a last line torn
by a crash (even kill -9) is detected and set aside on the next open, never trusted and never lost. Any other
unreadable line means the file is not this log (or was edited): it stops with the line, nothing is moved."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import IO

from prefkit.errors import InputError
from prefkit.jsonl import dumps
from prefkit.outputs import side_file

log = logging.getLogger(__name__)


class AppendLog:
    """An append-only JSONL file; `rows` holds what it already contained when opened."""

    def __init__(self, path: str | Path, fsync: bool = False):
        self.path = Path(path)
        self.fsync = fsync
        self.rows: list[dict] = []
        self.repaired: str | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._recover()
        self._handle: IO[bytes] = self.path.open("ab", buffering=0)

    def _recover(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        lines = data.splitlines(keepends=True)
        good_end = 0
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                good_end += len(line)
                continue
            reason = _unreadable(line)
            if reason is None:
                self.rows.append(json.loads(line))
                good_end += len(line)
                continue
            if number == len(lines) and line.lstrip().startswith(b"{") and not line.endswith(b"\n"):
                break  # the one thing a crash leaves: the start of a record, cut off
            raise InputError(
                f"line {number} is {reason}; only a record cut off at the very end is repaired automatically. "
                "Fix or remove that line, or write to a new output",
                str(self.path),
                number,
            )
        if good_end < len(data):
            torn = side_file(self.path, "torn")
            with torn.open("ab") as handle:
                handle.write(data[good_end:] + b"\n")
            with self.path.open("r+b") as handle:
                handle.truncate(good_end)
            self.repaired = f"{len(data) - good_end} bytes after line {len(self.rows)} were incomplete; moved to {torn}"
            log.warning("%s: %s", self.path, self.repaired)
        elif data and not data.endswith(b"\n"):
            with self.path.open("ab") as handle:  # a whole last record without its newline (an edited file)
                handle.write(b"\n")

    def append(self, row: dict) -> None:
        """Write one record as one line straight to the OS (fsync too when asked); a write that fails (a full
        disk) is cut off again, so the file never ends in half a record."""
        data = (dumps(row) + "\n").encode("utf-8")
        start = self._handle.seek(0, os.SEEK_END)
        try:
            written = 0
            while written < len(data):
                written += self._handle.write(data[written:])
            if self.fsync:
                os.fsync(self._handle.fileno())
        except OSError as error:
            with contextlib.suppress(OSError):
                self._handle.truncate(start)
            error.filename = error.filename or str(self.path)
            raise

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _unreadable(line: bytes) -> str | None:
    """Why a line is not one JSON record (None when it is one)."""
    try:
        row = json.loads(line)
    except UnicodeDecodeError:
        return "not valid UTF-8"
    except json.JSONDecodeError as error:
        return f"not JSON ({error.msg} at column {error.colno})"
    return None if isinstance(row, dict) else f"JSON but not an object ({type(row).__name__})"
