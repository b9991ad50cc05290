"""`prefkit run`: stages in order, unchanged stages skipped, changed ones redone, errors before any work."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from prefkit.cli import cli
from prefkit.errors import ConfigError, PrefkitError
from prefkit.recipe import Recipe
from prefkit.run import Runner

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "corpus" / "react" / "alfworld.json"


def recipe(tmp_path, **changes):
    data = {
        "name": "t",
        "tasks": {"source": "alfworld-react", "path": str(CORPUS), "limit": 60, "eval_share": 0.0},
        "generate": {"strategy": "corrupt"},
        "filter": {},
        "review": {"mode": "auto"},
    }
    for key, value in changes.items():
        data[key] = value
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run(path, run_dir, *args):
    result = Runner(Recipe.from_yaml(path), path, run_dir, quiet=True, **dict(args))
    return {r.stage: r for r in result.run()}


def test_stages_run_in_order_then_skip_when_unchanged(tmp_path):
    path, run_dir = recipe(tmp_path), tmp_path / "run"
    first = run(path, run_dir)
    assert [s.status for s in first.values()] == ["done"] * 4
    assert first["generate"].counts["pairs"] > 40 and (run_dir / "reviewed.jsonl").exists()
    reviewed = [json.loads(line) for line in (run_dir / "reviewed.jsonl").read_text().splitlines()]
    assert all(row["meta"]["review"]["mode"] == "auto" for row in reviewed)
    second = run(path, run_dir)
    assert all(s.status.startswith("skipped") for s in second.values())


def test_changed_settings_redo_that_stage_and_later_ones(tmp_path):
    path, run_dir = recipe(tmp_path), tmp_path / "run"
    run(path, run_dir)
    path = recipe(tmp_path, filter={"verbosity": {"max_thought_tokens": 5}})
    again = run(path, run_dir)
    assert [again[s].status for s in ("tasks", "generate")] == ["skipped (unchanged)"] * 2
    assert [again[s].status for s in ("filter", "review")] == ["done", "done"]


def test_changed_or_damaged_output_is_redone(tmp_path):
    path, run_dir = recipe(tmp_path), tmp_path / "run"
    run(path, run_dir)
    (run_dir / "curated.jsonl").write_text("")
    again = run(path, run_dir)
    assert again["filter"].status == "done" and again["generate"].status.startswith("skipped")


def test_from_and_force(tmp_path):
    path, run_dir = recipe(tmp_path), tmp_path / "run"
    run(path, run_dir)
    redo = run(path, run_dir, ("from_stage", "filter"))
    assert [r.status for r in redo.values()] == ["skipped (unchanged)", "skipped (unchanged)", "done", "done"]
    forced = run(path, run_dir, ("force", True))
    assert all(r.status == "done" for r in forced.values())


def test_missing_teacher_url_fails_before_any_work(tmp_path):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(ROOT / "pipelines" / "dbbench.yaml"), "--run-dir", str(run_dir)])
    assert result.exit_code == 2
    assert "pipelines/dbbench.yaml: missing required setting 'teacher.base_url'" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert not run_dir.exists()


def test_review_modes_that_cannot_work_fail_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    run_dir = tmp_path / "run"
    review = {"mode": "argilla", "data_dir": str(tmp_path / "no-server")}
    result = CliRunner().invoke(cli, ["run", str(recipe(tmp_path, review=review)), "--run-dir", str(run_dir)])
    assert result.exit_code == 2 and "review mode 'argilla': no Argilla server given" in result.stderr
    assert not run_dir.exists()
    result = CliRunner().invoke(cli, ["run", str(recipe(tmp_path, review={"mode": "tui"})), "--run-dir", str(run_dir)])
    assert result.exit_code == 2 and "review mode 'tui' needs a terminal" in result.stderr
    assert not run_dir.exists()


def test_tui_review_stage_resumes_until_every_pair_is_decided(tmp_path, monkeypatch):
    import sys

    import rich.console

    path, run_dir = (
        recipe(
            tmp_path,
            review={"mode": "tui"},
            tasks={"source": "alfworld-react", "path": str(CORPUS), "limit": 3, "eval_share": 0.0},
        ),
        tmp_path / "run",
    )
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    keys = iter(["a", "q"])
    monkeypatch.setattr(rich.console.Console, "input", lambda self, prompt="": next(keys, "q"))
    with pytest.raises(PrefkitError, match="1 of 3 pairs decided"):
        run(path, run_dir)
    keys = iter(["b", "a"])
    results = run(path, run_dir)
    assert results["review"].status == "done" and results["review"].counts["pairs"] == 3
    rows = [json.loads(line) for line in (run_dir / "reviewed.jsonl").read_text().splitlines()]
    assert all(row["meta"]["review"]["mode"] == "tui" for row in rows)


def test_a_filter_without_a_stage_that_writes_pairs_is_an_error_naming_what_to_add(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"tasks": {"source": "alfworld-react", "path": str(CORPUS)}, "filter": {}}))
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(path), "--run-dir", str(run_dir)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {path}: the filter stage reads pairs, which no earlier stage of this recipe writes "
        "(add a generate: section)"
    )
    assert not run_dir.exists()


def test_the_run_and_the_command_call_the_same_stage_functions():
    from prefkit.cli.app import COMMANDS
    from prefkit.evaluate.stage import evaluate_file
    from prefkit.filters.pipeline import filter_file
    from prefkit.generate import generate_file
    from prefkit.review.stage import review_pairs
    from prefkit.rollout import rollout_file
    from prefkit.stages import NAMES, STAGES, stage_named
    from prefkit.tasks import make_tasks
    from prefkit.train.demo_model import demo_model_stage
    from prefkit.train.dpo import dpo_stage

    functions = [
        make_tasks, rollout_file, generate_file, filter_file, review_pairs, demo_model_stage, dpo_stage, evaluate_file
    ]  # fmt: skip
    assert [stage_named(name).function for name in NAMES] == functions
    assert [stage_named(name).config for name in NAMES] == [
        Recipe.model_fields[name].annotation.__args__[0] for name in NAMES
    ]
    # one list: the recipe's sections, the run's order and the commands are the stages'
    assert [name for name in Recipe.model_fields if name not in ("name", "description")] == list(NAMES)
    assert all(COMMANDS[entry.command] == entry.cli for entry in STAGES)
    assert [stage_named(name).name for name in NAMES] == list(NAMES)


def test_the_run_filter_validates_pairs_as_prefkit_filter_does(tmp_path):
    from prefkit.errors import InputError
    from prefkit.filters.pipeline import FilterConfig
    from prefkit.stages import stage_named

    pairs = tmp_path / "candidates.jsonl"
    pairs.write_text('{"prompt": [{"role": "user", "content": "hi"}], "chosen": [], "rejected": []}\n')
    with pytest.raises(InputError, match="candidates.jsonl:1: chosen: List should have at least 1 item"):
        stage_named("filter").function(FilterConfig(), pairs, tmp_path / "curated.jsonl")
    result = CliRunner().invoke(cli, ["filter", str(pairs), "--out", str(tmp_path / "k.jsonl")])
    assert result.exit_code == 2 and "candidates.jsonl:1: chosen: List should have at least 1 item" in result.stderr


def test_dpo_trains_on_the_reviewed_pairs_when_there_is_a_review_and_on_the_curated_ones_otherwise(tmp_path):
    base = {"tasks": {"source": "alfworld-react", "path": str(CORPUS)}, "generate": {"strategy": "corrupt"},
            "filter": {}, "dpo": {"model": "some/base"}}  # fmt: skip
    for review, expected in (({"mode": "auto"}, "reviewed.jsonl"), (None, "curated.jsonl")):
        data = dict(base, **({"review": review} if review else {}))
        path = tmp_path / "recipe.yaml"
        path.write_text(yaml.safe_dump(data))
        steps = {s.stage.name: s for s in Runner(Recipe.from_yaml(path), path, tmp_path / "run").plan()}
        assert steps["dpo"].inputs == {"dataset": tmp_path / "run" / expected}
        assert steps["dpo"].outputs == {"output_dir": tmp_path / "run" / "adapter"}


def test_a_demo_model_stage_is_the_base_model_dpo_trains(tmp_path):
    data = {"tasks": {"source": "alfworld-react", "path": str(CORPUS)}, "generate": {"strategy": "corrupt"},
            "demo_model": {}, "dpo": {}}  # fmt: skip
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    steps = {s.stage.name: s for s in Runner(Recipe.from_yaml(path), path, tmp_path / "run").plan()}
    assert steps["dpo"].inputs["model"] == tmp_path / "run" / "demo-model"
    path.write_text(yaml.safe_dump({**data, "demo_model": None}))
    with pytest.raises(ConfigError, match="missing required setting 'dpo.model'"):
        Runner(Recipe.from_yaml(path), path, tmp_path / "run").plan()


def test_relative_paths_in_a_recipe_are_relative_to_its_folder(tmp_path, monkeypatch):
    folder = tmp_path / "recipes" / "mine"
    folder.mkdir(parents=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "alfworld.json").write_bytes(CORPUS.read_bytes())
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump({"tasks": {"source": "alfworld-react", "path": "../../data/alfworld.json",
                                              "limit": 5}}))  # fmt: skip
    monkeypatch.chdir(tmp_path / "recipes")  # anywhere but the recipe's folder
    recipe = Recipe.from_yaml(path)
    assert recipe.tasks.path == [folder / "../../data/alfworld.json"]
    results = {r.stage: r for r in Runner(recipe, path, tmp_path / "run", quiet=True).run()}
    assert results["tasks"].counts["tasks"] == 5


def test_eval_has_one_set_of_defaults_for_the_command_and_a_recipe(tmp_path):
    from prefkit.evaluate.config import EvalConfig

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"eval": {"format": "alfworld"}}))
    section = Recipe.from_yaml(path).eval
    assert section == EvalConfig(format="alfworld")
    assert (section.temperature, section.max_new_tokens) == (0.0, 96)
    help_text = " ".join(CliRunner().invoke(cli, ["eval", "--help"]).output.split())  # unwrapped
    assert "[default: 0.0]" in help_text and "[default: 96]" in help_text


def test_an_eval_stage_without_held_out_tasks_fails_before_any_work(tmp_path):
    data = {
        "tasks": {"source": "alfworld-react", "path": str(CORPUS), "eval_share": 0.0},
        "generate": {"strategy": "corrupt"},
        "dpo": {"model": "some/base"},
        "eval": {"format": "alfworld"},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="the eval stage needs held-out tasks; set tasks.eval_share above 0"):
        Runner(Recipe.from_yaml(path), path, tmp_path / "run").plan()


def test_an_eval_in_an_environment_plays_the_benchmarks_own_task_file(tmp_path):
    dev = CORPUS.parent / "agentbench" / "dbbench_dev.jsonl"
    data = {
        "tasks": {"source": "alfworld-react", "path": str(CORPUS), "eval_share": 0.2},
        "generate": {"strategy": "corrupt"},
        "dpo": {"model": "some/base"},
        "eval": {"env": {"name": "dbbench", "engine": "sqlite"}},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="eval.env needs eval.tasks, the benchmark's task file"):
        Runner(Recipe.from_yaml(path), path, tmp_path / "run").plan()
    data["eval"]["tasks"] = str(dev)
    path.write_text(yaml.safe_dump(data))
    steps = Runner(Recipe.from_yaml(path), path, tmp_path / "run").plan()
    assert steps[-1].inputs["tasks"] == dev and steps[-1].inputs["adapter"] == tmp_path / "run" / "adapter"


def test_a_recipe_file_where_the_run_writes_is_refused_before_any_work(tmp_path):
    """tasks.path pointing at the run's own tasks.jsonl would be rewritten (shrunk) on every run."""
    run_dir = tmp_path / "runs" / "t"
    first = recipe(tmp_path)
    run(first, run_dir)
    inside = run_dir / "tasks.jsonl"
    before = inside.read_bytes()
    again = recipe(tmp_path, tasks={"source": "tasks", "path": str(inside)})
    with pytest.raises(ConfigError, match="is where this run writes tasks.jsonl"):
        run(again, run_dir)
    assert inside.read_bytes() == before


def test_a_run_dir_holding_the_users_files_is_refused_and_a_corrupt_state_is_one_line(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["run", str(recipe(tmp_path)), "--run-dir", str(mine), "-q"])
    assert result.exit_code == 2 and "already holds files prefkit did not write" in result.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    run_dir = tmp_path / "run"
    run(recipe(tmp_path), run_dir)
    (run_dir / "state.json").write_text('{"tasks": {"key": ')
    result = CliRunner().invoke(cli, ["run", str(recipe(tmp_path)), "--run-dir", str(run_dir), "-q"])
    assert result.exit_code == 2 and "state.json: not readable as a prefkit run state" in result.stderr, result.output
    assert result.stderr.count("\n") == 1


def test_a_missing_teacher_in_a_recipe_does_not_suggest_a_flag_run_lacks(tmp_path):
    path = recipe(tmp_path, generate={"strategy": "contrastive"})
    result = CliRunner().invoke(cli, ["run", str(path), "--run-dir", str(tmp_path / "r"), "-q"])
    assert result.exit_code == 2 and "missing required setting 'generate.teacher.base_url'" not in result.stderr
    assert "teacher.base_url" in result.stderr and "--base-url" not in result.stderr, result.stderr
