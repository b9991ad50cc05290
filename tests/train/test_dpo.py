"""`prefkit dpo` and `prefkit merge` on a tiny in-process Qwen3, on CPU."""

import json
import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from prefkit.cli import cli
from tests.train.conftest import ROOT, write_config


def run_dpo(*args):
    return CliRunner().invoke(cli, ["dpo", *args, "-q"])


def test_peft_settings_pass_through_to_lora_config(tmp_path, tiny_model, small_pairs):
    from peft import LoraConfig

    from prefkit.train.config import load_dpo_config

    lora = {
        "r": 4,
        "alpha": 8,
        "use_dora": True,
        "use_rslora": True,
        "bias": "lora_only",
        "modules_to_save": ["lm_head"],
    }
    config = load_dpo_config(write_config(tmp_path / "c.yaml", tiny_model, small_pairs, tmp_path / "out", lora=lora))
    built = LoraConfig(**config.lora_settings)
    assert (built.r, built.lora_alpha, built.use_dora, built.use_rslora, built.bias) == (4, 8, True, True, "lora_only")
    assert set(built.modules_to_save) == {"lm_head"}
    assert set(built.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}  # prefkit's default kept


def test_trains_lora_adapter_and_writes_summary(tmp_path, tiny_model, small_pairs):
    import warnings

    config = write_config(tmp_path / "c.yaml", tiny_model, small_pairs, tmp_path / "out")
    filters = list(warnings.filters)
    result = run_dpo("--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # -q: nothing but errors; the summary is the JSON on stdout
    assert warnings.filters == filters and "TQDM_DISABLE" not in os.environ  # nothing process-wide left behind
    out = tmp_path / "out"
    assert (out / "adapter_model.safetensors").exists() and (out / "adapter_config.json").exists()
    assert (out / "tokenizer_config.json").exists()
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["trainable_names"] and all("lora_" in name for name in summary["trainable_names"])
    assert {"q_proj", "k_proj", "v_proj", "o_proj"} == {
        n.split(".lora_")[0].rsplit(".", 1)[1] for n in summary["trainable_names"]
    }
    assert summary["trainable_parameters"] < summary["total_parameters"] / 10
    logged = [entry for entry in summary["log_history"] if "loss" in entry]
    assert logged and all("rewards/accuracies" in entry for entry in logged)
    assert "rewards/margins" in summary["train"]["final"] and "loss" in summary["eval"]["final"]
    assert summary["data"]["train"] + summary["data"]["eval"] == 48 and summary["data"]["eval"] >= 9


def test_resume_continues_from_last_checkpoint(tmp_path, tiny_model, small_pairs):
    config = write_config(tmp_path / "c.yaml", tiny_model, small_pairs, tmp_path / "out", eval_split=0)
    assert run_dpo("--config", str(config)).exit_code == 0
    assert (tmp_path / "out" / "checkpoint-4").exists()
    resumed = run_dpo("--config", str(config), "--set", "max_steps=6", "--resume")
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((tmp_path / "out" / "training_summary.json").read_text())
    assert summary["steps"] == 6
    steps = [entry["step"] for entry in summary["log_history"] if "loss" in entry]
    assert steps[:4] == [1, 2, 3, 4] and steps[-2:] == [5, 6]  # history restored, then two new steps


def test_resume_without_checkpoint_is_an_error(tmp_path, tiny_model, small_pairs):
    config = write_config(tmp_path / "c.yaml", tiny_model, small_pairs, tmp_path / "none")
    result = run_dpo("--config", str(config), "--resume")
    assert result.exit_code == 2 and "no checkpoint" in result.stderr


def test_merge_gives_a_loadable_model_that_differs_from_base(tmp_path, tiny_model, small_pairs):
    import torch
    from transformers import AutoModelForCausalLM

    config = write_config(
        tmp_path / "c.yaml", tiny_model, small_pairs, tmp_path / "out", eval_split=0, learning_rate=5e-2
    )
    assert run_dpo("--config", str(config)).exit_code == 0
    result = CliRunner().invoke(cli, ["merge", str(tmp_path / "out"), "--out", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    ids = torch.tensor([[1, 5, 9, 12, 40, 2]])
    with torch.no_grad():
        assert not torch.allclose(merged(ids).logits, base(ids).logits, atol=1e-5)
    assert not any("lora" in name for name, _ in merged.named_parameters())


@pytest.fixture()
def no_model_loading(monkeypatch):
    """Fail the test if anything tries to load model weights."""
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the error")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)


@pytest.mark.parametrize(
    "extra,message",
    [
        ({"betta": 0.1}, "unknown key 'betta' (neither a prefkit nor a TRL DPOConfig setting); did you mean 'beta'?"),
        ({"max_prompt_length": 128}, "'max_prompt_length' is no longer a DPOConfig setting"),
        ({"lora": {"rank": 8}}, "unknown key 'lora.rank'"),
        ({"beta": "high"}, "'beta': expected a number (TRL's DPOConfig.beta), got 'high'"),
        (
            {"learning_rte": 1e-4},
            "unknown key 'learning_rte' (neither a prefkit nor a TRL DPOConfig setting); did you mean 'learning_rate'?",
        ),
        (
            {"lora": {"use_dorra": True}},
            "unknown key 'lora.use_dorra' (not a peft LoraConfig setting); did you mean 'lora.use_dora'?",
        ),
        ({"max_steps": 2.5}, "'max_steps': expected a whole number (TRL's DPOConfig.max_steps), got 2.5"),
        ({"loss_type": ["nonsense"]}, "loss_type 'nonsense' is not one of TRL's"),
        ({"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0]}, "loss_weights has 1 values for 2 loss types"),
        ({"lr_scheduler_type": "zigzag"}, "TRL rejected the settings"),
        ({"load_in_4bit": True}, "load_in_4bit needs a CUDA GPU"),
        ({"max_length": 16}, "do not fit max_length=16"),
    ],
)
def test_bad_config_fails_before_the_model_loads(tmp_path, tiny_model, small_pairs, no_model_loading, extra, message):
    config = write_config(tmp_path / "c.yaml", tiny_model, small_pairs, tmp_path / "out", **extra)
    result = run_dpo("--config", str(config))
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.strip().count("\n") == 0


def test_bad_data_fails_before_the_model_loads(tmp_path, tiny_model, small_pairs, no_model_loading):
    row = json.loads(small_pairs.read_text().splitlines()[0])
    same = dict(row, rejected=row["chosen"], id="same")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(same) + "\n")
    result = run_dpo("--config", str(write_config(tmp_path / "c.yaml", tiny_model, bad, tmp_path / "o")))
    assert result.exit_code == 2 and "chosen identical to rejected" in result.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(row) + "\n" + '{"prompt": [{"role": "user"}], "chosen": "x"}\n')
    result = run_dpo("--config", str(write_config(tmp_path / "c.yaml", tiny_model, broken, tmp_path / "o")))
    assert result.exit_code == 2 and "broken.jsonl:2: chosen" in result.stderr


def test_tokenizer_without_chat_template_is_refused(tmp_path, tiny_model, small_pairs, no_model_loading):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(tiny_model, copy)
    for name in ("chat_template.jinja", "chat_template.json"):
        (copy / name).unlink(missing_ok=True)
    config_file = copy / "tokenizer_config.json"
    tokenizer_config = json.loads(config_file.read_text())
    tokenizer_config.pop("chat_template", None)
    config_file.write_text(json.dumps(tokenizer_config))
    result = run_dpo("--config", str(write_config(tmp_path / "c.yaml", copy, small_pairs, tmp_path / "o")))
    assert result.exit_code == 2 and "has no chat template" in result.stderr


def test_nan_loss_stops_with_a_clear_message(tmp_path, tiny_model, small_pairs):
    config = write_config(
        tmp_path / "c.yaml", tiny_model, small_pairs, tmp_path / "out", eval_split=0, learning_rate=1e30, max_steps=8
    )
    result = run_dpo("--config", str(config))
    assert result.exit_code == 5, result.output
    assert "training diverged: grad_norm became nan" in result.stderr and result.stderr.strip().count("\n") == 0


@pytest.mark.slow
def test_two_processes_on_cpu_save_one_adapter(tmp_path, tiny_model, small_pairs):
    config = write_config(
        tmp_path / "c.yaml", tiny_model, small_pairs, tmp_path / "out", eval_split=0, per_device_train_batch_size=4
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "prefkit",
        "dpo",
        "--config",
        str(config),
        "-q",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "terminate called" not in done.stderr
    summary = json.loads((tmp_path / "out" / "training_summary.json").read_text())
    assert summary["steps"] == 4
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()
    assert len(list((tmp_path / "out").glob("adapter_model*.safetensors"))) == 1


@pytest.mark.slow
def test_shipped_tiny_config_learns_corpus_vs_corruptions(tmp_path):
    """configs/dpo/tiny-cpu.yaml as shipped (only paths moved to tmp): held-out accuracy above 0.9."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefkit",
            "dpo",
            "--config",
            "configs/dpo/tiny-cpu.yaml",
            "--set",
            f"model={tmp_path / 'base'}",
            "--output-dir",
            str(tmp_path / "out"),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "training_summary.json").read_text())
    accuracy = summary["eval"]["final"]["rewards/accuracies"]
    print(f"\nheld-out rewards/accuracies {accuracy:.3f} on {summary['data']['eval']} pairs")
    assert summary["data"]["eval"] >= 30 and accuracy > 0.9


@pytest.mark.slow
def test_an_ablation_recipe_trains_every_variant_and_reports_them_together(tmp_path):
    """dpo variants on the same pairs and seed, one eval report with each against the base and each other,
    and a run-table row per variant and per model."""
    import yaml
    from click.testing import CliRunner

    from prefkit.cli import cli

    corpus = ROOT / "data" / "corpus" / "react" / "alfworld_3prompts.json"
    recipe = {
        "name": "ablation",
        "tasks": {"source": "alfworld-react", "path": [str(corpus)], "max_prompt_chars": 800, "limit": 60,
                  "eval_share": 0.2},
        "generate": {"strategy": "corrupt"},
        "filter": {},
        "demo_model": {"epochs": 1, "hidden_size": 32, "layers": 1},
        "dpo": {"max_steps": 2, "max_length": 512, "eval_split": 0.2, "eval_steps": 1, "save_steps": 100,
                "generation_check": 2, "lora": {"r": 4},
                "variants": {"sft": {"loss_type": ["sft"]}, "dpo": {"loss_type": ["sigmoid"]},
                             "both": {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 1.0]}}},
        "eval": {"format": "alfworld", "limit": 6, "max_new_tokens": 16},
    }  # fmt: skip
    path = tmp_path / "ablation.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))  # the variants in the order written
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(path), "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    for name in ("sft", "dpo", "both"):
        summary = json.loads((run_dir / "adapter" / name / "training_summary.json").read_text())
        assert summary["steps"] == 2 and summary["config"]["loss_type"] == recipe["dpo"]["variants"][name]["loss_type"]
        assert summary["displacement"]["checks"] and summary["generation_check"]["samples"] == 2
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert list(report["models"]) == ["before", "sft", "dpo", "both"]
    assert set(report["differences"]) == {"sft - before", "dpo - before", "both - before", "dpo - sft",
                                          "both - sft", "both - dpo"}  # fmt: skip
    for row in ("dpo sft", "dpo both", "eval before", "eval both"):
        assert row in result.stderr, result.stderr
    again = CliRunner().invoke(cli, ["run", str(path), "--run-dir", str(run_dir)])
    assert again.exit_code == 0 and again.stderr.count("skipped (unchanged)") >= 7


def test_variants_under_several_processes_are_refused_before_any_work(tmp_path, monkeypatch):
    from prefkit.errors import ConfigError
    from prefkit.train.config import DPOStageConfig
    from prefkit.train.dpo import dpo_stage

    config = DPOStageConfig.model_validate(
        {"model": "m", "dataset": str(tmp_path / "p.jsonl"), "output_dir": str(tmp_path / "out"),
         "variants": {"a": {}, "b": {"beta": 0.2}}}
    )  # fmt: skip
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="dpo variants train one after another in one process"):
        dpo_stage(config)
    assert not (tmp_path / "out").exists()


def test_a_variant_name_or_settings_that_cannot_work_are_config_errors(tmp_path):
    from prefkit.config import validate_config
    from prefkit.errors import ConfigError
    from prefkit.train.config import DPOStageConfig, check_dpo_config

    for variants, message in (
        ({"../x": {}}, "variant name '../x'"),
        ({"before": {}}, "variant name 'before'"),
        ({"a": {"variants": {}}}, "without variants of its own"),
        ({}, "name at least one"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            validate_config(DPOStageConfig, {"variants": variants}, "r.yaml")
    config = validate_config(DPOStageConfig, {"variants": {"typo": {"betta": 0.2}}}, "r.yaml")
    with pytest.raises(ConfigError, match=r"variant 'typo': unknown key 'betta'.*did you mean 'beta'"):
        check_dpo_config(config, "r.yaml", needs_paths=False)
