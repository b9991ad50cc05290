"""A real Argilla server for the review tests: built once per machine (cached environment), started once per
session on a free loopback port, stopped afterwards."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from prefkit.jsonl import read_jsonl
from prefkit.review.argilla_queue import Connection
from prefkit.review.serve import ArgillaServer, free_port

PAIRS = Path(__file__).resolve().parents[2] / "data" / "pairs" / "tiny-pairs.jsonl"


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory):
    """The running server (its data dir holds credentials.json)."""
    data_dir = tmp_path_factory.mktemp("argilla") / "data"
    # A data dir the user made beforehand, readable by everyone, with a file in it: serve makes it private.
    data_dir.mkdir(mode=0o755)
    (data_dir / "notes.txt").write_text("mine")
    (data_dir / "notes.txt").chmod(0o644)
    server = ArgillaServer(data_dir, port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def connection(argilla_server) -> Connection:
    """The owner's connection."""
    return Connection(argilla_server.url, argilla_server.credentials["api_key"])


@pytest.fixture(scope="session")
def owner(connection):
    """The owner's SDK client."""
    import argilla as rg

    return rg.Argilla(api_url=connection.api_url, api_key=connection.api_key)


@pytest.fixture(scope="session")
def annotators(owner):
    """Three annotator users in the prefkit workspace: name -> SDK client signed in as them."""
    import argilla as rg

    workspace = owner.workspaces(name="prefkit") or rg.Workspace(name="prefkit", client=owner).create()
    clients = {}
    for name in ("ann1", "ann2", "ann3"):
        user = rg.User(username=name, password=secrets.token_urlsafe(12), role="annotator", client=owner).create()
        user.add_to_workspace(workspace)
        # The SDK's user model leaves the API key out; the server gives it to the owner.
        api_key = owner.api.http_client.get(f"/api/v1/users/{user.id}").json()["api_key"]
        clients[name] = rg.Argilla(api_url=owner.api_url, api_key=api_key)
    return clients


@pytest.fixture(scope="session")
def pairs() -> list[dict]:
    """Real corpus pairs (DBBench/ALFWorld turns against their corruptions)."""
    return read_jsonl(PAIRS)
