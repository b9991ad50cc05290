"""Training output a person can read: one progress bar and a table at each evaluation, never the raw metric
dicts transformers prints; -v brings transformers' own output back, --quiet shows nothing but errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.train.conftest import write_config

RAW = "{'loss'"  # how transformers prints its log dicts


def dpo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prefkit", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_dpo_shows_a_bar_and_tables_not_raw_logs(tmp_path, tiny_model, small_pairs):
    config = write_config(tmp_path / "c.yaml", tiny_model, small_pairs, tmp_path / "out", eval_steps=2)
    shown = dpo("dpo", "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    assert RAW not in shown.stderr and RAW not in shown.stdout and "it/s]" not in shown.stderr
    assert "dpo" in shown.stderr and "4/4" in shown.stderr and "loss" in shown.stderr
    assert "evaluation at step 2" in shown.stderr and "rewards/accuracies" in shown.stderr

    quiet = dpo("dpo", "--config", str(config), "--output-dir", str(tmp_path / "q"), "-q")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""

    raw = dpo("-v", "dpo", "--config", str(config), "--output-dir", str(tmp_path / "v"))
    assert raw.returncode == 0 and RAW in raw.stdout + raw.stderr  # the check above can see raw dicts
