"""Requests-per-minute and tokens-per-minute limits as async token buckets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """Allows `rate_per_minute` units a minute, in bursts of up to a minute's worth. `clock` and `sleep` are
    the time source and the wait (a test passes a fake clock)."""

    def __init__(
        self,
        rate_per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.rate = rate_per_minute / 60.0
        self.capacity = rate_per_minute
        self.tokens = rate_per_minute
        self.clock, self.sleep = clock, sleep
        self.updated = clock()
        self._lock = asyncio.Lock()

    async def take(self, amount: float = 1.0) -> None:
        """Wait until `amount` units are available, then spend them."""
        amount = min(amount, self.capacity)
        async with self._lock:
            while True:
                now = self.clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= amount:
                    self.tokens -= amount
                    return
                await self.sleep((amount - self.tokens) / self.rate)
