"""Every command that writes, walked through the ways an output can be wrong: a read-only folder, a full disk,
a path that is a folder (or a file where a folder goes), an output that is one of the inputs. Each must end
in one `error:` line with its exit code, no traceback, its inputs byte-identical and nothing partial left.

Read-only folders and full disks are real: a read-only tmpfs and a tmpfs filled to its last page, mounted
here when the tests may mount (root, as on the CI machines); otherwise a 0555 folder and a file-size limit
(RLIMIT_FSIZE) stand in for them."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import CORPUS
from tests.output_helpers import (
    assert_one_error_line,
    full_disk,
    invoke,
    nothing_partial,
    prefkit,
    read_only_folder,
    snapshot,
)

pytestmark = pytest.mark.slow
pytest.importorskip("trl")

CORPUS_FILE = CORPUS / "react" / "alfworld_3prompts.json"


@dataclass(frozen=True)
class Command:
    """A command line with its output at OUT; `output` is "file" or "folder"; `source` names the workspace
    input an output=input case points OUT at."""

    argv: Callable[[Path, str], list[str]]
    output: str
    source: str | None
    fills_disk: bool = True  # can run here until it writes (review pull needs a server: tests/review)
    keys: str | None = None  # what a person types on stdin


COMMANDS = {
    "tasks": Command(lambda w, out: ["tasks", str(w / "trajectories.json"), "--from", "alfworld-react",
                                     "--out", out, "-q"], "file", "trajectories.json"),
    "generate": Command(lambda w, out: ["generate", str(w / "tasks.jsonl"), "--strategy", "corrupt",
                                        "--out", out, "-q"], "file", "tasks.jsonl"),
    "filter": Command(lambda w, out: ["filter", str(w / "candidates.jsonl"), "--out", out, "-q"], "file",
                      "candidates.jsonl"),
    "review auto": Command(lambda w, out: ["review", "auto", str(w / "candidates.jsonl"), "--out", out, "-q"],
                           "file", "candidates.jsonl"),
    "review tui": Command(lambda w, out: ["review", "tui", str(w / "candidates.jsonl"), "--out", out], "file",
                          "candidates.jsonl", keys="a\nb\n" * 100),
    "review pull": Command(lambda w, out: ["review", "pull", "--dataset", "d", "--api-url", "http://127.0.0.1:9",
                                           "--api-key", "k", "--out", out], "file", None, fills_disk=False),
    "demo-model": Command(lambda w, out: ["demo-model", "--tasks", str(w / "tasks.jsonl"), "--out", out,
                                          "--epochs", "1", "--hidden-size", "32", "--layers", "1", "-q"],
                          "folder", "tasks.jsonl"),
    "dpo": Command(lambda w, out: ["dpo", "--config", str(w / "dpo.yaml"), "--output-dir", out, "-q"], "folder",
                   "model"),
    "merge": Command(lambda w, out: ["merge", str(w / "adapter"), "--out", out], "folder", "adapter"),
    "eval": Command(lambda w, out: ["eval", "--model", str(w / "model"), "--tasks", str(w / "eval.jsonl"),
                                    "--format", "alfworld", "--out", out, "--limit", "2", "-q"], "folder", "model"),
    "run": Command(lambda w, out: ["run", str(w / "recipe" / "fast.yaml"), "--run-dir", out, "-q"], "folder",
                   "recipe"),
    "rollout": Command(lambda w, out: ["rollout", str(w / "dbbench.jsonl"), "--policy", f"replay:{w / 'replay.jsonl'}",
                                       "--engine", "sqlite", "--out", out, "-q"], "file", "dbbench.jsonl"),
    "review serve": Command(lambda w, out: ["review", "serve", "--data-dir", out, "--port", "1"], "folder", None,
                            fills_disk=False),
}  # fmt: skip


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Inputs for every command: trajectories, tasks, candidate pairs, a tiny model, an adapter of it, a DPO
    config and a fast recipe."""
    from prefkit.generate import GenerateConfig, generate_file
    from prefkit.jsonl import read_jsonl
    from prefkit.tasks import TasksConfig, make_tasks
    from prefkit.train.config import load_dpo_config
    from prefkit.train.dpo import dpo_stage
    from prefkit.train.tiny import build_tiny_model, texts_of_pairs

    w = tmp_path_factory.mktemp("workspace")
    shutil.copy(CORPUS_FILE, w / "trajectories.json")
    tasks = TasksConfig(source="alfworld-react", path=[w / "trajectories.json"], max_prompt_chars=1200, eval_share=0.2)
    make_tasks(tasks, w / "tasks.jsonl", w / "eval.jsonl")
    generate_file(GenerateConfig(strategy="corrupt"), w / "tasks.jsonl", w / "candidates.jsonl")
    build_tiny_model(w / "model", texts_of_pairs(read_jsonl(w / "candidates.jsonl")), hidden_size=32, heads=2,
                     kv_heads=1, intermediate_size=64, vocab_size=1024)  # fmt: skip
    pairs = sorted(read_jsonl(w / "candidates.jsonl"), key=lambda row: len(json.dumps(row)))[:16]
    (w / "pairs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in pairs))
    config = {"model": str(w / "model"), "dataset": str(w / "pairs.jsonl"), "output_dir": str(w / "adapter"),
              "max_length": 1024, "max_steps": 1, "save_steps": 1, "per_device_train_batch_size": 4,
              "eval_split": 0.0, "logging_steps": 1, "lora": {"r": 4, "alpha": 8}}  # fmt: skip
    (w / "dpo.yaml").write_text(yaml.safe_dump(config))
    dpo_stage(load_dpo_config(w / "dpo.yaml"))
    (w / "recipe").mkdir()
    recipe = {"name": "fast", "tasks": {"source": "alfworld-react", "path": [str(w / "trajectories.json")]},
              "generate": {"strategy": "corrupt"}, "filter": {}}  # fmt: skip
    (w / "recipe" / "fast.yaml").write_text(yaml.safe_dump(recipe))
    from tests.rollout_helpers import gold_replay

    shutil.copy(CORPUS / "agentbench" / "dbbench_dev.jsonl", w / "dbbench.jsonl")
    gold_replay(w / "replay.jsonl")
    for path in w.rglob("*"):
        if path.is_file():
            path.chmod(0o644)
    return w


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_read_only_output_folder_is_one_line_and_exit_2(command, workspace, tmp_path):
    before = snapshot(workspace)
    with read_only_folder(tmp_path) as folder:
        result = invoke(COMMANDS[command].argv(workspace, str(folder / "out")), COMMANDS[command].keys)
        assert_one_error_line(result, 2, str(folder))
        assert not list(folder.iterdir())
    assert snapshot(workspace) == before


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_output_of_the_wrong_kind_is_one_line_and_exit_2(command, workspace, tmp_path):
    """A file output that is a folder, a folder output that is a file: both stay exactly as they were."""
    spec = COMMANDS[command]
    target = tmp_path / "in-the-way"
    if spec.output == "file":
        target.mkdir()
        (target / "mine.txt").write_text("mine")
    else:
        target.write_text("mine")
    before, theirs = snapshot(workspace), snapshot(tmp_path)
    result = invoke(spec.argv(workspace, str(target)), spec.keys)
    assert_one_error_line(result, 2, str(target))
    assert snapshot(workspace) == before and snapshot(tmp_path) == theirs


@pytest.mark.parametrize("command", [name for name, spec in COMMANDS.items() if spec.source])
def test_an_output_that_is_an_input_is_one_line_and_exit_2(command, workspace, tmp_path):
    spec = COMMANDS[command]
    before = snapshot(workspace)
    result = invoke(spec.argv(workspace, str(workspace / spec.source)), spec.keys)
    assert_one_error_line(result, 2)
    assert snapshot(workspace) == before


@pytest.mark.parametrize("command", [name for name, spec in COMMANDS.items() if spec.fills_disk])
def test_a_full_disk_is_one_line_and_exit_1_keeping_only_whole_files(command, workspace, tmp_path):
    before = snapshot(workspace)
    spec = COMMANDS[command]
    with full_disk(tmp_path) as (folder, preexec):
        result = prefkit(spec.argv(workspace, str(folder / "out")), tmp_path, preexec, spec.keys)
        assert_one_error_line(result, 1, "disk is full" if preexec is None else "size limit")
        nothing_partial(folder, command)
    assert snapshot(workspace) == before


def test_generate_after_a_full_disk_resumes_to_the_same_pairs(workspace, tmp_path):
    """The pairs written before the disk filled are kept whole, and the next run adds exactly the rest."""
    clean = tmp_path / "clean.jsonl"
    assert prefkit(COMMANDS["generate"].argv(workspace, str(clean)), tmp_path).returncode == 0
    with full_disk(tmp_path, "8m") as (folder, preexec):
        if preexec is not None:
            pytest.skip("needs a real full disk to free again")
        out = folder / "pairs.jsonl"
        filler = folder / "filler"
        os.truncate(filler, filler.stat().st_size - 60 * 1024)  # room for a few pairs
        first = prefkit(COMMANDS["generate"].argv(workspace, str(out)), tmp_path)
        assert_one_error_line(first, 1, "disk is full")
        kept = out.read_text().splitlines()
        assert kept and all(json.loads(line) for line in kept)
        (folder / "filler").unlink()
        again = prefkit(COMMANDS["generate"].argv(workspace, str(out)), tmp_path)
        assert again.returncode == 0, again.stderr
        assert sorted(out.read_text().splitlines()) == sorted(clean.read_text().splitlines())


def test_review_pull_refuses_the_same_file_for_out_and_dropped(tmp_path):
    same = str(tmp_path / "x.jsonl")
    result = invoke(["review", "pull", "--dataset", "d", "--api-url", "http://127.0.0.1:9", "--api-key", "k",
                     "--out", same, "--dropped", same])  # fmt: skip
    assert_one_error_line(result, 2, "are the same file")
    assert not (tmp_path / "x.jsonl").exists()


def test_an_output_folder_holding_the_users_files_is_refused_unless_overwrite(workspace, tmp_path):
    """dpo --output-dir, demo-model --out, eval --out, merge --out and run --run-dir: a folder with files
    prefkit did not write is left alone; --overwrite writes into it and keeps the user's other files."""
    for command in ("dpo", "demo-model", "eval", "merge", "run"):
        mine = tmp_path / command
        mine.mkdir()
        (mine / "README.md").write_text("my notes")
        result = invoke(COMMANDS[command].argv(workspace, str(mine)))
        assert_one_error_line(result, 2, "already holds files prefkit did not write", "--overwrite")
        assert snapshot(mine) == {"README.md": b"my notes"}
    forced = invoke([*COMMANDS["eval"].argv(workspace, str(tmp_path / "eval")), "--overwrite"])
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "eval" / "README.md").read_text() == "my notes" and (tmp_path / "eval" / "report.json").exists()
    again = invoke(COMMANDS["eval"].argv(workspace, str(tmp_path / "eval")))  # now prefkit's folder
    assert again.returncode == 0, again.stderr


def test_merge_never_writes_over_the_base_model_or_the_adapter(workspace):
    before = snapshot(workspace)
    for target in (workspace / "model", workspace / "adapter", workspace / "adapter" / "merged", workspace):
        result = invoke(["merge", str(workspace / "adapter"), "--out", str(target)])
        assert_one_error_line(result, 2)
    assert snapshot(workspace) == before


def test_a_failed_dpo_run_keeps_no_half_written_checkpoint(tmp_path):
    from prefkit.train.dpo import drop_torn_checkpoints

    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-4").mkdir()
    (tmp_path / "checkpoint-4" / "model.safetensors").write_bytes(b"half")
    drop_torn_checkpoints(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]


def test_a_pipe_or_a_path_with_a_nul_byte_is_never_an_output(workspace, tmp_path):
    """A path that is not a regular file (a named pipe here; /dev/null is one too) would be replaced by the
    atomic rename: refused. (A pipe in tmp_path, so that a regression replaces nothing that matters.)"""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    for command in ("tasks", "filter", "review auto"):
        result = invoke(COMMANDS[command].argv(workspace, str(pipe)))
        assert_one_error_line(result, 2, "is not a regular file")
        assert pipe.is_fifo()
        result = invoke(COMMANDS[command].argv(workspace, str(tmp_path / "out\0.jsonl")))
        assert result.returncode == 2 and "NUL byte" in result.stderr


def test_damaged_files_prefkit_reads_back_are_one_line(workspace, tmp_path):
    """An adapter_config.json, a run's state.json or the owner's credentials that do not parse: one line, exit 2."""
    adapter = tmp_path / "adapter"
    shutil.copytree(workspace / "adapter", adapter)
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": ')
    assert_one_error_line(invoke(["merge", str(adapter), "--out", str(tmp_path / "m")]), 2, "adapter")
    data_dir = tmp_path / "argilla"
    data_dir.mkdir()
    (data_dir / "credentials.json").write_text("[1, 2]")
    result = invoke(["review", "status", "--dataset", "d", "--data-dir", str(data_dir)])
    assert_one_error_line(result, 2, "credentials.json")


def test_a_users_error_on_a_nearly_full_disk_is_still_the_users_error(tmp_path):
    from prefkit.errors import InputError
    from prefkit.outputs import disk_errors

    with full_disk(tmp_path, free=0) as (folder, preexec):
        if preexec is not None:
            pytest.skip("needs a real full disk")
        with pytest.raises(InputError, match="bad line"), disk_errors(folder):
            raise InputError("bad line")
        with pytest.raises(OSError, match="No space left"), disk_errors(folder):
            raise RuntimeError("PytorchStreamWriter failed writing file data/0")
