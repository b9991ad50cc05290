"""`-v` gives transformers' own training output back (prefkit's bar and tables instead of it are checked
where a person would see them: tests/test_stage.py and the quickstart; `--quiet` in test_dpo.py)."""

from __future__ import annotations

from click.testing import CliRunner

from prefkit.cli import cli
from tests.train.conftest import write_config


def test_verbose_training_shows_transformers_own_logs(tmp_path, tiny_model, small_pairs):
    config = write_config(tmp_path / "c.yaml", tiny_model, small_pairs, tmp_path / "out", max_steps=2, eval_split=0)
    raw = CliRunner().invoke(cli, ["-v", "dpo", "--config", str(config)])
    assert raw.exit_code == 0, raw.output
    assert "{'loss'" in raw.stdout + raw.stderr  # the checks elsewhere would see raw dicts if they were there
