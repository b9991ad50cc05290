"""Loading stage configs from YAML with errors that name the file and the key."""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ValidationError, ValidationInfo

from prefkit.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's floats: `2e-4` is a number, as in every other YAML and JSON
    reader (YAML 1.1 wants a dot, `2.0e-4`, and otherwise reads a string)."""


YamlLoader.yaml_implicit_resolvers = {
    key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """One YAML document, read as `read_yaml` reads files (YAML 1.2 floats)."""
    return yaml.load(text, Loader=YamlLoader)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file; a missing file, bad YAML or a non-mapping is a ConfigError."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: invalid YAML ({getattr(error, 'problem', error)})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return data


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    return Path(base) / value if base is not None and not value.is_absolute() else value


ConfigPath = Annotated[Path, AfterValidator(_resolve)]
"""A path in a config: relative to the file's folder when the file is a recipe (see `validate_config`)."""


def validate_config(model: type[M], data: dict[str, Any], source: str, base_dir: Path | None = None) -> M:
    """Build a config model; an unknown key names itself and the closest valid one. With `base_dir`, every
    relative `ConfigPath` is taken relative to it (a recipe's folder)."""
    try:
        return model.model_validate(data, context={"base_dir": base_dir} if base_dir is not None else None)
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe_config_error(model, error)}") from None


def describe_config_error(model: type[BaseModel], error: ValidationError) -> str:
    """One line for the first problem, with a 'did you mean' for unknown keys."""
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"]]
    key = ".".join(loc)
    if first["type"] == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f" (did you mean '{'.'.join([*loc[:-1], close[0]])}'?)" if close else ""
        where = f" in '{'.'.join(loc[:-1])}'" if loc[:-1] else ""
        listed = f"; valid keys{where}: {', '.join(known)}" if known else ""
        return f"unknown key '{key}'{hint}{listed}"
    if first["type"] == "missing":
        return f"missing required setting '{key}'"
    message = first["msg"].removeprefix("Value error, ")
    return f"'{key}': {message}" if key else message  # a check of several settings together names none


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The config model an annotation holds: itself, or inside Optional[...], Annotated[...], list[...]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _fields_at(model: type[BaseModel], path: list[str]) -> list[str]:
    current: type[BaseModel] | None = model
    for part in path:
        field = current.model_fields.get(part) if current else None
        if field is not None:
            current = _model_in(field.annotation)
        elif not part.isdigit():  # an index into a list of sections stays on that section's model
            return []
    return list(current.model_fields) if current else []
