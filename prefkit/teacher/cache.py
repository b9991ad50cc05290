"""An on-disk (SQLite) cache of teacher answers, keyed by what was asked, so nothing is paid for twice."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefkit.errors import InputError
from prefkit.records import content_hash


def cache_key(
    model: str, messages: list[dict], sampling: dict[str, Any], sample_index: int, tools: list[dict] | None = None
) -> str:
    """The identity of one answer: model, messages, sampling settings (without `n`) and sample index."""
    settings = {k: v for k, v in sampling.items() if k != "n" and v is not None}
    return content_hash(model, messages, settings, sample_index, tools or [], length=40)


class ResponseCache:
    """SQLite table key -> answer JSON; every put is committed at once (a kill -9 loses nothing paid for)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        with self._errors():
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT NOT NULL, "
                "created REAL DEFAULT (julianday('now')))"
            )
            self._db.execute("SELECT key, answer FROM answers LIMIT 1").fetchall()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite's errors as prefkit's: a full disk is the OSError it is, anything else a broken cache file."""
        try:
            yield
        except sqlite3.Error as error:
            if "full" in str(error):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path)) from None
            raise InputError(
                f"not a usable answer cache ({error}); move it aside to start a new one (its answers would be "
                "asked for again)",
                str(self.path),
            ) from None

    def get(self, key: str, count: bool = True) -> dict | None:
        """The cached answer, or None (counted as a hit or a miss unless `count` is false)."""
        with self._errors():
            row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += count
            return None
        try:
            answer = json.loads(row[0])
        except ValueError:
            raise InputError(f"the cached answer {key} is not JSON; move the cache aside", str(self.path)) from None
        self.hits += count
        return answer

    def put(self, key: str, answer: dict) -> bool:
        """Store an answer (an existing one is kept: the first answer paid for wins); whether it was new."""
        with self._errors():
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO answers (key, answer) VALUES (?, ?)", (key, json.dumps(answer))
            )
        return cursor.rowcount == 1

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        """Close the database."""
        self._db.close()
