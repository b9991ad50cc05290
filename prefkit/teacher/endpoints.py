"""The teacher's endpoints: one or more OpenAI-compatible base URLs behind one job.

Each endpoint has its own aiohttp session (keep-alive connections on the uvloop event loop, through the proxy
HTTP(S)_PROXY names for it, https with the CA rules the SDK uses) and its own concurrency limit. aiohttp is the
one HTTP stack for completions: a hand-written HTTP/1.1 client measured about 0.1 ms of CPU less a request,
which did not pay for the protocol code (and its security surface) it kept; `benchmarks/generate_throughput.py
--compare` measures both side by side (docs/benchmarks.md). A request goes to the endpoint with the least load: the
requests it has in flight, weighted by how often it has been failing lately. An endpoint that fails
`rest_after` times in a row is rested (5 s, doubling up to 2 min each time it is rested again), then gets
requests again (unless every endpoint is resting). A server's `x-ratelimit-remaining-*` /
`x-ratelimit-reset-*` headers (OpenAI's, and any proxy that copies them) hold requests back until the
window resets, before the server has to answer 429.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import re
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from prefkit.privacy import redact_url

# OpenAI writes reset times as Go durations: "1s", "6m0s", "20ms", "1h2m3.5s".
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|s|m|h|d)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # one answer's body, decompressed: a gzip bomb stops here
HEALTH_WEIGHT = 0.2  # how fast the failing estimate follows the latest outcomes
REST_FIRST, REST_MAX = 5.0, 120.0


def parse_duration(text: str | None) -> float | None:
    """Seconds in a rate-limit reset header ("6m0s", "20ms", "1.5", ...); None when it cannot be read."""
    if not text:
        return None
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNIT[unit] for number, unit in parts)


def _int(text: str | None) -> int | None:
    try:
        return int(float(text)) if text is not None else None
    except ValueError:
        return None


@dataclass
class Window:
    """What a server said about one rate limit (requests or tokens): how much is left until when."""

    left: float | None = None
    limit: float | None = None
    reset_at: float = 0.0
    span: float = 1.0  # how long the server's last window had left when it said so: the next one's guess

    def allows(self, amount: float, now: float) -> float:
        """0 when `amount` may be spent now, else the time at which the window resets."""
        if self.left is None or now >= self.reset_at:
            return 0.0
        return 0.0 if self.left >= amount else self.reset_at

    def spend(self, amount: float, now: float) -> None:
        """Count a request sent; after a reset the window starts full again (when the limit is known)."""
        if self.left is None:
            return
        if now >= self.reset_at:
            self.left = self.limit
            if self.left is None:
                return
            # A guess until the next header says when this window ends; never "never", or answers that come
            # without headers (errors from a proxy) would hold the endpoint for good.
            self.reset_at = now + self.span
        self.left -= amount

    def heard(self, left: int | None, limit: int | None, reset: float | None, now: float, unanswered: float) -> None:
        """A response's headers. Requests still unanswered may not be counted in `left` yet, so they are taken
        off it; within one window the smaller estimate wins (answers can arrive out of order)."""
        if left is None:
            return
        if limit is not None:
            self.limit = limit
        estimate = left - unanswered
        if reset is not None:
            self.span = max(reset, 0.001)
        reset_at = now + self.span if reset is None else now + reset
        same_window = self.left is not None and now < self.reset_at and reset_at <= self.reset_at + 0.05
        self.left = min(self.left, estimate) if same_window else estimate
        self.reset_at = reset_at


@dataclass
class EndpointStats:
    """Per-endpoint figures for the summary."""

    requests: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    rests: int = 0
    held: int = 0  # times its rate-limit headers held a request back

    def as_dict(self, url: str) -> dict:
        """JSON-able view with the mean and 95th percentile latency of answered requests."""
        ordered = sorted(self.latencies)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else None
        return {
            "url": url,
            "requests": self.requests,
            "ok": self.ok,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "mean_latency_s": round(sum(ordered) / len(ordered), 4) if ordered else None,
            "p95_latency_s": round(p95, 4) if p95 is not None else None,
            "rests": self.rests,
            "rate_limit_holds": self.held,
        }


class Endpoint:
    """One base URL: its HTTP session, in-flight count, failing estimate, rest and rate-limit state."""

    def __init__(
        self,
        url: str,
        concurrency: int,
        headers: Mapping[str, str],
        timeout: float,
        rest_after: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url = url.rstrip("/")
        self.headers = dict(headers)
        self.shown = redact_url(url)
        self.concurrency = concurrency
        self.rest_after = rest_after
        self.clock = clock
        self.timeout = timeout
        self.in_flight = 0
        self.health = 1.0
        self.failures_in_row = 0
        self.rested_until = 0.0
        self.requests_window = Window()
        self.tokens_window = Window()
        self.stats = EndpointStats()
        self._session = None
        self._base = self.url
        self._proxy = _env_proxy(self.url)
        self._targets: dict = {}

    def ready_at(self, now: float, tokens: float, resting: bool = True) -> float:
        """0 when a request may go now; else when it may (inf: only when a request in flight ends). `resting`
        false: its rest is ignored (every endpoint is resting, so waiting helps nobody)."""
        if resting and now < self.rested_until:
            return self.rested_until
        if self.in_flight >= self.concurrency:
            return math.inf
        return max(self.requests_window.allows(1, now), self.tokens_window.allows(tokens, now))

    def load(self) -> float:
        """Lower is better: requests in flight, made heavier by recent failures."""
        return (self.in_flight + 1) / max(self.health, 0.05)

    def sent(self, tokens: float, now: float) -> None:
        """A request leaves for this endpoint."""
        self.in_flight += 1
        self.stats.requests += 1
        self.requests_window.spend(1, now)
        self.tokens_window.spend(tokens, now)

    def finished(self, failure: str | None, latency: float, headers: Mapping[str, str] | None) -> None:
        """A request ended: `failure` names what went wrong with the endpoint (None: it answered)."""
        now = self.clock()
        self.in_flight -= 1
        if headers is not None:
            self._heard(headers, now)
        if failure is None:
            self.stats.ok += 1
            self.stats.latencies.append(latency)
            self.health += HEALTH_WEIGHT * (1.0 - self.health)
            self.failures_in_row = 0
            return
        self.stats.errors[failure] = self.stats.errors.get(failure, 0) + 1
        if failure == "429":
            return  # the server is busy, not broken: its headers and Retry-After pace the next requests
        self.health -= HEALTH_WEIGHT * self.health
        self.failures_in_row += 1
        if self.failures_in_row >= self.rest_after:
            self.stats.rests += 1
            self.rested_until = now + min(REST_MAX, REST_FIRST * 2 ** (self.stats.rests - 1))
            self.failures_in_row = 0

    def _heard(self, headers: Mapping[str, str], now: float) -> None:
        if "x-ratelimit-remaining-requests" not in headers and "x-ratelimit-remaining-tokens" not in headers:
            return
        for window, kind in ((self.requests_window, "requests"), (self.tokens_window, "tokens")):
            window.heard(
                _int(headers.get(f"x-ratelimit-remaining-{kind}")),
                _int(headers.get(f"x-ratelimit-limit-{kind}")),
                parse_duration(headers.get(f"x-ratelimit-reset-{kind}")),
                now,
                self.in_flight if kind == "requests" else 0,
            )

    async def post(self, path: str, body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        """POST `body` (JSON) to URL + `path`: (status, headers, body). Raises TimeoutError or OSError
        (ConnectionError) when no answer came."""
        import aiohttp

        if self._session is None:
            self._session = self._open_session()
        target = self._targets.get(path)
        if target is None:  # parsed once: yarl's URL parsing is a visible share of a request's CPU
            import yarl

            target = self._targets[path] = yarl.URL(self._base + path, encoded=True)
        try:
            async with self._session.post(target, data=body, proxy=self._proxy) as response:
                return response.status, response.headers, await _bounded_body(response)
        except aiohttp.ClientError as error:  # a connection failure for the caller, which retries it
            raise ConnectionError(f"{type(error).__name__}: {error}") from error

    def _open_session(self):
        """The endpoint's aiohttp session: keep-alive connections up to its concurrency, no cookies, no
        compression asked for, https with the CA rules the SDK uses, a login in the URL as Basic auth."""
        import aiohttp

        self._base, headers = login_headers(self.url, self.headers)
        return aiohttp.ClientSession(
            headers=headers,
            connector=aiohttp.TCPConnector(
                limit=self.concurrency,
                ttl_dns_cache=300,
                ssl=_ssl_context() if self._base.startswith("https:") else None,
            ),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Accept-Encoding",),
        )

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None


class Router:
    """Hands out endpoints: the least loaded one that may take a request now, waiting when none may."""

    def __init__(self, endpoints: list[Endpoint], clock: Callable[[], float] = time.monotonic):
        self.endpoints = endpoints
        self.clock = clock
        self._waiters: deque[asyncio.Future] = deque()

    async def acquire(self, tokens: float = 0.0, avoid: Endpoint | None = None) -> Endpoint:
        """An endpoint with a slot taken for one request; `avoid` (the one that just failed this request) is
        passed over while another may take it."""
        loop = asyncio.get_running_loop()
        held: set[int] = set()
        while True:
            now = self.clock()
            best, wake = None, math.inf
            # A rest steers requests to the other endpoints; when all of them rest (one endpoint alone always
            # does), the requests' own backoff paces the retries instead.
            resting = any(now >= endpoint.rested_until for endpoint in self.endpoints)
            for number, endpoint in enumerate(self.endpoints):
                at = endpoint.ready_at(now, tokens, resting)
                if at > now:
                    wake = min(wake, at)
                    if at < math.inf and (now >= endpoint.rested_until or not resting):
                        held.add(number)  # free, but its rate-limit window is spent
                elif best is None or _better(endpoint, best, avoid):
                    best = endpoint
            if best is not None:
                for number in held:
                    self.endpoints[number].stats.held += 1
                best.sent(tokens, now)
                return best
            waiter = loop.create_future()
            self._waiters.append(waiter)
            timer = loop.call_later(wake - now, _wake, waiter) if wake < math.inf else None
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_next()  # the wake-up this waiter got goes to the next one
                raise
            finally:
                if timer is not None:
                    timer.cancel()

    def release(self, endpoint: Endpoint, failure: str | None, latency: float, headers=None) -> None:
        """Give the slot back with what happened; wakes one waiting request."""
        endpoint.finished(failure, latency, headers)
        self._wake_next()

    def _wake_next(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def summary(self) -> list[dict]:
        """Requests, errors and latency per endpoint."""
        return [endpoint.stats.as_dict(endpoint.shown) for endpoint in self.endpoints]

    async def close(self) -> None:
        """Close every endpoint's connections."""
        await asyncio.gather(*(endpoint.close() for endpoint in self.endpoints))


def _env_proxy(url: str) -> str | None:
    """The proxy HTTP(S)_PROXY / NO_PROXY name for `url`, as the SDK (httpx) reads them: looked up once here
    (aiohttp's trust_env would look it up, and ~/.netrc, in a thread on every request)."""
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(url)
    proxy = getproxies().get(parts.scheme)
    return None if not proxy or proxy_bypass(parts.hostname or "") else proxy


def _better(candidate: Endpoint, best: Endpoint, avoid: Endpoint | None) -> bool:
    if (candidate is avoid) != (best is avoid):
        return best is avoid
    return candidate.load() < best.load()


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _bounded_body(response) -> bytes:
    """The body, decompressed, read in linear time and refused past `MAX_RESPONSE_BYTES` (a ConnectionError: the
    teacher retries it as a failed exchange)."""
    declared = response.content_length
    if declared is not None and declared > MAX_RESPONSE_BYTES:
        raise ConnectionError(f"a response of {declared} bytes (more than {MAX_RESPONSE_BYTES})")
    chunks, size = [], 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ConnectionError(f"a response of more than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def login_headers(url: str, headers: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The URL without a user:password part, and the headers to send: as httpx (the SDK) does, a login in the
    URL is the Authorization (Basic), in place of the API key's."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, dict(headers)
    login = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    kept = {name: value for name, value in headers.items() if name.lower() != "authorization"}
    kept["Authorization"] = "Basic " + base64.b64encode(login).decode()
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])), kept


def _ssl_context() -> ssl.SSLContext:
    """Certificates as the SDK's httpx finds them: SSL_CERT_FILE / SSL_CERT_DIR, else certifi's bundle."""
    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE"), capath=os.environ.get("SSL_CERT_DIR"))
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())
