"""`prefkit review serve`: a local Argilla server with no Elasticsearch and no Docker.

argilla-server 2.8 is installed once into its own virtual environment (its pins clash with what prefkit
runs on), cached under ~/.cache/prefkit; Redis is Debian's `redis-server`, started on a free loopback port
with nothing persisted; the server runs `annotation/launch.py`, which uses the SQL-backed search engine in
`annotation/search_engine.py`. The owner's password and API key are generated into DATA_DIR/credentials.json
(mode 600). Children die with this process (PR_SET_PDEATHSIG) and are stopped in order on SIGINT/SIGTERM.
`check_server` is how both the start-up wait and the review commands ask a server whether it answers.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from prefkit.child import die_with_parent, log_tail
from prefkit.errors import InputError, ServerError
from prefkit.jsonl import read_json
from prefkit.privacy import make_private

log = logging.getLogger(__name__)

ANNOTATION_DIR = Path(__file__).resolve().parents[2] / "annotation"
REQUIREMENTS = ANNOTATION_DIR / "requirements-server.txt"
LAUNCHER = ANNOTATION_DIR / "launch.py"
POSTGRESQL_DRIVERS = ["asyncpg==0.30.0", "psycopg2-binary==2.9.13"]  # async server, sync migrations
DEFAULT_PORT = 6900
READY_TIMEOUT_S = 180


def default_data_dir() -> Path:
    """Where `serve` keeps its database and credentials unless told otherwise ($PREFKIT_ARGILLA_DIR)."""
    if os.environ.get("PREFKIT_ARGILLA_DIR"):
        return Path(os.environ["PREFKIT_ARGILLA_DIR"])
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "prefkit" / "argilla"


def server_env_dir() -> Path:
    """The server's virtual environment, named by the hash of its pins so a change builds a new one."""
    if os.environ.get("PREFKIT_ARGILLA_VENV"):
        return Path(os.environ["PREFKIT_ARGILLA_VENV"])
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "prefkit" / f"argilla-server-2.8.0-py{sys.version_info[0]}{sys.version_info[1]}-{digest}"


def ensure_server_env(postgresql: bool = False, say=log.info) -> Path:
    """Build the server's virtual environment once (locked against parallel builds); its python."""
    env = server_env_dir()
    python = env / "bin" / "python"
    ready = env / ".prefkit-ready"
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.parent / f"{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            say(f"building the Argilla server environment in {env} (once; about a minute)")
            shutil.rmtree(env, ignore_errors=True)
            _pip_run([sys.executable, "-m", "venv", str(env)], env)
            _pip_run(
                [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", str(REQUIREMENTS)], env
            )
            ready.write_text(REQUIREMENTS.read_text())
        if postgresql and not (env / ".prefkit-postgresql").exists():
            say("adding the PostgreSQL drivers to the Argilla server environment")
            _pip_run(
                [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *POSTGRESQL_DRIVERS], env
            )
            (env / ".prefkit-postgresql").touch()
    return python


def _pip_run(command: list[str], env: Path) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        said = [
            line
            for line in (result.stderr or result.stdout).splitlines()
            if line.strip() and not line.startswith("WARNING: Location")
        ]
        raise ServerError(
            f"could not build the Argilla server environment in {env}: "
            f"{said[-1] if said else 'pip failed'} (remove the folder and retry)"
        )


def ensure_credentials(data_dir: Path) -> dict:
    """The owner's generated credentials (created on first use, kept readable by this user only)."""
    path = data_dir / "credentials.json"
    if path.exists():
        credentials = read_json(path, "the owner's credentials", "remove it to generate new ones")
        if not {"username", "password", "api_key"} <= credentials.keys():
            raise InputError(
                "credentials file lacks username/password/api_key: remove it to generate new ones", str(path)
            )
        return credentials
    credentials = {
        "url": None,
        "username": "owner",
        "password": secrets.token_urlsafe(18),
        "api_key": secrets.token_urlsafe(32),
    }
    write_private(path, json.dumps(credentials, indent=2) + "\n")
    return credentials


def write_private(path: Path, text: str) -> None:
    """Write atomically with mode 600 from the first byte (never world-readable, not even briefly)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Connection:
    """Where the server is and the key to use."""

    api_url: str
    api_key: str


def check_server(connection: Connection, timeout: float = 10) -> dict:
    """The signed-in user, or a one-line error saying whether the server is down or the key is wrong."""
    request = urllib.request.Request(
        f"{connection.api_url}/api/v1/me", headers={"X-Argilla-Api-Key": connection.api_key}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            raise ServerError(
                f"the Argilla server at {connection.api_url} rejected the API key (HTTP {error.code}): "
                "check --api-key / ARGILLA_API_KEY"
            ) from None
        raise ServerError(
            f"the Argilla server at {connection.api_url} answered HTTP {error.code} to /api/v1/me: "
            "is this an Argilla 2.x server?"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ServerError(
            f"cannot reach the Argilla server at {connection.api_url} ({reason}): start it with "
            "`prefkit review serve` or check --api-url"
        ) from None


class ArgillaServer:
    """Redis + argilla-server on 127.0.0.1 for one data dir; a context manager that stops both."""

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int | None = None,
        database_url: str | None = None,
        redis_url: str | None = None,
        say=log.info,
        stock: bool = False,
    ):
        self.data_dir = Path(data_dir or default_data_dir()).resolve()
        self.port = port or DEFAULT_PORT
        self.database_url = database_url
        self.redis_url = redis_url
        self.say = say
        self.stock = stock  # without annotation/launch.py's speed-ups: only to measure them
        self.url = f"http://127.0.0.1:{self.port}"
        self.credentials: dict = {}
        self._redis: subprocess.Popen | None = None
        self._server: subprocess.Popen | None = None
        self._lock = None

    def start(self) -> dict:
        """Start Redis and the server, wait until the owner's API key works; the credentials."""
        if self.database_url and not self.database_url.startswith(("sqlite", "postgresql")):
            raise InputError(f"--database-url {self.database_url.split(':')[0]}:… is neither sqlite nor postgresql")
        # The database holds API keys in clear: the whole data dir is private, whoever created it.
        self.data_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        make_private(self.data_dir)
        self._lock = open(self.data_dir / "serve.lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServerError(
                f"another `prefkit review serve` is running on {self.data_dir}: stop it or pass another --data-dir"
            ) from None
        if _port_in_use(self.port):
            raise ServerError(f"port {self.port} on 127.0.0.1 is already in use: pass --port")
        python = ensure_server_env(
            postgresql=bool(self.database_url and "postgresql" in self.database_url), say=self.say
        )
        self.credentials = ensure_credentials(self.data_dir)
        secret = self.data_dir / "auth_secret_key"
        if not secret.exists():
            write_private(secret, secrets.token_hex(32) + "\n")
        try:
            redis_url = self.redis_url or self._start_redis()
            self._start_server(python, redis_url)
        except BaseException:
            self.stop()
            raise
        self.credentials["url"] = self.url
        write_private(self.data_dir / "credentials.json", json.dumps(self.credentials, indent=2) + "\n")
        return self.credentials

    def _start_redis(self) -> str:
        exe = shutil.which("redis-server")
        if exe is None:
            raise ServerError(
                "redis-server is not installed: `apt-get install redis-server` (Debian/Ubuntu), "
                "or pass --redis-url to use a running Redis"
            )
        port = free_port()
        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(exist_ok=True)
        # Only rq's job queue lives in Redis: nothing worth persisting.
        self._redis = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(redis_dir),
                "--logfile",
                str(self.data_dir / "logs" / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._redis.poll() is not None:
                raise ServerError(f"redis-server exited at start: {log_tail(self.data_dir / 'logs' / 'redis.log')}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0"
            time.sleep(0.1)
        raise ServerError("redis-server did not answer PING within 30 s")

    def _start_server(self, python: Path, redis_url: str) -> None:
        command = [
            str(python),
            str(LAUNCHER),
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--redis-url",
            redis_url,
        ]
        if self.database_url:
            command += ["--database-url", self.database_url]
        if self.stock:
            command.append("--stock")
        server_log = self.data_dir / "logs" / "server.log"
        env = {key: value for key, value in os.environ.items() if not key.startswith("ARGILLA_")}
        with open(server_log, "ab") as out:
            self._server = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=die_with_parent,
                umask=0o077,  # the database it creates holds API keys
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        connection = Connection(self.url, self.credentials["api_key"])
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise ServerError(
                    f"the Argilla server exited at start (code {self._server.returncode}); "
                    f"{server_log}: {log_tail(server_log)}"
                )
            with contextlib.suppress(ServerError):  # not up yet, or the owner not created yet
                check_server(connection, timeout=2)
                return
            time.sleep(0.25)
        raise ServerError(f"the Argilla server did not answer within {READY_TIMEOUT_S} s; see {server_log}")

    def alive(self) -> bool:
        """Whether the server (and our Redis, if we started one) still run."""
        return (
            self._server is not None
            and self._server.poll() is None
            and (self._redis is None or self._redis.poll() is None)
        )

    def stop(self) -> None:
        """Stop the server, then Redis (SIGTERM, then SIGKILL after 15 s); idempotent."""
        for process in (self._server, self._redis):
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._server = self._redis = None
        shutil.rmtree(self.data_dir / "tmp", ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> ArgillaServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_forever(server: ArgillaServer) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or until a child dies (exit 1)."""
    stopping = []

    def _stop(signum, frame):
        stopping.append(signum)

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping:
            if not server.alive():
                log.error("the Argilla server stopped unexpectedly; see %s", server.data_dir / "logs")
                return 1
            time.sleep(0.2)
        return 0
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
