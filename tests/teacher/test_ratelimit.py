"""Requests- and tokens-per-minute limits, measured against a fake clock (no real waiting)."""

from __future__ import annotations

import asyncio

import pytest

from prefkit.teacher.ratelimit import TokenBucket


class FakeClock:
    """Time that moves only when the bucket sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def take_all(bucket: TokenBucket, amounts: list[float]) -> None:
    async def go():
        for amount in amounts:
            await bucket.take(amount)

    asyncio.run(go())


def test_requests_per_minute_allow_a_burst_then_pace_at_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(60, clock=clock, sleep=clock.sleep)
    take_all(bucket, [1] * 60)
    assert clock.now == 1000.0  # a minute's worth goes at once
    take_all(bucket, [1] * 30)
    assert clock.now - 1000.0 == pytest.approx(30.0)  # then one a second
    assert max(clock.slept) == pytest.approx(1.0)


def test_tokens_per_minute_wait_in_proportion_to_the_amount():
    clock = FakeClock()
    bucket = TokenBucket(6000, clock=clock, sleep=clock.sleep)  # 100 tokens a second
    take_all(bucket, [6000, 500])
    assert clock.now - 1000.0 == pytest.approx(5.0)
    take_all(bucket, [50])
    assert clock.now - 1000.0 == pytest.approx(5.5)


def test_time_that_passed_refills_the_bucket_up_to_its_capacity():
    clock = FakeClock()
    bucket = TokenBucket(60, clock=clock, sleep=clock.sleep)
    take_all(bucket, [60])
    clock.now += 3600  # an idle hour earns at most one minute's worth
    take_all(bucket, [60])
    assert clock.slept == []
    take_all(bucket, [1])
    assert clock.slept == [pytest.approx(1.0)]


def test_a_request_larger_than_a_minute_waits_for_a_full_bucket_not_forever():
    clock = FakeClock()
    bucket = TokenBucket(100, clock=clock, sleep=clock.sleep)
    take_all(bucket, [10])
    take_all(bucket, [5000])  # clipped to the capacity
    assert clock.now - 1000.0 == pytest.approx(6.0)
