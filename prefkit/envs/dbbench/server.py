"""A MariaDB server of prefkit's own for DBBench episodes: Debian's `mariadbd` in a fresh data dir, reachable
only through a Unix socket in a 0700 folder (no TCP port), with a generated user and password (root has no
password, and only this process can reach the socket); stopped with the run, and sent SIGTERM by the kernel
if the thread that started it dies first, so start it from the main thread. Folders left by a run that was
killed are removed by the next start."""

from __future__ import annotations

import contextlib
import logging
import os
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
        data, errors = self.folder / "data", self.folder / "error.log"
        user = ["--user=root"] if os.geteuid() == 0 else []
        initialised = subprocess.run(
            [install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
             "--skip-test-db", *user],
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
             *([f"--max-statement-time={self.statement_timeout:g}"] if self.statement_timeout else []),
             # MySQL 8's defaults (AgentBench's `mysql` image): the table hash is an MD5 of utf8mb4 text
             "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci", *user],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent, start_new_session=True,
        )  # fmt: skip
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
            f"GRANT ALL PRIVILEGES ON *.* TO '{self.user}'@'localhost'; FLUSH PRIVILEGES;"
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
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> MariaDBServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


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
