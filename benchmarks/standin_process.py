"""The stand-in teacher as a separate process, for the benchmarks that measure a client against it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def standin(*flags: str) -> Iterator[str]:
    """`python -m prefkit.testing.standin FLAGS` on a free port until the block ends; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = subprocess.Popen(
        [sys.executable, "-m", "prefkit.testing.standin", "--port", str(port), *flags], stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("stand-in server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait()
