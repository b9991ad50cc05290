"""The offline quickstart recipe end to end, as shipped and as a person runs it: the aligned demo model
follows the format more often and uses less filler than before, with 95% intervals that do not overlap,
and the terminal shows progress bars and tables, never transformers' raw metric dicts."""

import json
import subprocess
import sys

import pytest

from tests.train.conftest import ROOT


@pytest.mark.slow
def test_quickstart_shows_the_improvement(tmp_path):
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefkit",
            "run",
            str(ROOT / "pipelines" / "quickstart.yaml"),
            "--run-dir",
            str(run_dir),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,  # the recipe's paths are relative to its own folder, not to where it runs
    )
    assert done.returncode == 0, done.stderr[-2000:]
    state = json.loads((run_dir / "state.json").read_text())
    assert list(state) == ["tasks", "generate", "filter", "review", "demo_model", "dpo", "eval"]
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    before, after = report["models"]["before"], report["models"]["after"]
    print(
        "\nquickstart: "
        + ", ".join(
            f"{m} {before[m]['mean']:.3f} -> {after[m]['mean']:.3f}"
            for m in ("format_valid", "filler", "thought_tokens")
        )
    )
    assert after["format_valid"]["low"] > before["format_valid"]["high"]
    assert after["filler"]["high"] < before["filler"]["low"]
    assert (run_dir / "eval" / "chart.png").exists()
    # What the person saw: a bar per training and the run table, no raw logs.
    assert "{'loss'" not in done.stderr + done.stdout and "{'train_runtime'" not in done.stderr + done.stdout
    assert "demo model (SFT)" in done.stderr and "dpo" in done.stderr and "prefkit run" in done.stderr
    assert "evaluation at step" in done.stderr and "it/s]" not in done.stderr
    assert "Warning" not in done.stderr, done.stderr
