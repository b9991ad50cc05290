"""Shipped recipes and configs load; a recipe that needs a teacher says so before any work."""

from pathlib import Path

import pytest
import yaml

from prefkit.filters.pipeline import FilterConfig
from prefkit.recipe import Recipe
from tests.generate_helpers import run

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_recipe_loads(path):
    Recipe.from_yaml(path)


def test_filters_config_loads():
    FilterConfig.from_yaml(ROOT / "configs" / "filters.yaml")


@pytest.mark.parametrize("name", ["dbbench", "alfworld", "codeact"])
def test_teacher_recipes_require_url_and_model(tmp_path, name):
    tasks = tmp_path / "t.jsonl"
    tasks.write_text('{"id": "a", "messages": [{"role": "user", "content": "q"}]}\n')
    result = run(
        "generate", str(tasks), "--recipe", str(ROOT / "pipelines" / f"{name}.yaml"), "--out", str(tmp_path / "o.jsonl")
    )
    assert result.returncode == 2
    assert f"pipelines/{name}.yaml: missing required setting 'teacher.base_url'" in result.stderr


def test_loading_a_recipe_or_the_help_imports_no_teacher_or_training_internals():
    import subprocess
    import sys

    code = (
        "import sys; from prefkit.cli import cli; from prefkit.recipe import Recipe; "
        f"Recipe.from_yaml({str(ROOT / 'pipelines' / 'quickstart.yaml')!r}); "
        "from click.testing import CliRunner; CliRunner().invoke(cli, ['--help']); "
        "print(sorted(m for m in ('openai', 'torch', 'transformers', 'trl', 'peft', 'argilla', 'sklearn') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_shipped_recipes_name_their_files_relative_to_their_own_folder():
    recipe = Recipe.from_yaml(ROOT / "pipelines" / "quickstart.yaml")
    assert all(path.resolve().is_file() for path in recipe.tasks.path)
    assert recipe.dpo.extends.resolve() == (ROOT / "configs" / "dpo" / "quickstart.yaml").resolve()


def test_the_dbbench_rollout_recipe_needs_a_policy_then_plays_every_episode(tmp_path):
    from prefkit.testing.agents import DBBenchAgent
    from prefkit.testing.standin import Behaviour, StandinServer

    recipe = ROOT / "pipelines" / "dbbench-rollout.yaml"
    missing = run("run", str(recipe), "--run-dir", str(tmp_path / "a"), "-q")
    assert missing.returncode == 2 and "missing required setting 'rollout.policy'" in missing.stderr
    assert not (tmp_path / "a" / "trajectories.jsonl").exists()
    dev = ROOT / "data" / "corpus" / "agentbench" / "dbbench_dev.jsonl"
    with StandinServer(Behaviour(responder=DBBenchAgent(dev, correct_share=0.5))) as server:
        data = yaml.safe_load(recipe.read_text())
        data["rollout"].update(
            tasks=str(dev), policy=f"openai:teacher-model@{server.url}", env={"name": "dbbench", "engine": "sqlite"}
        )
        mine = tmp_path / "mine.yaml"
        mine.write_text(yaml.safe_dump(data))
        done = run("run", str(mine), "--run-dir", str(tmp_path / "b"), "-q")
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "b" / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == 240  # 60 tasks, 4 samples each


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_plans_its_stages_and_their_files(path, tmp_path):
    """The stages chain: each input is a file an earlier stage writes or one the recipe names that exists, and
    every file the recipe's settings name (those the run does not fill in) exists."""
    from prefkit.run import Runner, _paths_in

    runner = Runner(Recipe.from_yaml(path), path, tmp_path / "run")
    steps = runner.plan()
    assert [step.stage.name for step in steps] == runner.stages()
    written: set[Path] = set()
    for step in steps:
        for argument, source in step.inputs.items():
            assert source in written or source.exists(), (step.stage.name, argument, source)
        filled = {*step.inputs, *step.outputs}  # settings the run fills in with its own files
        for name in type(step.config).model_fields:
            for named in _paths_in(getattr(step.config, name)) if name not in filled else ():
                assert named.exists(), (step.stage.name, name, named)
        assert not set(step.outputs.values()) & written, step.stage.name  # no stage writes over another's file
        written |= set(step.outputs.values())
