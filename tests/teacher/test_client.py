"""The teacher client's reading of a server's Retry-After: seconds, a milliseconds header, an HTTP date."""

from __future__ import annotations

import email.utils

import pytest

from prefkit.teacher import client


@pytest.mark.parametrize(
    "headers,seconds",
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),  # the finer one wins
        ({"retry-after-ms": "soon", "retry-after": "2"}, 2.0),  # an unreadable one is passed over
        ({"retry-after": "-4"}, 0.0),
    ],
)
def test_retry_after_seconds_and_milliseconds(headers, seconds):
    assert client._retry_after(headers) == pytest.approx(seconds)


def test_retry_after_as_an_http_date(monkeypatch):
    now = 1_800_000_000.0
    monkeypatch.setattr(client.time, "time", lambda: now)
    later = email.utils.formatdate(now + 7, usegmt=True)
    assert client._retry_after({"retry-after": later}) == pytest.approx(7.0)
    earlier = email.utils.formatdate(now - 60, usegmt=True)
    assert client._retry_after({"retry-after": earlier}) == 0.0


@pytest.mark.parametrize("headers", [{}, {"retry-after": "tomorrow-ish"}, {"retry-after": ""}])
def test_no_usable_retry_after_leaves_the_backoff_to_decide(headers):
    assert client._retry_after(headers) is None


def test_an_answer_without_headers_has_no_retry_after():
    assert client._retry_after(None) is None


def test_the_same_request_wanted_twice_at_once_is_asked_once():
    import asyncio

    from prefkit.teacher.client import Teacher, TeacherConfig
    from prefkit.testing.standin import Behaviour, StandinServer

    with StandinServer(Behaviour(latency=0.05)) as server:
        config = TeacherConfig(base_url=server.url, model="teacher-model")

        async def ask() -> list:
            async with Teacher(config) as teacher:
                messages = [{"role": "user", "content": "the same context"}]
                return await asyncio.gather(*(teacher.complete(messages) for _ in range(3)))

        first, second, third = asyncio.run(ask())
    assert server.stats.outcomes["ok"] == 1
    assert first[0].message == second[0].message == third[0].message
    assert [first[0].cached, second[0].cached, third[0].cached] == [False, True, True]  # paid for once
