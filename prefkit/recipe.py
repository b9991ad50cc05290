"""A recipe: one YAML file naming every stage's settings (`pipelines/*.yaml`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prefkit.config import read_yaml, validate_config
from prefkit.filters.pipeline import FilterConfig
from prefkit.generate import GenerateConfig


class Recipe(BaseModel):
    """Settings of a whole pipeline; each section is the config of one stage."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Recipe name.")
    description: str | None = Field(None, description="What the recipe is for.")
    tasks: dict[str, Any] | None = Field(None, description="Where tasks come from (used by `prefkit run`).")
    generate: GenerateConfig = Field(default_factory=GenerateConfig, description="`prefkit generate` settings.")
    filter: FilterConfig = Field(default_factory=FilterConfig, description="`prefkit filter` settings.")
    review: dict[str, Any] | None = Field(None, description="Review settings (used by `prefkit run`).")
    dpo: dict[str, Any] | None = Field(None, description="Training settings (used by `prefkit run`).")
    eval: dict[str, Any] | None = Field(None, description="Evaluation settings (used by `prefkit run`).")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Recipe":
        """Load and validate a recipe file; an unknown key is an error naming it."""
        return validate_config(cls, read_yaml(path), str(path))
