"""A MariaDB server of prefkit's own for DBBench episodes: Debian's `mariadbd` in a fresh data dir, reachable
only through a Unix socket in a 0700 folder (no TCP port), with a generated user and password (root has no
password, and only this process can reach the socket); stopped with the run, and sent SIGTERM by the kernel
if the thread that started it dies first, so start it from the main thread. Folders left by a run that was
killed are removed by the next start.

What runs on it is a model's SQL, so the server is kept from the host: started by root it runs as Debian's
unprivileged `mysql` user; file access is off (`secure_file_priv` is an empty folder of its own, `local_infile`
off, and no episode account has the FILE privilege, so `LOAD_FILE` and `INTO OUTFILE` reach nothing). The
generated account is the engine's (it creates and drops the episodes' databases and accounts) and never runs
a model's SQL: each episode speaks as an account of its own, granted `EPISODE_PRIVILEGES` on its own database
alone (`engines.py`), so it cannot see or change another episode's database, kill its queries, stop the
server, change global settings, create users or schedule events."""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from prefkit.child import die_with_parent, log_tail
from prefkit.errors import ServerError

log = logging.getLogger(__name__)

_PREFIX = "prefkit-mariadb-"
# What an episode's account holds on its own database (AgentBench's tasks create, fill, query and change
# tables, and may create views, indexes, triggers and routines), and nothing that reaches the host or the server.
EPISODE_PRIVILEGES = (
    "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, CREATE TEMPORARY TABLES, LOCK TABLES, "
    "CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EXECUTE, TRIGGER, REFERENCES"
)
_OWNER = "owner.pid"


class MariaDBServer:
    """Start with `start()` (or `with`), connect with `connect_args`, stop with `stop()`."""

    def __init__(self, startup_timeout: float = 60.0, statement_timeout: float | None = None):
        self.startup_timeout = startup_timeout
        self.statement_timeout = statement_timeout
        self.folder: Path | None = None
        self.user = "prefkit"
        self.password = secrets.token_urlsafe(18)
        self._process: subprocess.Popen | None = None
        self._watchdog: subprocess.Popen | None = None

    @property
    def socket(self) -> str:
        assert self.folder is not None, "the server is not started"
        return str(self.folder / "sock")

    @property
    def connect_args(self) -> dict:
        """Keyword arguments for `mysql.connector.connect`."""
        return {"unix_socket": self.socket, "user": self.user, "password": self.password}

    def start(self) -> MariaDBServer:
        """Initialise a data dir, start the server, create the user; a failure is a ServerError naming the log."""
        self.launch()
        return self.ready()

    def launch(self) -> MariaDBServer:
        """Initialise the data dir and start the server process, without waiting for it (see `ready`)."""
        server, install = shutil.which("mariadbd") or shutil.which("mysqld"), shutil.which("mariadb-install-db")
        if server is None or install is None:
            raise ServerError(
                "mariadbd is not installed: `apt-get install mariadb-server` (Debian/Ubuntu, or run "
                "scripts/system-deps.sh), or give --db-url for a running MySQL/MariaDB server"
            )
        _remove_stale_folders()
        # In memory where there is a tmpfs: nothing here needs to survive, and the table set-up and drop of every
        # episode then costs no disk flush. A short path: a Unix socket's path is limited to 107 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=_place()))
        os.chmod(self.folder, 0o700)
        (self.folder / _OWNER).write_text(str(os.getpid()))
        data, errors, files = self.folder / "data", self.folder / "error.log", self.folder / "files"
        files.mkdir(mode=0o700)
        account = _server_account()
        if account is not None:  # root starts it as an unprivileged user, who owns its folder
            for path in (self.folder, files):
                os.chown(path, account.pw_uid, account.pw_gid)
        user = [f"--user={account.pw_name if account else 'root'}"] if os.geteuid() == 0 else []
        install_user = user
        initialised = subprocess.run(
            [install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
             "--skip-test-db", *install_user],
            capture_output=True, text=True,
        )  # fmt: skip
        if initialised.returncode != 0:
            tail = " | ".join(initialised.stderr.strip().splitlines()[-3:])
            self.stop()
            raise ServerError(f"mariadb-install-db failed: {tail}")
        self._process = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={data}", f"--socket={self.socket}", "--skip-networking",
             f"--pid-file={self.folder / 'server.pid'}", f"--log-error={errors}", "--skip-name-resolve",
             "--innodb-buffer-pool-size=64M", "--max-connections=512", "--innodb-flush-log-at-trx-commit=2",
             "--innodb-file-per-table=OFF",  # a table is no file of its own: every episode's set-up is cheaper
             f"--secure-file-priv={files}", "--local-infile=0",
             *([f"--max-statement-time={self.statement_timeout:g}"] if self.statement_timeout else []),
             # MySQL 8's defaults (AgentBench's `mysql` image): the table hash is an MD5 of utf8mb4 text
             "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
             *([] if account else user)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_as_account(account), start_new_session=True,
        )  # fmt: skip
        if account is not None:
            self._watchdog = _watch(self._process.pid, self.socket)
        return self

    def ready(self) -> MariaDBServer:
        """Wait until the launched server answers, then create the user."""
        self._wait_ready(self.folder / "error.log")
        self._create_user()
        log.info("MariaDB server started on %s", self.socket)
        return self

    def _wait_ready(self, errors: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = log_tail(errors)
                self.stop()
                raise ServerError(f"mariadbd exited at start: {tail}")
            if Path(self.socket).exists() and self._root("SELECT 1").returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"mariadbd did not answer within {self.startup_timeout:.0f} s: {log_tail(errors)}")

    def _root(self, sql: str) -> subprocess.CompletedProcess:
        client = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
        return subprocess.run(
            [client, "--no-defaults", f"--socket={self.socket}", "-uroot", "-e", sql], capture_output=True, text=True
        )

    def _create_user(self) -> None:
        password = self.password.replace("'", "''")
        done = self._root(
            f"CREATE USER '{self.user}'@'localhost' IDENTIFIED BY '{password}'; "
            f"GRANT ALL PRIVILEGES ON *.* TO '{self.user}'@'localhost' WITH GRANT OPTION; FLUSH PRIVILEGES;"
        )
        if done.returncode != 0:
            self.stop()
            raise ServerError(f"could not create the MariaDB user: {done.stderr.strip()}")

    def alive(self) -> bool:
        """Whether the server still runs."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL after 20 s, then remove the folder; idempotent."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._watchdog is not None:  # the server is gone and reaped: the watchdog finds nothing to stop
            self._watchdog.stdin.close()
            self._watchdog.wait()
            self._watchdog = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> MariaDBServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _server_account() -> pwd.struct_passwd | None:
    """The unprivileged account a server started by root runs as (Debian's `mysql`), or None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("mysql")
    except KeyError:
        return None


def _as_account(account: pwd.struct_passwd | None):
    """What the server's child does before exec: become `account`, and (as root) ask for SIGTERM when the
    parent dies. The kernel does not deliver that signal across the change of user, so a server that runs as
    another user is watched by `_watch` instead."""

    def become() -> None:
        if account is not None:
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
        else:
            die_with_parent()

    return become


# Reads its standard input until the parent closes it or dies (EOF either way), then stops the server: SIGTERM,
# SIGKILL after 20 s. It runs as root, so it may signal the server whoever the server runs as.
_WATCHDOG = """
import os, signal, sys, time
pid, mark = int(sys.argv[1]), sys.argv[2].encode()
sys.stdin.buffer.read()

def server():  # the pid is still the server (not reaped, not reused) and not a zombie
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline, open(f"/proc/{pid}/stat", "rb") as stat:
            return mark in cmdline.read() and stat.read().split(b")")[-1].split()[0] != b"Z"
    except OSError:
        return False

if server():
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while server() and time.monotonic() < deadline:
        time.sleep(0.1)
    if server():
        os.kill(pid, signal.SIGKILL)
"""


def _watch(pid: int, mark: str) -> subprocess.Popen:
    """A watchdog that stops the server `pid` (whose command line holds `mark`) when this process closes its
    pipe or dies, however it dies."""
    import sys

    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(pid), mark], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def _place() -> str:
    for place in ("/dev/shm", "/tmp"):
        if os.path.isdir(place) and os.access(place, os.W_OK):
            return place
    return tempfile.gettempdir()


def _remove_stale_folders() -> None:
    """Folders of servers whose prefkit process is gone (killed before it could clean up)."""
    for folder in Path(_place()).glob(f"{_PREFIX}*"):
        with contextlib.suppress(OSError, ValueError):
            owner = int((folder / _OWNER).read_text())
            if not _pid_alive(owner):
                shutil.rmtree(folder, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
