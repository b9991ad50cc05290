"""`prefkit review serve --database-url postgresql+asyncpg://...`: the same queue on a throwaway PostgreSQL
(Debian's PostgreSQL 15 server binaries, run as the `postgres` user in a temp dir on a free port)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from prefkit.review.argilla_queue import Connection, pull, push, status
from prefkit.review.serve import ArgillaServer, free_port

pytestmark = pytest.mark.slow
BIN = next(
    (p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True) if (p / "initdb").exists()), None
)


@pytest.fixture
def postgresql():
    """A URL of an empty database on a PostgreSQL server that lives as long as the test."""
    if BIN is None or os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs Debian's PostgreSQL server binaries and root (to run them as `postgres`)")
    # Not under pytest's tmp dir: that one is private to root, and the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="prefkit-pg-"))
    shutil.chown(root, "postgres")
    port = free_port()

    def as_postgres(*command: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True)

    as_postgres(str(BIN / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "postgres")
    as_postgres(
        str(BIN / "pg_ctl"),
        "-D",
        str(root / "data"),
        "-w",
        "-l",
        str(root / "log"),
        "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
        "start",
    )
    try:
        as_postgres(str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "argilla")
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/argilla"
    finally:
        as_postgres(str(BIN / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_queue_round_trip_on_postgresql(postgresql, pairs, tmp_path):
    import argilla as rg
    from argilla._models import UserResponseModel

    with ArgillaServer(tmp_path / "argilla", port=free_port(), database_url=postgresql) as server:
        connection = Connection(server.url, server.credentials["api_key"])
        assert not (server.data_dir / "argilla.db").exists()  # not SQLite
        push(pairs[:10], connection, "pg")
        client = rg.Argilla(api_url=server.url, api_key=connection.api_key)
        dataset = client.datasets(name="pg", workspace="prefkit")
        for record in list(dataset.records())[:4]:
            client.api.records.create_record_response(
                record._server_id,
                UserResponseModel(
                    values={"preference": {"value": "a_better"}}, status="submitted", user_id=client.me.id
                ),
            )
        response = client.api.http_client.post(
            f"/api/v1/datasets/{dataset.id}/records/search",
            json={
                "filters": {
                    "and": [
                        {
                            "type": "terms",
                            "scope": {"entity": "response", "property": "status"},
                            "values": ["submitted"],
                        }
                    ]
                }
            },
        )
        assert response.json()["total"] == 4
        assert (status(connection, "pg")["completed"], len(pull(connection, "pg").kept)) == (4, 4)
