"""Several teacher endpoints behind one job: least-loaded routing, resting a failing endpoint, the servers'
rate-limit headers, and an endpoint's handling of URLs."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from prefkit.jsonl import write_jsonl
from prefkit.teacher.client import Teacher, TeacherConfig
from prefkit.teacher.endpoints import Endpoint, Router, Window, login_headers, parse_duration
from prefkit.testing.standin import Behaviour, StandinServer
from tests.generate_helpers import lines, run, write_recipe


@pytest.mark.parametrize(
    "text,seconds",
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5), ("250us", 0.00025)],
)
def test_reset_durations_as_openai_writes_them(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "5 minutes", "1s garbage"])
def test_unreadable_reset_durations_are_none(text):
    assert parse_duration(text) is None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def endpoint(clock: Clock, concurrency: int = 4, url: str = "http://127.0.0.1:1/v1") -> Endpoint:
    return Endpoint(url, concurrency, {}, 1.0, rest_after=3, clock=clock)


def test_requests_go_to_the_endpoint_with_fewest_in_flight():
    clock = Clock()
    router = Router([endpoint(clock), endpoint(clock)], clock)

    async def take(count: int) -> list[int]:
        return [router.endpoints.index(await router.acquire()) for _ in range(count)]

    assert asyncio.run(take(4)) == [0, 1, 0, 1]
    router.release(router.endpoints[1], None, 0.1)
    assert router.endpoints[1].in_flight == 1
    assert asyncio.run(take(1)) == [1]  # the one with a free slot now


def test_a_failing_endpoint_is_weighted_down_then_rested_while_another_can_serve():
    clock = Clock()
    good, bad = endpoint(clock), endpoint(clock)
    router = Router([good, bad], clock)
    for _ in range(2):  # two failures: not rested yet, but heavier than the healthy one at equal load
        bad.in_flight += 1
        router.release(bad, "500", 0.1)
    assert bad.rested_until == 0 and bad.load() > good.load()
    bad.in_flight += 1
    router.release(bad, "connection", 0.1)
    assert bad.rested_until == pytest.approx(clock.now + 5.0) and bad.stats.rests == 1
    chosen = [asyncio.run(router.acquire()) for _ in range(4)]
    assert all(e is good for e in chosen)  # the rested one gets nothing while the other has room
    clock.now += 5.0
    for e in chosen:
        router.release(e, None, 0.1)
    assert asyncio.run(router.acquire()) in (good, bad) and bad.ready_at(clock.now, 0) == 0


def test_a_lone_endpoint_is_never_rested_away_from_its_own_retries():
    clock = Clock()
    only = endpoint(clock)
    router = Router([only], clock)
    for _ in range(3):
        only.in_flight += 1
        router.release(only, "500", 0.1)
    assert only.rested_until > clock.now
    assert asyncio.run(router.acquire()) is only  # every endpoint rests: the backoff paces the retries instead


def test_a_retry_avoids_the_endpoint_that_just_failed_it():
    clock = Clock()
    first, second = endpoint(clock), endpoint(clock)
    router = Router([first, second], clock)
    assert asyncio.run(router.acquire(avoid=first)) is second


def test_the_window_holds_requests_once_the_server_says_none_are_left():
    window = Window()
    window.heard(left=2, limit=10, reset=1.5, now=0.0, unanswered=0)
    assert window.allows(1, 0.1) == 0.0
    window.spend(1, 0.1)
    window.spend(1, 0.2)
    assert window.allows(1, 0.3) == pytest.approx(1.5)  # spent: wait for the reset
    assert window.allows(1, 1.6) == 0.0
    window.spend(1, 1.6)  # a new window starts full (the limit was said)
    assert window.left == 9
    # Requests still unanswered are taken off what a later (or out-of-order) answer reports.
    window.heard(left=5, limit=10, reset=1.0, now=1.7, unanswered=3)
    assert window.left == 2


def test_login_in_the_url_becomes_basic_auth_and_leaves_the_url():
    key = {"Authorization": "Bearer sk-x", "Accept": "application/json"}
    url, headers = login_headers("http://ann:p%40ss@host:8000/v1", key)
    assert url == "http://host:8000/v1"
    assert headers == {"Accept": "application/json", "Authorization": "Basic YW5uOnBAc3M="}  # ann:p@ss
    assert login_headers("http://host/v1", key) == ("http://host/v1", key)


def test_base_url_lists_are_checked():
    assert TeacherConfig(base_url=["http://a/v1", "http://b/v1"]).urls == ["http://a/v1", "http://b/v1"]
    for bad, said in (([], "empty list"), (["http://a/v1", "http://a/v1"], "same URL twice"), (["ftp://x"], "http")):
        with pytest.raises(ValueError, match=said):
            TeacherConfig(base_url=bad)


def test_rate_limit_headers_slow_the_client_before_the_server_must_refuse():
    behaviour = Behaviour(rate_window=(10, 0.4), latency=0.01)
    with StandinServer(behaviour) as server:
        config = TeacherConfig(base_url=server.url, model="teacher-model", concurrency=6, backoff_initial=0.01)

        async def ask() -> dict:
            async with Teacher(config) as teacher:
                prompts = [[{"role": "user", "content": f"q{i}"}] for i in range(40)]
                await asyncio.gather(*(teacher.complete(p) for p in prompts))
                return teacher.router.summary()[0]

        summary = asyncio.run(ask())
        assert server.stats.outcomes["ok"] == 40
        assert server.stats.outcomes["429"] == 0  # 40 requests through a 10-per-0.4 s window, none refused
        assert summary["rate_limit_holds"] > 0  # because the headers held requests back

        # The same window refuses a client that does not listen: the limit is real.
        async def burst() -> Counter:
            import aiohttp

            body = json.dumps({"model": "teacher-model", "messages": [{"role": "user", "content": "x"}]})
            async with aiohttp.ClientSession() as session:

                async def one() -> int:
                    async with session.post(server.url + "/chat/completions", data=body) as response:
                        return response.status

                return Counter(await asyncio.gather(*(one() for _ in range(30))))

        assert asyncio.run(burst())[429] > 0


def test_three_endpoints_one_failing_half_its_requests(tmp_path, corpus_tasks):
    from tests.conftest import tasks_of

    tasks = tasks_of(corpus_tasks, "alfworld")[:60] + tasks_of(corpus_tasks, "react")[:40]
    write_jsonl(tmp_path / "tasks.jsonl", tasks)
    servers = [
        StandinServer(Behaviour(latency=0.02, seed=1)),
        StandinServer(Behaviour(latency=0.02, seed=2)),
        StandinServer(Behaviour(latency=0.02, error_rate=0.5, seed=3)),
    ]
    for server in servers:
        server.start()
    try:
        urls = [server.url for server in servers]
        recipe = write_recipe(tmp_path / "r.yaml", urls, concurrency=4, max_attempts=8)
        out = tmp_path / "pairs.jsonl"
        result = run("generate", str(tmp_path / "tasks.jsonl"), "--recipe", str(recipe), "--out", str(out), "--json")
    finally:
        for server in servers:
            server.stop()
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    done = [row["meta"]["task_id"] for row in lines(out)]
    skipped = [row["task_id"] for row in lines(tmp_path / "pairs.skipped.jsonl")]
    assert sorted(done + skipped) == sorted(task["id"] for task in tasks)  # every task, none twice
    assert len(done) == len(set(done)) and summary["failed"] == 0
    asked = [server.stats.requests for server in servers]
    assert asked[2] < min(asked[:2])  # the failing endpoint got fewer requests
    assert servers[2].stats.outcomes["500"] > 0
    by_url = {endpoint["url"]: endpoint for endpoint in summary["endpoints"]}
    assert [by_url[url]["requests"] for url in urls] == [s.stats.requests - 1 for s in servers]  # minus /models
    assert by_url[urls[2]]["errors"] == servers[2].stats.outcomes["500"]


def test_a_tokens_window_holds_a_request_that_would_not_fit():
    clock = Clock()
    only = endpoint(clock)
    only._heard({"x-ratelimit-remaining-tokens": "1000", "x-ratelimit-reset-tokens": "2s"}, clock.now)
    assert only.ready_at(clock.now, 600) == 0
    only.sent(600, clock.now)
    assert only.ready_at(clock.now, 600) == pytest.approx(clock.now + 2.0)  # 400 left: wait for the reset
    assert only.ready_at(clock.now, 300) == 0  # a smaller one still fits


def test_a_window_started_without_a_header_still_ends():
    window = Window()
    window.heard(left=1, limit=2, reset=0.5, now=0.0, unanswered=0)
    window.spend(1, 0.1)
    window.spend(1, 0.6)  # a new window, full at the limit; no answer has said when it ends
    window.spend(1, 0.7)
    assert window.allows(1, 0.8) == pytest.approx(1.1)  # spent: held for about the last window's length
    assert window.allows(1, 1.2) == 0.0  # and then let go, even though no header came
