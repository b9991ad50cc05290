"""Servers prefkit starts as child processes (Redis, argilla-server, MariaDB): tied to the parent's life, and
their logs quoted when they fail."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path


def die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies, however it dies."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def log_tail(path: Path, lines: int = 5) -> str:
    """The last non-empty lines of a log, on one line (for an error message)."""
    with contextlib.suppress(OSError):
        text = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        return " | ".join(text[-lines:])
    return ""
