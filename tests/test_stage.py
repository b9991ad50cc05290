"""Each stage is one function: run through its command and through `prefkit run` on the same inputs and
settings, it writes byte-identical files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from prefkit.cli import cli
from prefkit.recipe import Recipe
from prefkit.run import Runner

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "corpus" / "react" / "alfworld.json"
TASKS = {"source": "alfworld-react", "path": str(CORPUS), "limit": 40, "seed": 3, "max_prompt_chars": 3000}
TASK_FLAGS = ["--from", "alfworld-react", "--limit", "40", "--seed", "3", "--max-prompt-chars", "3000"]
GENERATE = {"strategy": "corrupt", "corrupt": {"seed": 1}}
FILTER = {"verbosity": {"max_thought_tokens": 8}, "dedup": {"threshold": 0.7}}


def invoke(*args: str, input: str | None = None):
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input)
    assert result.exit_code == 0, result.output + str(result.exception)
    return result


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def run_recipe(path: Path, run_dir: Path) -> dict:
    return {r.stage: r for r in Runner(Recipe.from_yaml(path), path, run_dir, quiet=True).run()}


def same_bytes(a: Path, b: Path) -> None:
    assert a.read_bytes() == b.read_bytes(), f"{a} differs from {b}"


def without(report: dict, *keys: str) -> dict:
    return {k: v for k, v in report.items() if k not in keys}


def test_tasks_generate_filter_and_auto_review_match_their_commands(tmp_path):
    recipe = write(
        tmp_path / "recipe.yaml",
        {"name": "p", "tasks": TASKS, "generate": GENERATE, "filter": FILTER, "review": {"mode": "auto"}},
    )
    run = tmp_path / "run"
    results = run_recipe(recipe, run)
    assert [r.status for r in results.values()] == ["done"] * 4
    cli_dir = tmp_path / "cli"
    cli_dir.mkdir()

    invoke("tasks", CORPUS, *TASK_FLAGS, "--out", cli_dir / "tasks.jsonl", "-q")
    same_bytes(run / "tasks.jsonl", cli_dir / "tasks.jsonl")

    invoke("generate", cli_dir / "tasks.jsonl", "--recipe", recipe, "--out", cli_dir / "candidates.jsonl", "-q")
    same_bytes(run / "candidates.jsonl", cli_dir / "candidates.jsonl")

    filters = write(tmp_path / "filters.yaml", FILTER)
    invoke("filter", cli_dir / "candidates.jsonl", "--config", filters, "--out", cli_dir / "curated.jsonl",
           "--report", cli_dir / "filter-report.json", "-q")  # fmt: skip
    for name in ("curated.jsonl", "curated.dropped.jsonl"):
        same_bytes(run / name, cli_dir / name)
    reports = [json.loads((d / "filter-report.json").read_text()) for d in (run, cli_dir)]
    paths = ("input", "out", "dropped_file", "seconds")
    assert without(reports[0], *paths) == without(reports[1], *paths) and reports[0]["dropped"] > 0

    invoke("review", "auto", cli_dir / "curated.jsonl", "--out", cli_dir / "reviewed.jsonl", "-q")
    for name in ("reviewed.jsonl", "reviewed.dropped.jsonl"):
        same_bytes(run / name, cli_dir / name)


def test_tui_review_matches_its_command(tmp_path, monkeypatch):
    import sys

    import rich.console

    recipe = write(
        tmp_path / "recipe.yaml",
        {"tasks": {**TASKS, "limit": 4}, "generate": GENERATE, "filter": {"dedup": {"enabled": False}},
         "review": {"mode": "tui", "seed": 7}},
    )  # fmt: skip
    keys = ["a", "b", "t", "x", "a", "b"]
    answers = iter(keys)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(rich.console.Console, "input", lambda self, prompt="": next(answers, "q"))
    run_recipe(recipe, tmp_path / "run")
    monkeypatch.undo()
    curated = tmp_path / "run" / "curated.jsonl"
    out = tmp_path / "cli" / "reviewed.jsonl"
    invoke("review", "tui", curated, "--out", out, "--seed", "7", input="\n".join(keys) + "\n")
    for name in ("reviewed.jsonl", "reviewed.dropped.jsonl"):
        run_rows = [json.loads(line) for line in (tmp_path / "run" / name).read_text().splitlines()]
        cli_rows = [json.loads(line) for line in (out.parent / name).read_text().splitlines()]
        for row in run_rows + cli_rows:
            row["meta"]["review"].pop("decided_at")  # the moment each key was pressed
        assert run_rows == cli_rows and run_rows


@pytest.mark.slow
def test_demo_model_dpo_and_eval_match_their_commands(tmp_path):
    demo = {"epochs": 0.2, "hidden_size": 16, "layers": 1}
    dpo = {"max_steps": 2, "max_length": 1536, "eval_split": 0.0, "logging_steps": 1, "save_steps": 100,
           "learning_rate": 1e-3, "lora": {"r": 4, "alpha": 8, "dropout": 0.0}, "seed": 0}  # fmt: skip
    evaluation = {"format": "alfworld", "limit": 3, "max_new_tokens": 8}
    recipe = write(
        tmp_path / "recipe.yaml",
        {"tasks": {**TASKS, "eval_share": 0.2}, "generate": GENERATE, "filter": FILTER, "demo_model": demo,
         "dpo": dpo, "eval": evaluation},
    )  # fmt: skip
    run = tmp_path / "run"
    results = run_recipe(recipe, run)
    assert list(results) == ["tasks", "generate", "filter", "demo_model", "dpo", "eval"]
    cli_dir = tmp_path / "cli"
    cli_dir.mkdir()

    invoke("tasks", CORPUS, *TASK_FLAGS, "--out", cli_dir / "tasks.jsonl", "--eval-out", cli_dir / "eval.jsonl",
           "--eval-share", "0.2", "-q")  # fmt: skip
    same_bytes(run / "tasks.jsonl", cli_dir / "tasks.jsonl")
    same_bytes(run / "eval-tasks.jsonl", cli_dir / "eval.jsonl")

    invoke("demo-model", "--out", cli_dir / "demo-model", "--tasks", cli_dir / "tasks.jsonl", "--epochs", "0.2",
           "--hidden-size", "16", "--layers", "1", "-q")  # fmt: skip
    same_bytes(run / "demo-model" / "model.safetensors", cli_dir / "demo-model" / "model.safetensors")

    config = write(tmp_path / "dpo.yaml", {**dpo, "model": str(cli_dir / "demo-model")})
    shown = invoke("dpo", "--config", config, "--set", f"dataset={run / 'curated.jsonl'}", "--output-dir",
                   cli_dir / "adapter")  # fmt: skip
    same_bytes(run / "adapter" / "adapter_model.safetensors", cli_dir / "adapter" / "adapter_model.safetensors")
    # What a person saw meanwhile: prefkit's bar and table, not transformers' printed dicts or tqdm bars.
    assert "2/2" in shown.stderr and "loss" in shown.stderr and "prefkit dpo" in shown.stderr
    assert "{'loss'" not in shown.stdout + shown.stderr and "it/s]" not in shown.stderr

    invoke("eval", "--model", f"before={cli_dir / 'demo-model'}", "--model", f"after={cli_dir / 'adapter'}",
           "--tasks", cli_dir / "eval.jsonl", "--format", "alfworld", "--limit", "3", "--max-new-tokens", "8",
           "--out", cli_dir / "eval", "-q")  # fmt: skip
    for name in ("turns-before.jsonl", "turns-after.jsonl"):
        same_bytes(run / "eval" / name, cli_dir / "eval" / name)
    reports = [json.loads((d / "eval" / "report.json").read_text()) for d in (run, cli_dir)]
    assert without(reports[0], "models_evaluated") == without(reports[1], "models_evaluated")
    assert set(reports[0]["models"]) == {"before", "after"} and reports[0]["tasks"] == 3
    assert reports[0]["models"]["before"]["format_valid"]["n"] == 3
    assert reports[0]["models_evaluated"] == {
        "before": str((run / "demo-model").resolve()),
        "after": str(run / "adapter"),
    }
