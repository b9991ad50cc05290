"""`prefkit review serve` as a user runs it: a child process that starts Redis and the server, writes private
credentials, and stops everything on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from prefkit.errors import ServerError
from prefkit.review.serve import ArgillaServer, free_port

pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_serve_starts_with_generated_credentials_and_stops_cleanly_on_sigterm(tmp_path):
    data_dir, port = tmp_path / "argilla", free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "prefkit"),
            "review",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline, output = time.monotonic() + 240, ""
        while "Argilla is up" not in output:
            line = process.stdout.readline()
            assert line or process.poll() is None, output
            output += line
            assert time.monotonic() < deadline, output
        credentials = json.loads((data_dir / "credentials.json").read_text())
        assert stat.S_IMODE((data_dir / "credentials.json").stat().st_mode) == 0o600
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert credentials["url"] == f"http://127.0.0.1:{port}"
        assert credentials["api_key"] not in output and credentials["password"] not in output
        request = urllib.request.Request(
            f"{credentials['url']}/api/v1/me", headers={"X-Argilla-Api-Key": credentials["api_key"]}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["role"] == "owner"
        children = _children(process.pid)
        assert len(children) == 2  # Redis and the server
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert not any(_alive(pid) for pid in children)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    assert not (data_dir / "tmp").exists()  # the UI copies Argilla leaves behind are gone


def test_second_server_on_the_same_data_dir_or_port_is_refused(argilla_server, tmp_path):
    with pytest.raises(ServerError, match="another `prefkit review serve` is running"):
        ArgillaServer(argilla_server.data_dir, port=free_port()).start()
    with pytest.raises(ServerError, match=f"port {argilla_server.port} .* already in use"):
        ArgillaServer(tmp_path / "other", port=argilla_server.port).start()


def test_a_data_dir_that_already_existed_is_made_private(argilla_server):
    data_dir = argilla_server.data_dir
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert (data_dir / "notes.txt").read_text() == "mine"  # the user's file is kept, only made private
    for path in data_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert path.stat().st_mode & 0o077 == 0, path  # argilla.db (API keys), credentials, logs
    assert (data_dir / "argilla.db").exists()
