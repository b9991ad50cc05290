"""An endpoint's HTTP (aiohttp on uvloop, `prefkit/teacher/endpoints.py`) against scripted servers: keep-alive,
chunked, compressed and close-delimited bodies, connection: close, timeouts, broken answers (a connection
failure the teacher retries), https with the SDK's CA rules, a login in the URL, and a proxy."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import subprocess
import threading
from collections.abc import Callable

import pytest

from prefkit.eventloop import run as run_loop
from prefkit.teacher.client import Teacher, TeacherConfig
from prefkit.teacher.endpoints import Endpoint
from prefkit.testing.standin import StandinServer


class Scripted:
    """A TCP server on 127.0.0.1 that answers each request with `answer(request bytes)` (None: say nothing);
    counts connections and keeps the requests it read."""

    def __init__(self, answer: Callable[[bytes], bytes | None]):
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        data = b""
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                data += chunk
                while b"\r\n\r\n" in data:
                    head, _, rest = data.partition(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    if len(rest) < length:
                        break
                    request, data = head + b"\r\n\r\n" + rest[:length], rest[length:]
                    self.requests.append(request)
                    reply = self.answer(request)
                    if reply is None:
                        continue
                    for piece in reply if isinstance(reply, list) else [reply]:
                        if piece == b"CLOSE":  # hang up here
                            return
                        conn.sendall(piece)

    def close(self) -> None:
        self.sock.close()


def http(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = "\r\n".join([f"HTTP/1.1 {status}", *headers])
    return head.encode() + b"\r\n\r\n" + body


class Answer:
    """What one POST came back with."""

    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, {k.lower(): v for k, v in headers.items()}, body


def post(url: str, timeout: float = 2.0, body: bytes = b"{}", times: int = 1, headers=None) -> list:
    async def go() -> list:
        endpoint = Endpoint(url, 4, headers or {"Content-Type": "application/json"}, timeout)
        try:
            return [Answer(*(await endpoint.post("/chat/completions", body))) for _ in range(times)]
        finally:
            await endpoint.close()

    return run_loop(go())


def test_keep_alive_reuses_one_connection_and_sends_a_well_formed_request():
    server = Scripted(lambda request: http(b'{"ok": 1}', "Content-Length: 9"))
    answers = post(server.url, times=3, body=b'{"a":1}')
    assert [a.status for a in answers] == [200, 200, 200] and answers[0].body == b'{"ok": 1}'
    assert server.connections == 1
    first = server.requests[0].decode()
    assert first.startswith("POST /v1/chat/completions HTTP/1.1\r\n") and "Host: 127.0.0.1:" in first
    assert "Content-Length: 7\r\n" in first and first.endswith('\r\n\r\n{"a":1}')


def test_chunked_bodies_with_trailers_arriving_in_pieces():
    pieces = [
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Ratelimit-Remaining-Requests: 7\r\n\r\n4\r\n{"a"',
        b"\r\n",
        b"3;ext=1\r\n: 1\r\n1\r\n}\r\n0\r\nX-Trailer: y\r\n",
        b"\r\n",
    ]
    server = Scripted(lambda request: pieces)
    first, second = post(server.url, times=2)
    assert first.body == b'{"a": 1}' and first.headers["x-ratelimit-remaining-requests"] == "7"
    assert second.body == b'{"a": 1}' and server.connections == 1


def test_a_compressed_answer_is_decompressed_although_none_was_asked_for():
    packed = gzip.compress(b'{"choices": []}')
    server = Scripted(lambda request: http(packed, f"Content-Length: {len(packed)}", "Content-Encoding: gzip"))
    assert post(server.url)[0].body == b'{"choices": []}'
    assert b"accept-encoding" not in server.requests[0].lower()


def test_connection_close_and_close_delimited_bodies_open_a_new_connection():
    server = Scripted(lambda request: [http(b'{"x": 2}', "Connection: close"), b"CLOSE"])
    answers = post(server.url, times=2)
    assert [a.body for a in answers] == [b'{"x": 2}', b'{"x": 2}'] and server.connections == 2


def test_a_server_that_never_answers_times_out():
    server = Scripted(lambda request: None)
    with pytest.raises(TimeoutError):
        post(server.url, timeout=0.3)


def test_a_server_that_hangs_up_mid_answer_is_a_connection_error():
    server = Scripted(lambda request: [b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"half', b"CLOSE"])
    with pytest.raises(ConnectionError):  # an OSError: the teacher retries it as a connection failure
        post(server.url)


def test_an_answer_that_is_not_http_is_a_connection_error():
    server = Scripted(lambda request: b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(ConnectionError):
        post(server.url)


def test_a_login_in_the_url_is_sent_as_basic_auth_instead_of_the_key():
    server = Scripted(lambda request: http(b"{}", "Content-Length: 2"))
    login_url = server.url.replace("http://", "http://ann:p%40ss@")
    post(login_url, headers={"Authorization": "Bearer sk-secret"})
    sent = server.requests[0].decode()
    assert "Authorization: Basic YW5uOnBAc3M=\r\n" in sent and "sk-secret" not in sent
    assert "ann" not in sent.split("\r\n")[1]  # the Host line has no login


@pytest.fixture()
def certificate(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def test_https_trusts_what_ssl_cert_file_names_and_refuses_what_it_does_not(certificate, monkeypatch):
    import ssl

    key, cert = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with StandinServer(ssl_context=context) as server:
        assert server.url.startswith("https://")
        config = TeacherConfig(base_url=server.url, model="teacher-model", max_attempts=1)

        async def ask() -> list:
            async with Teacher(config) as teacher:
                return await teacher.complete([{"role": "user", "content": "hi"}])

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert asyncio.run(ask())[0].message["content"]
        monkeypatch.delenv("SSL_CERT_FILE")
        from prefkit.errors import TeacherError

        with pytest.raises(TeacherError, match="connection to .* failed"):  # certifi does not know this cert
            asyncio.run(ask())


def test_an_endpoint_behind_a_proxy_goes_through_it(monkeypatch):
    with StandinServer() as proxy:  # the stand-in reads an absolute-form request line as a proxy would
        monkeypatch.setenv("HTTP_PROXY", proxy.url.removesuffix("/v1"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        config = TeacherConfig(base_url="http://teacher.invalid:8000/v1", model="teacher-model", max_attempts=1)

        async def ask() -> list:
            async with Teacher(config) as teacher:
                return await teacher.complete([{"role": "user", "content": "through the proxy"}])

        assert asyncio.run(ask())[0].message["content"]
    sent = proxy.stats.bodies[0]
    assert json.dumps(sent["messages"]).count("through the proxy") == 1


def test_a_body_past_the_cap_is_refused_compressed_or_not(monkeypatch):
    """A gzip bomb is cut where its decompressed size passes the cap, as is a plain body; the teacher retries
    either as a failed exchange."""
    from prefkit.teacher import endpoints

    monkeypatch.setattr(endpoints, "MAX_RESPONSE_BYTES", 4096)
    bomb = gzip.compress(b"0" * 100_000)
    server = Scripted(lambda request: http(bomb, f"Content-Length: {len(bomb)}", "Content-Encoding: gzip"))
    with pytest.raises(ConnectionError, match="more than 4096"):
        post(server.url)
    server = Scripted(lambda request: http(b"1" * 5000, "Content-Length: 5000"))
    with pytest.raises(ConnectionError, match="5000 bytes"):
        post(server.url)
    server = Scripted(lambda request: http(b"1" * 4000, "Content-Length: 4000"))
    assert len(post(server.url)[0].body) == 4000
