"""One rule for secrets: URLs are shown and recorded without credentials; secret folders are private;
ordinary outputs get the user's usual file mode."""

from __future__ import annotations

import os

import pytest

from prefkit.jsonl import write_json, write_jsonl
from prefkit.privacy import make_private, redact_text, redact_url


@pytest.mark.parametrize(
    "url,shown",
    [
        ("http://user:sk-secret@host:8000/v1", "http://host:8000/v1"),
        ("https://key@api.example.com/v1", "https://api.example.com/v1"),
        (
            "https://x.openai.azure.com/v1?api-version=2024&api-key=sk-secret",
            "https://x.openai.azure.com/v1?api-version=2024&api-key=REDACTED",
        ),
        ("https://h/v1?token=abc&sig=def&model=m", "https://h/v1?token=REDACTED&sig=REDACTED&model=m"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        (None, None),
    ],
)
def test_urls_lose_their_credentials(url, shown):
    assert redact_url(url) == shown


def test_a_secret_folder_becomes_private_whoever_made_it(tmp_path):
    folder = tmp_path / "data"
    (folder / "logs").mkdir(parents=True)
    for name in ("argilla.db", "logs/server.log"):
        (folder / name).write_text("x")
    folder.chmod(0o755)
    (folder / "argilla.db").chmod(0o644)
    make_private(folder)
    assert folder.stat().st_mode & 0o777 == 0o700 and (folder / "logs").stat().st_mode & 0o777 == 0o700
    assert (folder / "argilla.db").stat().st_mode & 0o777 == 0o600
    assert (folder / "logs" / "server.log").stat().st_mode & 0o777 == 0o600


def test_outputs_written_in_one_go_get_the_users_umask_like_appended_ones(tmp_path):
    old = os.umask(0o022)
    try:
        write_jsonl(tmp_path / "a.jsonl", [{"a": 1}])
        write_json(tmp_path / "r.json", {"a": 1})
        with open(tmp_path / "appended.jsonl", "a") as handle:
            handle.write("{}\n")
        os.umask(0o027)
        write_jsonl(tmp_path / "b.jsonl", [{"a": 1}])
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"a.jsonl": 0o644, "r.json": 0o644, "appended.jsonl": 0o644, "b.jsonl": 0o640}


def test_urls_inside_log_lines_and_messages_lose_their_credentials():
    line = 'HTTP Request: GET http://user:sk-1@127.0.0.1:8000/v1/models?api-key=sk-2&x=1 "HTTP/1.1 200 OK"'
    assert (
        redact_text(line) == 'HTTP Request: GET http://127.0.0.1:8000/v1/models?api-key=REDACTED&x=1 "HTTP/1.1 200 OK"'
    )
    assert redact_text("no URL here: user@example.com") == "no URL here: user@example.com"
