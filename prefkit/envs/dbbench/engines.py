"""SQL engines a DBBench episode runs on, each giving observations the way AgentBench's client gives them.

AgentBench v0.2 (THUDM/AgentBench commit 41e6807349f741e06428fae3e9e4d334e7002362),
`src/server/tasks/dbbench/Interaction.py` `Container.execute`: reconnect, `use` the database, run the statement
with `cursor.execute(sql, data, multi=True)`, answer `str(cursor.fetchall())`, commit; any exception answers
`str(exception)`; an answer over 800 characters is cut there and `[TRUNCATED]` appended.

- `mariadb`/`mysql`: that code, with the client AgentBench pins (`mysql-connector-python` 8.0.33, its C
  extension), against a MySQL-compatible server: those prefkit starts (`MariaDBServer`) or one given by URL.
  Instead of reconnecting before each statement, the connection is reset (COM_RESET_CONNECTION): the same
  fresh session, without the client's reference leak on connect. The database of an episode is named after
  its table, as AgentBench names it, so error messages that quote it read the same; a name is used by one
  episode of a server at a time (from set-up to drop), so with one server two episodes of a task take turns,
  and prefkit starts as many servers as the concurrency needs. The table is created and filled one statement
  at a time (AgentBench's single multi-statement call intermittently fails with "Commands out of sync" under
  that client). Each statement runs under the server's `max_statement_time`, and a watchdog outside the
  session ends it (`KILL QUERY`) a second past the limit should the statement have lifted that setting. On
  prefkit's own server each episode speaks as an account of its own, granted on its database alone.
- `sqlite`: the embedded engine, one in-memory database an episode, with MD5 and CONCAT_WS registered and the
  grader's table hash computed as MySQL's `group_concat(... ORDER BY ...)` would; its observations are
  SQLite's (Python's `sqlite3` rows and messages), so it is for quick runs and tests, not for scores.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import secrets
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlparse

from prefkit.errors import ConfigError, MissingExtraError, ServerError

log = logging.getLogger(__name__)
ENGINES = ("mariadb", "sqlite")
_USE = re.compile(r"\buse\b", re.I)
MAX_OBSERVATION = 800  # Interaction.py: result[:800] + "[TRUNCATED]"


def truncate(result: str) -> str:
    """AgentBench's cut of an over-long observation."""
    return result[:MAX_OBSERVATION] + "[TRUNCATED]" if len(result) > MAX_OBSERVATION else result


def quoted(name: str) -> str:
    """A table, column or database name from a task file as an identifier, never as SQL: in backticks, a
    backtick inside doubled (MySQL's and SQLite's rule alike)."""
    return "`" + str(name).replace("`", "``") + "`"


def setup_statements(
    entry: dict, literals: Callable[[tuple], list[str]] | None = None
) -> tuple[str, str, list[tuple[str, tuple]]]:
    """(database, table, statements with their parameters) that build a task's table, as AgentBench's
    `build_init_sql` does, one statement at a time. Names are quoted (`quoted`). Values are `?` parameters, or
    with `literals` (the MySQL client's own escaping) written into the statement: that client substitutes every
    `%s` of a statement, those inside a quoted name too, so a name must never meet its parameters."""
    name = entry["table"]["table_name"]
    columns = entry["table"]["table_info"]["columns"]
    rows = entry["table"]["table_info"]["rows"]
    definition = ",".join(f"{quoted(column['name'])} TEXT" for column in columns)
    statements = [(f"CREATE TABLE IF NOT EXISTS {quoted(name)} ({definition})", ())]
    if rows:
        names = ",".join(quoted(column["name"]) for column in columns)
        data = tuple(value for row in rows for value in row)
        values = iter(literals(data) if literals is not None else ["?"] * len(data))
        tuples = ",".join("(" + ",".join(next(values) for _ in row) + ")" for row in rows)
        statements.append((f"INSERT INTO {quoted(name)} ({names}) VALUES {tuples}", () if literals else data))
    return database_name(name), name, statements


def hash_query(entry: dict) -> str:
    """The grader's table hash query (dbbench/__init__.py, for INSERT/DELETE/UPDATE tasks), names quoted."""
    columns = ",".join(quoted(column["name"]) for column in entry["table"]["table_info"]["columns"])
    table = quoted(entry["table"]["table_name"])
    return (
        f"select md5(group_concat(rowhash order by rowhash)) as hash "
        f"from( SELECT substring(MD5(CONCAT_WS(',', {columns})), 1, 5) AS rowhash FROM {table}) as sub;"
    )


# Databases a MySQL server keeps for itself: an episode's database is never one of them.
_SYSTEM_DATABASES = frozenset({"mysql", "information_schema", "performance_schema", "sys"})


def database_name(table: str, prefix: str = "") -> str:
    """The database of an episode: named after its table, as AgentBench names it, when a MySQL server can hold
    that name (at most 64 characters with `prefix`, none of `/ \\ .` or NUL, no trailing space, not a system
    database's); else `task_` and a hash of the table's name, so a task with an odd name plays instead of
    stopping the run (or dropping the server's own database)."""
    name = prefix + table
    if (
        0 < len(name) <= 64
        and not any(c in name for c in "/\\.\0")
        and not name.endswith(" ")
        and name.lower() not in _SYSTEM_DATABASES
    ):
        return name
    return prefix + "task_" + hashlib.sha256(table.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def bounded_observation(rows) -> str:
    """`truncate(str(list(rows)))`, reading no more rows than the cut needs: a result of millions of rows (a
    cross join) costs what its first 800 characters cost."""
    parts, length = ["["], 1
    for index, row in enumerate(rows):
        piece = (", " if index else "") + repr(row)
        parts.append(piece)
        length += len(piece)
        if length > MAX_OBSERVATION:
            return "".join(parts)[:MAX_OBSERVATION] + "[TRUNCATED]"
    return truncate("".join(parts) + "]")


class Database(ABC):
    """One episode's database: statements in, AgentBench-style observations out (`failed`: whether the last
    statement answered with an error message)."""

    failed: bool = False

    @abstractmethod
    def execute(self, sql: str) -> str:
        """Run one agent statement; the observation AgentBench would send back."""

    @abstractmethod
    def table_hash(self) -> str:
        """The grader's answer for a modification task: the hash query's observation."""

    @abstractmethod
    def close(self) -> None:
        """Drop the database and release it; idempotent."""


class Engine(ABC):
    """Where episodes' databases live."""

    name: str

    @abstractmethod
    def create(self, entry: dict) -> Database:
        """A fresh database holding the task's table."""

    def close(self) -> None:  # noqa: B027 - an embedded engine starts nothing
        """Stop what the engine started; idempotent."""


# What an episode's statements may not do on SQLite: reach a file (ATTACH, and VACUUM INTO, which attaches its
# target), load code, or change the process's or the connection's limits. Read-only pragmas that describe the
# episode's own tables are allowed (what MySQL's DESCRIBE and SHOW INDEX answer).
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})
_READ_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
)
MAX_SQLITE_VALUE = 16 * 1024 * 1024  # bytes in one string or blob (zeroblob(999000000) is refused at once)
MAX_SQLITE_PAGES = 16_384  # 64 MB of database with 4 KB pages


def _authorize(action: int, first: str | None, second: str | None, database: str | None, source: str | None) -> int:
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (second or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (first or "").lower() not in _READ_PRAGMAS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class SQLiteEngine(Engine):
    """An in-memory SQLite database an episode, contained: no file reached, no code loaded, a bound on one
    value's size and on the database's, a statement time limit (a progress handler), results read no further
    than the observation needs."""

    name = "sqlite"

    def __init__(self, statement_timeout: float = 10.0):
        self.statement_timeout = statement_timeout

    def create(self, entry: dict) -> Database:
        return SQLiteDatabase(entry, self.statement_timeout)


class SQLiteDatabase(Database):
    def __init__(self, entry: dict, statement_timeout: float):
        self.entry = entry
        self.statement_timeout = statement_timeout
        self.connection = sqlite3.connect(":memory:", check_same_thread=False)
        self.connection.create_function("MD5", 1, _md5, deterministic=True)
        self.connection.create_function("CONCAT_WS", -1, _concat_ws, deterministic=True)
        self.connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_SQLITE_VALUE)
        self.connection.execute(f"PRAGMA max_page_count = {MAX_SQLITE_PAGES}")
        self.connection.set_authorizer(_authorize)
        self._deadline = 0.0
        self.connection.set_progress_handler(self._over_time, 10_000)
        self.setup_error = ""
        _, _, statements = setup_statements(entry)
        for sql, data in statements:
            try:
                self.connection.execute(sql, data)
            except sqlite3.Error as error:  # as on a server: the episode plays without the table
                self.setup_error = self.setup_error or str(error)
        self.connection.commit()

    def _over_time(self) -> int:
        return 1 if self._deadline and time.monotonic() > self._deadline else 0

    def execute(self, sql: str) -> str:
        self._deadline = time.monotonic() + self.statement_timeout
        try:
            cursor = self.connection.cursor()
            cursor.execute(sql)
            result = bounded_observation(cursor)
            cursor.close()
            self.connection.commit()
            self.failed = False
        except Exception as error:  # the observation is the error, as AgentBench's client gives it
            result, self.failed = str(error), True
            if result == "interrupted":
                result = f"interrupted: the statement ran over {self.statement_timeout:g} s"
        finally:
            self._deadline = 0.0
        return truncate(result)

    def table_hash(self) -> str:
        columns = ", ".join(quoted(column["name"]) for column in self.entry["table"]["table_info"]["columns"])
        table = quoted(self.entry["table"]["table_name"])
        try:
            rows = self.connection.execute(f"SELECT CONCAT_WS(',', {columns}) FROM {table}").fetchall()
        except sqlite3.Error as error:
            return truncate(str(error))
        if not rows:
            return "[(None,)]"
        hashes = sorted(_md5(row[0])[:5] if row[0] is not None else None for row in rows)
        joined = ",".join(value for value in hashes if value is not None)
        return str([(_md5(joined) if any(value is not None for value in hashes) else None,)])

    def close(self) -> None:
        self.connection.close()


def _md5(value: Any) -> str | None:
    if value is None:
        return None
    return hashlib.md5(_text(value).encode()).hexdigest()


def _concat_ws(separator: Any, *values: Any) -> str | None:
    if separator is None:
        return None
    return _text(separator).join(_text(value) for value in values if value is not None)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class MySQLEngine(Engine):
    """MySQL-compatible servers: prefkit's own MariaDB (`url=None`; `servers` of them) or the one at
    `mysql://user:pw@host:port`. An episode's database is named after its table, and a name is used by one
    episode of a server at a time: with several servers, that many episodes of one task run side by side."""

    def __init__(self, url: str | None = None, statement_timeout: float = 10.0, servers: int = 1):
        try:
            import mysql.connector  # noqa: F401
        except ImportError:
            needs = "the mariadb engine needs mysql-connector-python: pip install 'prefkit[env]'"
            raise MissingExtraError(needs) from None
        self.statement_timeout = statement_timeout
        self.servers: list = []
        self.own = url is None
        # On a server of the user's, prefkit's databases carry a prefix of this run's own, and only databases
        # this run created are ever dropped: a task named like one of the user's databases never touches it.
        self.prefix = "" if self.own else f"prefkit_{secrets.token_hex(4)}_"
        self.created: set[str] = set()
        if self.own:
            from prefkit.envs.dbbench.server import MariaDBServer

            try:
                for _ in range(max(1, servers)):  # launched together, then waited for
                    # Its own servers apply the statement time limit to every session (one round trip fewer).
                    self.servers.append(MariaDBServer(statement_timeout=statement_timeout).launch())
                for server in self.servers:
                    server.ready()
            except BaseException:
                for server in self.servers:
                    server.stop()
                raise
            self.targets = [server.connect_args for server in self.servers]
            self.name = "mariadb"
        else:
            self.targets = [parse_url(url)]
            self.name = "mysql"
        self._in_use: list[set[str]] = [set() for _ in self.targets]
        self._idle: list[list[Any]] = [[] for _ in self.targets]  # connections of finished episodes, reused
        self._free = threading.Condition()
        self._killers: dict[int, Any] = {}  # a connection a server, that ends statements run past their limit
        self._killing = threading.Lock()

    @contextlib.contextmanager
    def watchdog(self, target: int, connection_id: int):
        """While the block runs, a statement of `connection_id` still running one second past the time limit
        is ended with `KILL QUERY` from a connection of the engine's own."""
        timer = threading.Timer(self.statement_timeout + 1.0, self._kill, (target, connection_id))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _kill(self, target: int, connection_id: int) -> None:
        import mysql.connector

        with self._killing:
            try:
                killer = self._killers.get(target)
                if killer is None or not killer.is_connected():
                    killer = self._killers[target] = mysql.connector.connect(**self.targets[target])
                with killer.cursor() as cursor:
                    cursor.execute(f"KILL QUERY {int(connection_id)}")
            except mysql.connector.Error as error:  # the statement ended meanwhile, or the server is gone
                log.debug("could not end statement of connection %s: %s", connection_id, error)

    def acquire(self, database: str) -> int:
        """A server where no episode uses the name `database` (the least busy one); waits for one otherwise."""
        with self._free:
            while True:
                free = [i for i, names in enumerate(self._in_use) if database not in names]
                if free:
                    chosen = min(free, key=lambda i: len(self._in_use[i]))
                    self._in_use[chosen].add(database)
                    return chosen
                self._free.wait()

    def release(self, target: int, database: str, connection=None) -> None:
        """The name is free again on that server; `connection` (still usable) goes to the next episode."""
        with self._free:
            self._in_use[target].discard(database)
            if connection is not None:
                self._idle[target].append(connection)
            self._free.notify_all()

    def connection(self, target: int):
        """An idle connection to the server, or a new one: each connect of the pinned client's C extension drops
        a reference to None it never took (about 1.6 a connect under Python 3.11), which kills the interpreter
        after some ten thousand; episodes therefore reuse their connections."""
        import mysql.connector

        with self._free:
            if self._idle[target]:
                return self._idle[target].pop()
        return mysql.connector.connect(**self.targets[target])

    def create(self, entry: dict) -> Database:
        return MySQLDatabase(self, entry)

    def close(self) -> None:
        with self._free:
            idle, self._idle = [c for pool in self._idle for c in pool], [[] for _ in self.targets]
        with self._killing:
            idle += list(self._killers.values())
            self._killers = {}
        for connection in idle:
            try:
                connection.close()
            except Exception:  # the server may be gone already
                pass
        for server in self.servers:
            server.stop()
        self.servers = []


class MySQLDatabase(Database):
    """AgentBench's `Container.execute` against one episode's database."""

    def __init__(self, engine: MySQLEngine, entry: dict):
        import mysql.connector

        self.engine, self.entry = engine, entry
        self.database = database_name(entry["table"]["table_name"], engine.prefix)
        self.target = engine.acquire(self.database)
        self._closed = False
        try:
            # AgentBench also passes pool_reset_session=True, which makes the client pool its one connection;
            # episodes need a connection each, and a plain one answers the same.
            self.connection = engine.connection(self.target)
            self.connection.cmd_reset_connection()
            with self.connection.cursor() as cursor:
                try:
                    cursor.execute(f"CREATE DATABASE {quoted(self.database)}")
                except mysql.connector.DatabaseError:
                    if self.database not in engine.created:  # not this run's: never dropped
                        raise
                    # left by an episode of this run whose drop failed
                    cursor.execute(f"DROP DATABASE IF EXISTS {quoted(self.database)}")
                    cursor.execute(f"CREATE DATABASE {quoted(self.database)}")
                engine.created.add(self.database)
                if engine.own:
                    self.account = _episode_account(cursor, self.database)
            self._as_episode()
        except mysql.connector.Error as error:
            self.close()
            raise ServerError(f"the MySQL server refused an episode's database: {error}") from None
        # AgentBench's set-up goes through `execute` too, which answers an error instead of raising it: a
        # table the server refuses (an empty column name, say) is simply not there for the episode.
        _, _, statements = setup_statements(entry, self._literals)
        for sql, data in statements:
            self._run(sql, self.database, data)
            if self.failed:
                self.setup_error = self.setup_error or self._last

    setup_error = ""
    _last = ""
    account: tuple[str, str] | None = None  # on prefkit's own server: the episode's own (user, password)

    def _as_episode(self) -> None:
        """The connection speaks as the episode's account (granted on its database alone), when it has one."""
        if self.account is not None:
            self.connection.cmd_change_user(*self.account, database=self.database)
            self._in = self.database

    def _as_engine(self) -> None:
        """The connection speaks as the engine's own account again (to drop the database, or for reuse)."""
        if self.account is not None:
            target = self.engine.targets[self.target]
            self.connection.cmd_change_user(target["user"], target["password"])
            self._in = None

    def _literals(self, values: tuple) -> list[str]:
        """The values as the client itself would write them into a statement (escaped and quoted)."""
        return [
            item.decode("utf-8") if isinstance(item, bytes) else str(item)
            for item in self.connection.prepare_for_mysql(values)
        ]

    _in: str | None = None  # the database the connection has selected, when known

    def _run(self, sql: str, database: str | None, data: tuple = ()) -> str:
        """Interaction.py `Container.execute`, with a per-statement time limit. AgentBench reconnects before
        each statement; resetting the connection (COM_RESET_CONNECTION) gives the same fresh session (user
        variables, temporary tables and session settings gone) without the client's leak on connect. A
        connection a statement left unusable ("Commands out of sync") is replaced."""
        import mysql.connector

        try:
            self.connection.cmd_reset_connection()  # keeps the current database and account
        except mysql.connector.Error:
            self.connection.reconnect()  # as the engine's account: the episode's own again, unless dropping
            self._in = None
            if database is not None:
                self._as_episode()
        try:
            with self.connection.cursor() as cursor:
                if not self.engine.own:
                    cursor.execute(f"SET SESSION max_statement_time = {self.engine.statement_timeout:g}")
                if database and self._in != database:  # AgentBench's `use` before every statement, when needed
                    cursor.execute(f"use {quoted(database)};")
                    cursor.fetchall()
                    self._in = database
                if _USE.search(sql):  # the statement may choose another database: `use` ours again next time
                    self._in = None
                # The session's own limit can be lifted by the statement (`SET STATEMENT max_statement_time=0
                # FOR ...`): a watchdog outside the session ends it a second after the limit all the same.
                with self.engine.watchdog(self.target, self.connection.connection_id):
                    cursor.execute(sql, data, multi=True)
                    result = cursor.fetchall()
                result = str(result)
            self.connection.commit()
            self.failed = False
        except Exception as error:  # the observation is the error, as AgentBench's client gives it
            result, self.failed = str(error), True
        self._last = result
        return truncate(result)

    def execute(self, sql: str) -> str:
        return self._run(sql, self.database)

    def table_hash(self) -> str:
        return self._run(hash_query(self.entry), self.database)

    def close(self) -> None:
        import mysql.connector

        if self._closed:
            return
        self._closed = True
        reusable = None
        try:
            if getattr(self, "connection", None) is not None and self.database not in self.engine.created:
                reusable = self.connection  # its database was never created: nothing of it to drop
            elif getattr(self, "connection", None) is not None:
                try:
                    self._as_engine()
                except mysql.connector.Error:  # the episode left the connection broken
                    self.connection.reconnect()
                self._run(f"DROP DATABASE IF EXISTS {quoted(self.database)}", None)
                if self.account is not None and not self.failed:
                    self._run(f"DROP USER IF EXISTS '{self.account[0]}'@'localhost'", None)
                if self.failed:
                    self.connection.close()
                else:
                    reusable = self.connection
        except Exception:  # the server may be gone already; the database goes with it
            pass
        finally:
            self.engine.release(self.target, self.database, reusable)


def _episode_account(cursor, database: str) -> tuple[str, str]:
    """A fresh account on prefkit's own server with the episode privileges on `database` alone: the episode
    cannot see or change another episode's database, kill its queries, or touch the server's own tables."""
    from prefkit.envs.dbbench.server import EPISODE_PRIVILEGES

    user = "ep_" + hashlib.sha256(database.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    password = secrets.token_urlsafe(18)
    cursor.execute(f"DROP USER IF EXISTS '{user}'@'localhost'")
    cursor.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'")
    cursor.execute(f"GRANT {EPISODE_PRIVILEGES} ON {quoted(database)}.* TO '{user}'@'localhost'")
    return user, password


def parse_url(url: str) -> dict:
    """`mysql://user:password@host:port` (or `mariadb://`) -> connect arguments; a bad one is a ConfigError."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mysql", "mariadb") or not parsed.hostname:
        raise ConfigError(f"--db-url must look like mysql://USER:PASSWORD@HOST:PORT, got {parsed.scheme}://...")
    return {
        "host": parsed.hostname,
        "port": parsed.port or 3306,
        "user": unquote(parsed.username or "root"),
        "password": unquote(parsed.password or ""),
    }


def open_engine(name: str, url: str | None = None, statement_timeout: float = 10.0, servers: int = 1) -> Engine:
    """The engine `name` (mariadb: `servers` servers of prefkit's own, or the one at `url`)."""
    if name == "sqlite":
        if url:
            raise ConfigError("--db-url is for the mariadb engine")
        return SQLiteEngine(statement_timeout)
    if name == "mariadb":
        return MySQLEngine(url, statement_timeout, servers)
    raise ConfigError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
