"""The offline quickstart and its ablation, end to end, as a person runs them: what docs/quickstart.md claims,
variant by variant, with the intervals; the displacement guard on the variant that DPO breaks; and a
terminal that shows progress bars and tables, never transformers' raw metric dicts."""

import json
import re
import subprocess
import sys

import pytest

from prefkit.recipe import Recipe
from tests.train.conftest import ROOT

pytestmark = pytest.mark.slow
ABLATION = ROOT / "pipelines" / "quickstart-ablation.yaml"


def prefkit(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "prefkit", *args], capture_output=True, text=True, timeout=1200, cwd=cwd
    )


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    """The ablation recipe's run directory and what its command printed (one run for every test here)."""
    where = tmp_path_factory.mktemp("ablation")
    run_dir = where / "run"
    done = prefkit("run", str(ABLATION), "--run-dir", str(run_dir), cwd=where)  # paths relative to the recipe
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    print("\n" + (run_dir / "eval" / "report.md").read_text())
    return run_dir, report, done


def summary(run_dir, name):
    return json.loads((run_dir / "adapter" / name / "training_summary.json").read_text())


def test_the_ablations_both_variant_is_the_shipped_quickstart():
    """What the ablation says of `both` is what pipelines/quickstart.yaml (make demo) trains."""
    shipped = Recipe.from_yaml(ROOT / "pipelines" / "quickstart.yaml")
    ablation = Recipe.from_yaml(ABLATION)
    for section in ("tasks", "generate", "filter", "review", "demo_model", "eval"):
        mine, theirs = getattr(ablation, section).model_dump(), getattr(shipped, section).model_dump()
        assert mine == theirs, section
    assert ablation.dpo.variant("both").model_dump(exclude={"output_dir", "extends"}) == shipped.dpo.model_dump(
        exclude={"output_dir", "extends"}
    )


def test_the_shipped_setting_improves_format_and_removes_filler(ablation):
    run_dir, report, done = ablation
    before, both = report["models"]["before"], report["models"]["both"]
    difference = report["differences"]["both - before"]
    assert difference["format_valid"]["low"] > 0 and both["format_valid"]["low"] > before["format_valid"]["high"]
    assert difference["filler"]["high"] < 0 and both["filler"]["mean"] == 0.0
    assert summary(run_dir, "both")["displacement"]["first_displaced_step"] is None
    assert summary(run_dir, "both")["generation_check"]["verdict"] == "ok"
    # What the person saw: a bar per training and the run table with a row per variant, no raw logs.
    shown = done.stderr + done.stdout
    assert "{'loss'" not in shown and "{'train_runtime'" not in shown and "it/s]" not in done.stderr
    assert "demo model (SFT)" in done.stderr and "evaluation at step" in done.stderr and "prefkit run" in done.stderr
    for row in ("dpo sft", "dpo dpo", "dpo both", "eval before", "eval both"):
        assert row in done.stderr, row
    assert "Warning" not in done.stderr, done.stderr


def test_the_sft_term_alone_gives_the_format_and_dpo_adds_the_filler_drop(ablation):
    run_dir, report, _ = ablation
    differences = report["differences"]
    assert differences["sft - before"]["format_valid"]["low"] > 0  # the format gain is the SFT term's
    assert report["models"]["sft"]["filler"]["mean"] > 0  # SFT alone leaves some filler...
    assert differences["both - sft"]["filler"]["high"] < 0  # ...which DPO's preference removes
    assert differences["both - sft"]["format_valid"]["low"] < 0 < differences["both - sft"]["format_valid"]["high"]
    assert summary(run_dir, "sft")["displacement"]["first_displaced_step"] is None


def test_dpo_alone_displaces_the_chosen_turns_and_the_guards_say_so(ablation):
    run_dir, report, done = ablation
    dpo = summary(run_dir, "dpo")
    assert dpo["eval"]["final"]["rewards/accuracies"] == 1.0  # its own metrics look perfect...
    assert dpo["displacement"]["first_displaced_step"] is not None  # ...while chosen lost probability
    assert all(check["chosen_per_token"] < -1.0 for check in dpo["displacement"]["checks"])
    assert dpo["generation_check"]["collapsed_share"] >= 0.5
    assert report["models"]["dpo"]["format_valid"]["high"] < 0.05
    assert "likelihood displacement at step" in done.stderr
    # DPO alone at a gentler learning rate does not break the model, nor does it raise format-valid
    # significantly: the interval of its difference to the base holds zero.
    gentle = report["differences"]["dpo-gentle - before"]["format_valid"]
    assert gentle["low"] < 0 < gentle["high"]
    assert summary(run_dir, "dpo-gentle")["displacement"]["first_displaced_step"] is None


def test_stop_on_displacement_exits_5_and_keeps_only_checkpoints_before_it(ablation, tmp_path):
    run_dir, _, _ = ablation
    out = tmp_path / "stopped"
    settings = {"model": run_dir / "demo-model", "dataset": run_dir / "reviewed.jsonl", "loss_type": "[sigmoid]",
                "loss_weights": "[1.0]", "stop_on_displacement": "true", "eval_steps": 5, "save_steps": 5}  # fmt: skip
    flags = [item for key, value in settings.items() for item in ("--set", f"{key}={value}")]
    config = ROOT / "configs" / "dpo" / "quickstart.yaml"
    done = prefkit("dpo", "--config", str(config), *flags, "--output-dir", str(out), "-q", cwd=tmp_path)
    assert done.returncode == 5, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: training stopped: likelihood displacement at step")
    step = int(re.search(r"at step (\d+)", lines[0]).group(1))
    kept = [int(p.name.removeprefix("checkpoint-")) for p in out.glob("checkpoint-*")]
    assert all(number < step for number in kept) and not (out / "adapter_model.safetensors").exists()
