"""Training output a person can read: one progress bar and a table at each evaluation, never the raw metric
dicts transformers prints; -v brings transformers' own output back (--quiet, nothing but errors, is checked
in test_dpo.py)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from prefkit.cli import cli
from tests.train.conftest import write_config

RAW = "{'loss'"  # how transformers prints its log dicts


def dpo(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.slow
def test_dpo_shows_a_bar_and_tables_not_raw_logs(tmp_path, tiny_model, small_pairs):
    config = write_config(tmp_path / "c.yaml", tiny_model, small_pairs, tmp_path / "out", eval_steps=2)
    shown = dpo("dpo", "--config", str(config))
    assert RAW not in shown.stderr and RAW not in shown.stdout and "it/s]" not in shown.stderr
    assert "dpo" in shown.stderr and "4/4" in shown.stderr and "loss" in shown.stderr
    assert "evaluation at step 2" in shown.stderr and "rewards/accuracies" in shown.stderr

    raw = dpo("-v", "dpo", "--config", str(config), "--output-dir", str(tmp_path / "v"))
    assert RAW in raw.stdout + raw.stderr  # the checks above can see raw dicts when they are there
