"""Shipped recipes and configs load; a recipe that needs a teacher says so before any work."""

from pathlib import Path

import pytest

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
