"""Values a user can pass that are out of range or malformed are refused before any work: one line, exit 2."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from prefkit.cli import cli

ROOT = Path(__file__).resolve().parents[2]
PAIRS = ROOT / "data" / "pairs" / "tiny-pairs.jsonl"
CONFIG = ROOT / "configs" / "dpo" / "tiny-cpu.yaml"


def cases(tmp: Path) -> list[tuple[list[str], str]]:
    tasks = tmp / "tasks.jsonl"
    tasks.write_text('{"id": "a", "messages": [{"role": "user", "content": "hi"}]}\n')
    spec = tmp / "spec.yaml"
    spec.write_text("arguments:\n  Action: '(['\n")
    out = str(tmp / "out")
    return [
        (["eval", "--model", "m", "--tasks", str(tasks), "--format", "react", "--out", out, "--samples", "0"],
         "'samples'"),
        (["eval", "--model", "openai:m@ftp://h/v1", "--tasks", str(tasks), "--format", "react", "--out", out],
         "is not an http(s)://HOST/... URL"),
        (["eval", "--model", "../up=m", "--tasks", str(tasks), "--format", "react", "--out", out], "a label is"),
        (["generate", str(tasks), "--base-url", "file:///etc/passwd", "--model", "m", "--out", out],
         "is not an http(s)://HOST/... URL"),
        (["demo-model", "--out", out, "--epochs", "-1"], "'epochs'"),
        (["demo-model", "--out", out, "--hidden-size", "30"], "'hidden_size'"),
        (["check", "--format", "react", "--text", "Action: x", "--spec", str(spec)], "not a valid regular expression"),
        (["dpo", "--config", str(CONFIG), "--set", "beta=[1, 2", "--check-only"], "is not valid YAML"),
        (["dpo", "--config", str(CONFIG), "--set", "nokey", "--check-only"], "expected key=value"),
        (["review", "serve", "--port", "70000", "--data-dir", out], "70000"),
        (["review", "serve", "--port", "0", "--data-dir", out], "0"),
        (["tasks", str(tasks), "--from", "nonsense", "--out", out], "'nonsense' is not one of"),
        (["tasks", str(tasks), "--out", out], "Missing option '--from'. Choose from: react,"),
        (["no-such-command"], "No such command"),
    ]  # fmt: skip


def test_out_of_range_and_malformed_values_are_refused_before_any_work(tmp_path):
    pytest.importorskip("trl")
    for argv, message in cases(tmp_path):
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 2, (argv, result.output)
        assert message in result.stderr, (argv, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, (argv, result.stderr)
        assert result.exception is None or isinstance(result.exception, SystemExit), (argv, result.exception)
        assert not (tmp_path / "out").exists(), argv
