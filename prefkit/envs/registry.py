"""The environments prefkit can play, by name: each is one folder under `prefkit/envs/` and one line here (its
config model, which says how to open it). `EnvSettings` is the type of an `env:` setting: a name alone
(`env: dbbench`) or the environment's settings (`env: {name: dbbench, engine: sqlite}`)."""

from __future__ import annotations

import importlib
from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Field, SerializeAsAny

from prefkit.envs.base import EnvConfig
from prefkit.errors import ConfigError

ENVIRONMENTS: dict[str, str] = {
    "dbbench": "prefkit.envs.dbbench.config:DBBenchConfig",
}
DEFAULT_ENV = next(iter(ENVIRONMENTS))


def config_class(name: str) -> type[EnvConfig]:
    """The config model of environment `name` (an unknown name is a ConfigError listing the known ones)."""
    if name not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment {name!r}; choose one of: {', '.join(ENVIRONMENTS)}")
    module, _, attribute = ENVIRONMENTS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def config_classes() -> list[type[EnvConfig]]:
    """Every environment's config model, in registry order."""
    return [config_class(name) for name in ENVIRONMENTS]


def default_env_config() -> EnvConfig:
    """The default environment's settings (the first in the registry)."""
    return config_class(DEFAULT_ENV)()


def env_keys_in_place(data: Any) -> Any:
    """A stage section's data, unchanged; an environment's setting written beside `env:` rather than under it
    is a ValueError naming it and where it goes."""
    if isinstance(data, dict):
        env_fields = {name for cls in config_classes() for name in cls.model_fields if name != "name"}
        misplaced = sorted(key for key in data if key in env_fields)
        if misplaced:
            raise ValueError(
                f"'{misplaced[0]}' is a setting of the environment: write it under env, as "
                f"'env: {{name: ..., {misplaced[0]}: ...}}'"
            )
    return data


def _named(value: Any) -> Any:
    """`env: NAME` is `env: {name: NAME}`; settings without a name are the default environment's."""
    if isinstance(value, str):
        value = {"name": value}
    if isinstance(value, dict):
        value = {"name": DEFAULT_ENV, **value}
        if value["name"] not in ENVIRONMENTS:
            raise ValueError(f"unknown environment {value['name']!r}; choose one of: {', '.join(ENVIRONMENTS)}")
    return value


def _settings_type() -> Any:
    classes = tuple(config_classes())
    inner = classes[0] if len(classes) == 1 else Annotated[Union[classes], Field(discriminator="name")]  # noqa: UP007
    return Annotated[SerializeAsAny[inner], BeforeValidator(_named)]


EnvSettings = _settings_type()
