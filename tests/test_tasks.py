"""`prefkit tasks` reads the corpus files as they are: one task per assistant turn with its reference."""

import json

import pytest
from click.testing import CliRunner

from prefkit.cli import cli
from tests.conftest import CORPUS, CORPUS_FILES


@pytest.mark.parametrize("name,source", CORPUS_FILES)
def test_corpus_files_become_tasks(tmp_path, name, source):
    out = tmp_path / "tasks.jsonl"
    result = CliRunner().invoke(cli, ["tasks", str(CORPUS / name), "--from", source, "--out", str(out)])
    assert result.exit_code == 0, result.output
    tasks = [json.loads(line) for line in out.read_text().splitlines()]
    assert tasks and len({t["id"] for t in tasks}) == len(tasks)
    for task in tasks:
        assert task["messages"][-1]["role"] in ("user", "tool")
        assert task["meta"]["reference"]["role"] == "assistant"


def test_alfworld_turn_contexts_grow_by_one_step():
    from prefkit.tasks import load_tasks

    tasks = [
        t for t in load_tasks(CORPUS / "react/alfworld.json", "alfworld-react") if t["meta"]["episode"] == "react_put_0"
    ]
    assert tasks[0]["meta"]["reference"]["content"].startswith("think: First I need to find a spraybottle")
    assert tasks[1]["messages"][-2] == tasks[0]["meta"]["reference"]


def test_wrong_source_for_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(
        cli, ["tasks", str(CORPUS / "react/fever.json"), "--from", "agentbench", "--out", str(tmp_path / "t.jsonl")]
    )
    assert result.exit_code == 2 and "fever.json" in result.stderr


def test_a_required_flag_left_out_is_named_by_click(tmp_path):
    result = CliRunner().invoke(cli, ["tasks", str(CORPUS / "react/fever.json"), "--out", str(tmp_path / "t.jsonl")])
    assert result.exit_code == 2 and "Missing option '--from'" in result.stderr
    assert not (tmp_path / "t.jsonl").exists()
