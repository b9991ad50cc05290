"""Command-line flags made from stage config fields: help text, default and choices come from the config
model (defaults live once, in the model), and a flag left out leaves the config's value alone."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import click
from pydantic import BaseModel

from prefkit.config import validate_config

M = TypeVar("M", bound=BaseModel)
PREFIX = "config__"


class PathType(click.Path):
    """click's Path, refusing a NUL byte (no file can have one; the OS call would fail with a traceback)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if "\0" in str(value):
            self.fail("a path cannot hold a NUL byte", param, ctx)
        return super().convert(value, param, ctx)


PATH = PathType(path_type=Path)


def _field(model: type[BaseModel], path: str):
    current: Any = model
    *parents, leaf = path.split(".")
    for part in parents:
        current = current.model_fields[part].annotation
    return current.model_fields[leaf]


def _plain(annotation: Any) -> Any:
    """The type inside Optional[...] / X | None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def config_option(model: type[BaseModel], path: str, *flags: str, dest: str | None = None, **extra: Any) -> Callable:
    """A flag for the config field at dotted `path` (e.g. "teacher.base_url"); `flags` default to its name;
    `dest`: the dotted path its value goes to, when not `path` (a field of a nested section's model)."""
    field = _field(model, path)
    annotation = _plain(field.annotation)
    default = field.get_default(call_default_factory=True)
    shown = "" if default in (None, [], {}) else f" [default: {default}]"
    options: dict[str, Any] = {"help": f"{field.description}{shown}"}
    name = path.split(".")[-1].replace("_", "-")
    if annotation is bool:
        negative = extra.pop("negative", f"no-{name}")
        flags = flags or (f"--{name}/--{negative}",)
        options["default"] = None  # a flag left out must leave the config's value alone, not set False
    else:
        flags = flags or (f"--{name}",)
        if typing.get_origin(annotation) is Literal:
            options["type"] = click.Choice(list(typing.get_args(annotation)))
        elif annotation in (int, float, str):
            options["type"] = annotation
        elif annotation is Path or typing.get_origin(annotation) is typing.Annotated:
            options["type"] = PATH
    options.update(extra)
    return click.option(*flags, PREFIX + (dest or path).replace(".", "__"), **options)


def pop_config_flags(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take the config flags out of a command's keyword arguments: {dotted path: value} of those given."""
    given = {}
    for key in [k for k in kwargs if k.startswith(PREFIX)]:
        value = kwargs.pop(key)
        if value is not None:
            given[key[len(PREFIX) :].replace("__", ".")] = value
    return given


def build_config(model: type[M], base: BaseModel | dict | None, flags: dict[str, Any], source: str) -> M:
    """`base` (a recipe section or a config file's settings) with the given flags laid over it, validated."""
    data = base.model_dump() if isinstance(base, BaseModel) else dict(base or {})
    for path, value in flags.items():
        target = data
        *parents, leaf = path.split(".")
        for part in parents:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[leaf] = value
    return validate_config(model, data, source)


def env_options(command: Callable) -> Callable:
    """`--env NAME` and a flag for every setting of every registered environment (`--engine`, ...), help and
    choices from the environments' own config models; given flags become `env.NAME` settings."""
    from prefkit.envs.registry import ENVIRONMENTS, config_classes

    seen: set[str] = set()
    for model in reversed(config_classes()):
        for name in reversed(list(model.model_fields)):
            if name == "name" or name in seen:
                continue
            seen.add(name)
            command = config_option(model, name, dest=f"env.{name}")(command)
    return click.option(
        "--env",
        f"{PREFIX}env__name",
        type=click.Choice(list(ENVIRONMENTS)),
        help="The environment (its benchmark's rules); its settings are the flags below.",
    )(command)


def env_flags_need_env(flags: dict[str, Any], default: str | None) -> None:
    """Environment flags given without --env: they go to the default environment, or (no default) are an error."""
    from prefkit.errors import ConfigError

    given = [path for path in flags if path.startswith("env.") and path != "env.name"]
    if given and "env.name" not in flags:
        if default is None:
            raise ConfigError(
                f"--{given[0].split('.')[-1].replace('_', '-')} is a setting of an environment; give --env"
            )
        flags["env.name"] = default
