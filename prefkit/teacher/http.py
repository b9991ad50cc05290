"""A lean HTTP/1.1 client for the teacher's chat completions: keep-alive connections, a request header block
built once per endpoint, and responses read straight off the event loop's transport.

Why not a general client: a JSON POST through aiohttp costs about 0.19 ms of CPU here, through the SDK's
httpx about 2 ms; this path about 0.07 ms, which is what lets one process keep several endpoints at high
concurrency busy (`benchmarks/generate_throughput.py`). It does what an OpenAI-compatible API needs: http and
https (the CA bundle the SDK uses: SSL_CERT_FILE / SSL_CERT_DIR, else certifi), Content-Length and chunked
bodies, gzip/deflate if a server compresses unasked, `connection: close`, and a timeout per request. Anything
else goes elsewhere: an endpoint reached through a proxy (HTTP(S)_PROXY) uses aiohttp
(`prefkit/teacher/endpoints.py`); models, files and batches use the `openai` SDK.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import zlib
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

MAX_HEAD = 64 * 1024


class ProtocolError(OSError):
    """The server's answer is not HTTP/1.1 as this client reads it (a connection failure for the caller)."""


class Response:
    """A parsed response: status, headers (lower-case names), body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `send` writes a request and waits for its response."""

    def __init__(self, pool: Pool):
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.head: tuple[int, dict[str, str]] | None = None
        self.body_end: int | None = None  # Content-Length bodies: where the body ends in the buffer
        self.chunked = False
        self.until_close = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, error: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            if self.until_close and self.head is not None:
                try:
                    self._finish(bytes(self.buffer), keep=False)
                except ProtocolError as problem:
                    self.waiter.set_exception(problem)
            else:
                self.waiter.set_exception(ConnectionResetError("the server closed the connection"))

    def eof_received(self) -> bool | None:
        self.closed = True
        return None

    def send(self, data: bytes) -> asyncio.Future:
        self.buffer.clear()
        self.head, self.body_end, self.chunked, self.until_close = None, None, False, False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for: the connection cannot be trusted any more
            self.closed = True
            self.transport.close()
            return
        self.buffer += data
        try:
            self._parse()
        except (ValueError, IndexError, ProtocolError) as error:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(ProtocolError(f"unreadable response ({error})"))
            self.transport.close()

    def _parse(self) -> None:
        if self.head is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    raise ProtocolError("response headers too long")
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            del self.buffer[: end + 4]
            version, _, rest = lines[0].partition(" ")
            if not version.startswith("HTTP/1."):
                raise ProtocolError(f"not an HTTP/1 status line: {lines[0][:40]!r}")
            status = int(rest[:3])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                headers[name] = f"{headers[name]}, {value.strip()}" if name in headers else value.strip()
            self.head = (status, headers)
            if status in (100, 101, 102, 103):  # an interim answer: the real one follows
                self.head = None
                return self._parse()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self.chunked = True
            elif "content-length" in headers:
                self.body_end = int(headers["content-length"])
            elif status in (204, 304):
                self.body_end = 0
            else:
                self.until_close = True
        if self.body_end is not None and len(self.buffer) >= self.body_end:
            body = bytes(self.buffer[: self.body_end])
            del self.buffer[: self.body_end]
            self._finish(body, keep=True)
        elif self.chunked:
            self._parse_chunks()

    def _parse_chunks(self) -> None:
        body, at = bytearray(), 0
        while True:
            line_end = self.buffer.find(b"\r\n", at)
            if line_end < 0:
                return
            size = int(bytes(self.buffer[at:line_end]).split(b";")[0].strip() or b"0", 16)
            if size == 0:  # the last chunk; trailers (if any) end with an empty line
                if self.buffer.find(b"\r\n\r\n", line_end) < 0:
                    return
                del self.buffer[:]
                self._finish(bytes(body), keep=True)
                return
            start, stop = line_end + 2, line_end + 2 + size
            if len(self.buffer) < stop + 2:
                return
            body += self.buffer[start:stop]
            at = stop + 2

    def _finish(self, body: bytes, keep: bool) -> None:
        status, headers = self.head
        encoding = headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            try:
                body = zlib.decompress(body, 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS)
            except zlib.error as error:
                raise ProtocolError(f"a {encoding} body that does not decompress ({error})") from None
        keep = keep and not self.closed and headers.get("connection", "").lower() != "close"
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(status, headers, body))
        if keep:
            self.pool.idle.append(self)
        else:
            self.transport.close()


class Pool:
    """Keep-alive connections to one base URL, and the request it posts there."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float):
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.path = parts.path.rstrip("/")
        self.timeout = timeout
        self.idle: list[_Connection] = []
        self._ssl = _ssl_context() if self.https else None
        lines = [f"Host: {parts.netloc.rpartition('@')[2]}"]
        lines += [f"{name}: {value}" for name, value in login_headers(url, headers)[1].items()]
        self._head = "\r\n".join(lines).encode("latin-1")
        self._targets: dict[str, bytes] = {}

    async def post(self, path: str, body: bytes) -> Response:
        """POST `body` to the base URL + `path`; raises TimeoutError, OSError (refused, reset, unreadable)."""
        target = self._targets.get(path)
        if target is None:
            target = self._targets[path] = f"POST {self.path}{path} HTTP/1.1\r\n".encode("latin-1")
        request = b"%s%s\r\nContent-Length: %d\r\n\r\n%s" % (target, self._head, len(body), body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        connection = await self._connection(deadline)
        waiter = connection.send(request)
        timer = loop.call_at(deadline, _expire, waiter, connection)
        try:
            return await waiter
        except asyncio.CancelledError:
            connection.transport.close()  # its answer may still come: never hand it to the next request
            raise
        finally:
            timer.cancel()

    async def _connection(self, deadline: float) -> _Connection:
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed and not connection.transport.is_closing():
                return connection
        loop = asyncio.get_running_loop()
        opening = loop.create_connection(
            lambda: _Connection(self),
            self.host,
            self.port,
            ssl=self._ssl,
            server_hostname=self.host if self.https else None,
        )
        _, connection = await asyncio.wait_for(opening, max(0.0, deadline - loop.time()))
        return connection

    def close(self) -> None:
        """Close every idle connection (those in use close when their request ends or times out)."""
        for connection in self.idle:
            connection.transport.close()
        self.idle.clear()


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


def _expire(waiter: asyncio.Future, connection: _Connection) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
        connection.transport.close()  # a late answer must not be read as the next request's


def _ssl_context() -> ssl.SSLContext:
    """Certificates as the SDK's httpx finds them: SSL_CERT_FILE / SSL_CERT_DIR, else certifi's bundle."""
    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE"), capath=os.environ.get("SSL_CERT_DIR"))
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())
