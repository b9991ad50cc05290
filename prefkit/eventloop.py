"""`asyncio.run` on uvloop's event loop where uvloop is installed (Linux and macOS; a core dependency there):
its loop and transports are written in C, which takes about a tenth of a millisecond of CPU off every teacher
request. Elsewhere the standard loop runs the same code."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end on a new event loop (uvloop's when available) and return its result."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)  # asyncio.run's clean-up, on a uvloop loop, on every Python prefkit supports
