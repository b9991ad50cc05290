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


# An AgentBench OS interaction history as its task keeps it (roles user/agent; the instruction is the first user
# message), written for this test in the shape of os_interaction/task.py's one-shot example.
OS_EPISODE = [
    {"role": "user", "content": "You are an assistant that will act like a person... Now, my problem is:\n\n"
     "How many .log files are in /var/log?"},
    {"role": "agent", "content": "Think: I should list them first.\n\nAct: bash\n\n```bash\nls /var/log/*.log\n```"},
    {"role": "user", "content": "The output of the OS:\n\na.log b.log c.log"},
    {"role": "agent", "content": "Think: There are three.\n\nAct: answer(3)"},
]  # fmt: skip


@pytest.mark.parametrize("layout", ["episode", "episodes", "named"])
def test_agentbench_os_trajectories_become_os_tasks(tmp_path, layout):
    from prefkit.corruptions import corrupt
    from prefkit.formats import parse_turn

    data = {"episode": OS_EPISODE, "episodes": [OS_EPISODE, OS_EPISODE[:2]], "named": {"ls": OS_EPISODE}}[layout]
    path = tmp_path / "os.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "tasks.jsonl"
    result = CliRunner().invoke(cli, ["tasks", str(path), "--from", "agentbench-os", "--out", str(out)])
    assert result.exit_code == 0, result.output
    tasks = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(tasks) == 2  # one per distinct context
    assert {task["format"] for task in tasks} == {"os"} and tasks[0]["messages"][0]["role"] == "user"
    for task in tasks:
        reference = task["meta"]["reference"]
        assert reference["role"] == "assistant" and parse_turn("os", reference).valid
        for kind in ("drop_action", "malformed_action", "format_break"):
            assert not parse_turn("os", corrupt(reference, "os", kind)).accepted, kind
        doubled = parse_turn("os", corrupt(reference, "os", "two_actions"))
        assert doubled.accepted and "discipline.multiple_actions" in doubled.codes


def test_agentbench_os_file_of_another_shape_is_one_line_error(tmp_path):
    path = tmp_path / "os.json"
    path.write_text(json.dumps({"a": "not a list"}))
    result = CliRunner().invoke(cli, ["tasks", str(path), "--from", "agentbench-os", "--out", str(tmp_path / "t")])
    assert result.exit_code == 2 and "expected a JSON list of messages" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
