"""A recipe: one YAML file holding the config of every stage it runs (`pipelines/*.yaml`). Each section is
that stage's own config model, the same one its command builds from flags; relative paths in a recipe are
relative to the recipe file's folder."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from prefkit.config import read_yaml, validate_config
from prefkit.evaluate.config import EvalConfig
from prefkit.filters.pipeline import FilterConfig
from prefkit.generate import GenerateConfig
from prefkit.review.stage import ReviewConfig
from prefkit.rollout import RolloutConfig
from prefkit.tasks import TasksConfig
from prefkit.train.config import DPOStageConfig
from prefkit.train.demo_model import DemoModelConfig


class Recipe(BaseModel):
    """Settings of a whole pipeline; each section is the config of one stage, run in this order."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Recipe name (the default run dir is runs/NAME).")
    description: str | None = Field(None, description="What the recipe is for.")
    tasks: TasksConfig | None = Field(None, description="`prefkit tasks` settings: where tasks come from.")
    rollout: RolloutConfig | None = Field(
        None, description="`prefkit rollout` settings: whole episodes in an environment; absent: stage left out."
    )
    generate: GenerateConfig | None = Field(None, description="`prefkit generate` settings; absent: stage left out.")
    filter: FilterConfig | None = Field(None, description="`prefkit filter` settings; absent: stage left out.")
    review: ReviewConfig | None = Field(None, description="`prefkit review` settings; absent: stage left out.")
    demo_model: DemoModelConfig | None = Field(
        None, description="`prefkit demo-model` settings: train the demo model on the tasks, as dpo's base model."
    )
    dpo: DPOStageConfig | None = Field(None, description="`prefkit dpo` settings; absent: stage left out.")
    eval: EvalConfig | None = Field(None, description="`prefkit eval` settings; absent: stage left out.")

    @classmethod
    def from_yaml(cls, path: str | Path) -> Recipe:
        """Load and validate a recipe file; an unknown key is an error naming it."""
        path = Path(path)
        return validate_config(cls, read_yaml(path), str(path), base_dir=path.parent)
