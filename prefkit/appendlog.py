"""Append-only JSON Lines with crash recovery: each finished record is one flushed line, and a line torn
by a crash (even kill -9) is detected and set aside on the next open, never trusted and never lost."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import IO

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
        self._handle: IO[str] = self.path.open("a", encoding="utf-8")

    def _recover(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good_end = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            self.rows.append(row)
            good_end += len(line)
        if good_end < len(data):
            torn = side_file(self.path, "torn")
            with torn.open("ab") as handle:
                handle.write(data[good_end:] + (b"" if data.endswith(b"\n") else b"\n"))
            with self.path.open("r+b") as handle:
                handle.truncate(good_end)
            self.repaired = f"{len(data) - good_end} bytes after line {len(self.rows)} were incomplete; moved to {torn}"
            log.warning("%s: %s", self.path, self.repaired)

    def append(self, row: dict) -> None:
        """Write one record as one line and flush it to the OS (fsync too when asked)."""
        self._handle.write(dumps(row) + "\n")
        self._handle.flush()
        if self.fsync:
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
