"""`prefkit rollout` with a local checkpoint as the policy: episodes generated in batches by transformers."""

import json

from click.testing import CliRunner

from prefkit.cli import cli
from tests.conftest import CORPUS


def test_a_local_checkpoint_plays_whole_episodes(tmp_path, tiny_model):
    out = tmp_path / "traj.jsonl"
    result = CliRunner().invoke(
        cli,
        ["rollout", str(CORPUS / "agentbench/dbbench_dev.jsonl"), "--policy", str(tiny_model), "--engine", "sqlite",
         "--limit", "4", "--max-tokens", "12", "--concurrency", "4", "--out", str(out), "--json", "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["episodes"] == report["played"] == 4
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["policy"] for r in records} == {str(tiny_model)}
    for record in records:
        assert record["messages"][3]["role"] == "assistant" and record["turns"]
        assert record["status"] in ("completed", "agent validation failed", "task limit reached")
        assert record["usage"]["completion_tokens"] > 0
