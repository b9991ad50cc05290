"""The policy grammar, read in one place: three forms, and one message naming them for anything else."""

import pytest

from prefkit.errors import InputError
from prefkit.policies.spec import FORMS, PolicySpec


def test_the_three_forms():
    server = PolicySpec.parse("openai:qwen3@http://user:pw@127.0.0.1:8000/v1")
    assert (server.kind, server.model, server.base_url) == ("openai", "qwen3", "http://user:pw@127.0.0.1:8000/v1")
    assert "pw" not in server.shown and "pw" not in server.label and server.path is None
    replay = PolicySpec.parse("replay:runs/x/turns.jsonl")
    assert (replay.kind, str(replay.path), replay.label) == ("replay", "runs/x/turns.jsonl", "replay:turns.jsonl")
    local = PolicySpec.parse("runs/x/adapter")
    assert (local.kind, str(local.path), local.label, local.text) == ("local", "runs/x/adapter", "runs/x/adapter",
                                                                     "runs/x/adapter")  # fmt: skip


@pytest.mark.parametrize(
    "text, problem",
    [
        ("openai:qwen3", "expected openai:MODEL@BASE_URL"),
        ("openai:@http://h/v1", "expected openai:MODEL@BASE_URL"),
        ("openai:m@ftp://h/v1", "is not an http(s)://HOST/... URL"),
        ("openai:m@http://h:99999/v1", "is not a valid URL"),
        ("replay:", "replay: needs a file"),
        ("", "an empty policy"),
        ("replay:a\0b.jsonl", "cannot hold a NUL byte"),
        ("runs/a\0b", "cannot hold a NUL byte"),
    ],
)
def test_a_malformed_policy_names_what_is_wrong_and_the_three_forms(text, problem):
    with pytest.raises(ValueError) as caught:
        PolicySpec.parse(text)
    assert problem in str(caught.value) and FORMS in str(caught.value)


def test_a_local_policy_must_name_a_model_folder(tmp_path):
    with pytest.raises(InputError, match="model path not found"):
        PolicySpec.parse(str(tmp_path / "nowhere")).check_folder()
    with pytest.raises(InputError, match="not a model checkpoint or adapter folder"):
        PolicySpec.parse(str(tmp_path)).check_folder()
    (tmp_path / "adapter_config.json").write_text("{}")
    PolicySpec.parse(str(tmp_path)).check_folder()


def test_rollout_and_eval_refuse_a_bad_policy_in_one_line(tmp_path):
    from click.testing import CliRunner

    from prefkit.cli import cli

    tasks = tmp_path / "t.jsonl"
    tasks.write_text("{}\n")
    for argv in (
        ["rollout", str(tasks), "--policy", "openai:m", "--out", str(tmp_path / "o.jsonl")],
        ["eval", "--env", "dbbench", "--tasks", str(tasks), "--model", "openai:m", "--out", str(tmp_path / "e")],
    ):
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 2 and "expected openai:MODEL@BASE_URL" in result.stderr, result.output
        assert result.stderr.count("\n") == 1 and FORMS in result.stderr
