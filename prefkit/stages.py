"""The pipeline's stages, in recipe order: the one list the command line (`prefkit/cli/app.py`), `prefkit run`
(`prefkit/run.py`) and the recipe model (`prefkit/recipe.py`) read. A stage is named here once, with where its
declaration (`STAGE`, `prefkit/stage.py`), its config model and its command live; modules are imported on
first use, so `prefkit --help` loads none of them."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel

    from prefkit.stage import Stage


@dataclass(frozen=True)
class StageEntry:
    """Where one stage lives: `stage` holds its `STAGE`; `config` is "module:Class" of its config model (light
    to import: the recipe model reads every one); `cli` is "module:attribute" of its command."""

    name: str
    stage: str
    config: str
    command: str
    cli: str
    description: str
    trains: bool = False  # loads models: the training libraries' own logs are turned down unless -v


STAGES: tuple[StageEntry, ...] = (
    StageEntry(
        "tasks",
        "prefkit.tasks",
        "prefkit.tasks:TasksConfig",
        "tasks",
        "prefkit.cli.tasks:tasks_command",
        "`prefkit tasks` settings: where tasks come from.",
    ),
    StageEntry(
        "rollout",
        "prefkit.rollout",
        "prefkit.rollout:RolloutConfig",
        "rollout",
        "prefkit.cli.rollout:rollout_command",
        "`prefkit rollout` settings: whole episodes in an environment; absent: stage left out.",
    ),
    StageEntry(
        "generate",
        "prefkit.generate",
        "prefkit.generate:GenerateConfig",
        "generate",
        "prefkit.cli.generate:generate_command",
        "`prefkit generate` settings; absent: stage left out.",
    ),
    StageEntry(
        "filter",
        "prefkit.filters.pipeline",
        "prefkit.filters.pipeline:FilterConfig",
        "filter",
        "prefkit.cli.filter:filter_command",
        "`prefkit filter` settings; absent: stage left out.",
    ),
    StageEntry(
        "review",
        "prefkit.review.stage",
        "prefkit.review.stage:ReviewConfig",
        "review",
        "prefkit.cli.review:review_group",
        "`prefkit review` settings; absent: stage left out.",
    ),
    StageEntry(
        "demo_model",
        "prefkit.train.demo_model",
        "prefkit.train.demo_model:DemoModelConfig",
        "demo-model",
        "prefkit.cli.train:demo_model_command",
        "`prefkit demo-model` settings: train the demo model on the tasks, as dpo's base model.",
        trains=True,
    ),
    StageEntry(
        "dpo",
        "prefkit.train.dpo",
        "prefkit.train.config:DPOStageConfig",
        "dpo",
        "prefkit.cli.train:dpo_command",
        "`prefkit dpo` settings; absent: stage left out.",
        trains=True,
    ),
    StageEntry(
        "eval",
        "prefkit.evaluate.stage",
        "prefkit.evaluate.config:EvalConfig",
        "eval",
        "prefkit.cli.evaluate:eval_command",
        "`prefkit eval` settings; absent: stage left out.",
        trains=True,
    ),
)
NAMES: tuple[str, ...] = tuple(entry.name for entry in STAGES)
_BY_NAME = {entry.name: entry for entry in STAGES}


def entry(name: str) -> StageEntry:
    """The entry of stage `name`."""
    return _BY_NAME[name]


def stage_named(name: str) -> Stage:
    """The declaration of a stage (its module is imported on first use)."""
    return importlib.import_module(_BY_NAME[name].stage).STAGE


def config_model(name: str) -> type[BaseModel]:
    """The config model of a stage (the model its recipe section and its command's flags fill)."""
    module, _, attribute = _BY_NAME[name].config.partition(":")
    return getattr(importlib.import_module(module), attribute)
