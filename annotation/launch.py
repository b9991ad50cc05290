"""Start argilla-server 2.8 without Elasticsearch: run inside the server's own virtual environment.

    SERVER_VENV/bin/python annotation/launch.py --data-dir DIR --port PORT --redis-url URL [--database-url URL]

`prefkit review serve` builds that environment, starts Redis and runs this file; it is not meant to be
run by hand. Here: settings go into the environment before `argilla_server` is imported (it reads them
at import), the database is migrated, the owner user named in DIR/credentials.json is created or brought
in line with that file (its password and API key are generated there, never Argilla's defaults), and
uvicorn serves the API and the UI on 127.0.0.1 until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

WORKSPACE = "prefkit"


def _environment(args: argparse.Namespace) -> None:
    data_dir = Path(args.data_dir)
    secret_file = data_dir / "auth_secret_key"
    # Argilla imports copy its 14 MB web UI into a fresh temp folder each time and never delete it.
    tmp = data_dir / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    os.environ.update(
        {
            "TMPDIR": str(tmp),
            "ARGILLA_HOME_PATH": str(data_dir),
            "ARGILLA_SEARCH_ENGINE": "prefkit-sql",
            "ARGILLA_REDIS_URL": args.redis_url,
            # Persisted, or every restart signs everybody out of the UI.
            "ARGILLA_AUTH_SECRET_KEY": secret_file.read_text().strip(),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_OFFLINE": "1",
        }
    )
    if args.database_url:
        os.environ["ARGILLA_DATABASE_URL"] = args.database_url


async def _ensure_owner(credentials: dict) -> None:
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.models import User, UserRole, Workspace, WorkspaceUser

    async with AsyncSessionLocal() as db:
        workspace = await Workspace.get_by(db, name=WORKSPACE)
        if workspace is None:
            workspace = await accounts.create_workspace(db, {"name": WORKSPACE})
        user = await accounts.get_user_by_username(db, credentials["username"])
        if user is None:
            user = await User.create(
                db,
                first_name=credentials["username"],
                username=credentials["username"],
                role=UserRole.owner,
                api_key=credentials["api_key"],
                password_hash=accounts.hash_password(credentials["password"]),
            )
        elif user.api_key != credentials["api_key"] or not accounts.verify_password(
            credentials["password"], user.password_hash
        ):
            # credentials.json is the source of truth: whoever can read it owns this server.
            await user.update(
                db, api_key=credentials["api_key"], password_hash=accounts.hash_password(credentials["password"])
            )
        if await WorkspaceUser.get_by(db, workspace_id=workspace.id, user_id=user.id) is None:
            await WorkspaceUser.create(db, workspace_id=workspace.id, user_id=user.id)
    # Pooled asyncpg connections belong to this event loop; uvicorn runs another one.
    from argilla_server.database import async_engine

    await async_engine.dispose()


def _cache_settings_adapters() -> None:
    """argilla-server 2.8 builds a pydantic TypeAdapter for every metadata value and every suggestion of
    every record it validates (`MetadataProperty.parsed_settings`, `Question.parsed_settings`); building
    them took most of a bulk upsert's server time here. One adapter each, built once, validates the same."""
    from argilla_server.api.schemas.v1.questions import QuestionSettings
    from argilla_server.models import MetadataProperty, Question
    from argilla_server.models.metadata_properties import MetadataPropertySettings
    from pydantic import TypeAdapter

    for model, settings_type in ((MetadataProperty, MetadataPropertySettings), (Question, QuestionSettings)):
        adapter = TypeAdapter(settings_type)
        model.parsed_settings = property(lambda self, adapter=adapter: adapter.validate_python(self.settings))


def _skip_record_events_without_webhooks() -> None:
    """argilla-server 2.8 builds a webhook event for every record it writes (a dataset query with five
    eager loads and a schema dump each) before it checks whether any webhook is enabled; with none, that
    was most of the rest of a bulk upsert's time. Check first, then build exactly as before."""
    from argilla_server.bulk import records_bulk
    from argilla_server.contexts import distribution, webhooks
    from argilla_server.webhooks.v1 import records

    original = records.notify_record_event

    async def notify_record_event(db, record_event, record):
        if not await webhooks.list_enabled_webhooks(db):
            return []
        return await original(db, record_event, record)

    for module in (records, records_bulk, distribution):
        setattr(module, "notify_record_event" if module is records else "notify_record_event_v1", notify_record_event)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--database-url")
    parser.add_argument("--stock", action="store_true", help="Skip the two speed-ups (to measure them).")
    args = parser.parse_args(argv)
    _environment(args)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import search_engine  # noqa: F401 - registers the "prefkit-sql" engine
    from argilla_server.cli.database.migrate import migrate_db

    if not args.stock:
        _cache_settings_adapters()
        _skip_record_events_without_webhooks()
    migrate_db("head")
    credentials = json.loads((Path(args.data_dir) / "credentials.json").read_text())
    asyncio.run(_ensure_owner(credentials))

    import uvicorn
    from argilla_server import app

    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
