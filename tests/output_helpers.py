"""What the tests of outputs share: running a command (in a process or in this one), checking that it ended in
one error line, real read-only folders and full disks (a tmpfs where the tests may mount, else a 0555 folder
and a file-size limit), and checking that nothing partial was left."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def prefkit(
    argv: list[str], cwd: Path, preexec: Callable[[], None] | None = None, keys: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "prefkit", *argv],
        capture_output=True,
        text=True,
        input=keys,
        stdin=None if keys is not None else subprocess.DEVNULL,
        cwd=cwd,
        timeout=300,
        preexec_fn=preexec,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def invoke(argv: list[str], keys: str | None = None) -> subprocess.CompletedProcess:
    """The command run in this process (click's runner: the same code path, without a new interpreter's start);
    an exception that escaped the command comes back as a traceback on stderr."""
    import traceback

    from click.testing import CliRunner

    from prefkit.cli import cli

    result = CliRunner().invoke(cli, argv, input=keys)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(argv, result.exit_code, result.stdout, stderr)


def assert_one_error_line(result: subprocess.CompletedProcess, code: int, *words: str) -> None:
    shown = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == code, result.stderr[-3000:]
    assert len(shown) == 1 and shown[0].startswith("error: "), result.stderr[-3000:]
    for word in words:
        assert word in shown[0], shown[0]


def _mount(target: Path, options: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    return done.returncode == 0


def _unmount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], check=True)


@contextlib.contextmanager
def read_only_folder(parent: Path) -> Iterator[Path]:
    """An empty folder nothing can be written in: a read-only tmpfs, or without mounting a 0555 folder."""
    folder = parent / "read-only"
    folder.mkdir()
    if _mount(folder, "ro,size=64k"):
        try:
            yield folder
        finally:
            _unmount(folder)
        return
    if os.geteuid() == 0:
        pytest.skip("root cannot make a read-only folder without mount")
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


@contextlib.contextmanager
def full_disk(parent: Path, size: str = "256k", free: int = 4096) -> Iterator[tuple[Path, Callable[[], None] | None]]:
    """A folder on a disk with `free` bytes left (a filled tmpfs), or a file-size limit of that much for the
    command's process where mounting is not possible; yields (folder, preexec for the command)."""
    folder = parent / "full"
    folder.mkdir()
    if _mount(folder, f"size={size}"):
        try:
            with (folder / "filler").open("wb") as handle:
                handle.write(b"\0" * (shutil.disk_usage(folder).free - free))
            yield folder, None
        finally:
            _unmount(folder)
        return

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (free, free))

    yield folder, limit


def nothing_partial(place: Path, command: str) -> None:
    """What a failed command leaves in its output place is whole: no temp files, JSON that parses, complete
    JSON Lines; a model folder the command made is gone, and a DPO run keeps only finished checkpoints."""
    for path in place.rglob("*"):
        assert not path.name.endswith(".tmp"), path
        if path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                json.loads(line)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        if path.is_dir() and path.name.startswith("checkpoint-"):
            assert (path / "trainer_state.json").exists(), path
    if command in ("demo-model", "merge", "eval"):
        assert not (place / "out").exists()
