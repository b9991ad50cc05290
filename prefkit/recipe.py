"""A recipe: one YAML file holding the config of every stage it runs (`pipelines/*.yaml`). Each section is
that stage's own config model, the same one its command builds from flags, one section a stage of
`prefkit/stages.py` in its order; relative paths in a recipe are relative to the recipe file's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from prefkit.config import read_yaml, validate_config
from prefkit.stages import STAGES, config_model


class RecipeBase(BaseModel):
    """What every recipe has besides its stages' sections."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Recipe name (the default run dir is runs/NAME).")
    description: str | None = Field(None, description="What the recipe is for.")

    @classmethod
    def from_yaml(cls, path: str | Path) -> Recipe:
        """Load and validate a recipe file; an unknown key is an error naming it."""
        path = Path(path)
        return validate_config(cls, read_yaml(path), str(path), base_dir=path.parent)


Recipe = create_model(
    "Recipe",
    __base__=RecipeBase,
    __doc__="Settings of a whole pipeline; each section is the config of one stage, run in this order.",
    **{
        entry.name: (Optional[config_model(entry.name)], Field(None, description=entry.description))  # noqa: UP045
        for entry in STAGES
    },
)
