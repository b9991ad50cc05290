"""One writer per output: a second `generate` on the same output, or a second `run` on the same run dir,
stops at once naming the first one's PID; a lock left by a process killed with -9 is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from prefkit.errors import OutputLocked
from prefkit.jsonl import write_jsonl
from prefkit.lock import OutputLock
from prefkit.testing.standin import Behaviour, StandinServer
from tests.conftest import tasks_of
from tests.generate_helpers import PREFKIT, lines, write_recipe


def run(*args: str):
    """A second prefkit in this process (the first runs in a subprocess): the lock is per open file, so the
    two conflict exactly as two processes do."""
    from click.testing import CliRunner

    from prefkit.cli import cli

    return CliRunner().invoke(cli, list(args))


@pytest.fixture()
def tasks_file(tmp_path, corpus_tasks):
    path = tmp_path / "tasks.jsonl"
    write_jsonl(path, tasks_of(corpus_tasks, "alfworld")[:16])
    return path


def start(*args: str) -> subprocess.Popen:
    env = dict(os.environ, OPENAI_API_KEY="sk-test")
    return subprocess.Popen([*PREFKIT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    with OutputLock(tmp_path / "out.lock", "output out.jsonl"):
        with pytest.raises(
            OutputLocked, match=rf"output out.jsonl is in use by another prefkit process \(pid {os.getpid()},"
        ):
            OutputLock(tmp_path / "out.lock", "output out.jsonl").acquire()
    assert not (tmp_path / "out.lock").exists()
    with OutputLock(tmp_path / "out.lock", "output out.jsonl"):  # released: free again
        pass


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    code = (
        "import sys, time; from prefkit.lock import OutputLock; "
        f"OutputLock({str(tmp_path / 'x.lock')!r}, 'x').acquire(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(OutputLocked, match=f"pid {holder.pid}"):
        OutputLock(tmp_path / "x.lock", "x").acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / "x.lock").read_text().strip() == str(holder.pid)  # the dead holder's file is still there
    with OutputLock(tmp_path / "x.lock", "x"):
        assert (tmp_path / "x.lock").read_text().strip() == str(os.getpid())


def test_concurrent_generate_on_one_output_refuses_the_second(tmp_path, tasks_file):
    with StandinServer(Behaviour(latency=0.05)) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server.url, concurrency=2)
        out = tmp_path / "pairs.jsonl"
        first = start("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "-q")
        wait_for(lambda: len(lines(out)) >= 2)
        second = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "-q")
        assert second.exit_code == 2
        assert f"output {out} is in use by another prefkit process (pid {first.pid}" in second.stderr
        assert second.stderr.strip().count("\n") == 0
        first.wait(timeout=120)
        assert first.returncode == 0, first.stderr.read()
    rows = lines(out)
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids))
    finished = [row["meta"]["task_id"] for row in rows] + [
        r["task_id"] for r in lines(tmp_path / "pairs.skipped.jsonl")
    ]
    assert sorted(finished) == sorted(task["id"] for task in lines(tasks_file))


def test_generate_killed_with_9_leaves_a_lock_the_next_run_takes_over(tmp_path, tasks_file):
    with StandinServer(Behaviour(latency=0.05)) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server.url, concurrency=2)
        out = tmp_path / "pairs.jsonl"
        first = start("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "-q")
        wait_for(lambda: len(lines(out)) >= 2)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert (tmp_path / "pairs.lock").exists()
        again = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "-q")
    assert again.exit_code == 0, again.output
    ids = [row["id"] for row in lines(out)]
    assert ids and len(ids) == len(set(ids))
    assert not (tmp_path / "pairs.lock").exists()


def test_concurrent_run_on_one_run_dir_refuses_the_second(tmp_path, tasks_file):
    with StandinServer(Behaviour(latency=0.05)) as server:
        recipe = tmp_path / "recipe.yaml"
        teacher = {"base_url": server.url, "model": "teacher-model", "concurrency": 1}
        recipe.write_text(yaml.safe_dump({"tasks": {"source": "tasks", "path": str(tasks_file)},
                                          "generate": {"strategy": "contrastive", "teacher": teacher}}))  # fmt: skip
        run_dir = tmp_path / "run"
        first = start("run", str(recipe), "--run-dir", str(run_dir), "-q")
        wait_for(lambda: len(lines(run_dir / "candidates.jsonl")) >= 1)
        second = run("run", str(recipe), "--run-dir", str(run_dir), "-q")
        assert second.exit_code == 2
        assert f"run directory {run_dir} is in use by another prefkit process (pid {first.pid}" in second.stderr
        first.wait(timeout=120)
        assert first.returncode == 0, first.stderr.read()
    again = run("run", str(recipe), "--run-dir", str(run_dir))
    assert again.exit_code == 0 and "skipped (unchanged)" in again.stderr
