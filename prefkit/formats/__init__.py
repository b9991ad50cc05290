"""Action formats: each module parses one assistant turn into (thought, action) or violations."""

from __future__ import annotations

from collections.abc import Callable

from prefkit.errors import ConfigError
from prefkit.formats import alfworld, codeact, os_interaction, react, tool_call, xml_react
from prefkit.formats.base import Action, ActionSpec, ParsedTurn, Violation

Parser = Callable[[dict, ActionSpec], ParsedTurn]

FORMATS: dict[str, Parser] = {
    react.NAME: react.parse,
    alfworld.NAME: alfworld.parse,
    xml_react.NAME: xml_react.parse,
    codeact.NAME: codeact.parse,
    os_interaction.NAME: os_interaction.parse,
    tool_call.NAME: tool_call.parse,
}

__all__ = ["Action", "ActionSpec", "FORMATS", "ParsedTurn", "Violation", "get_parser", "parse_turn"]


def get_parser(name: str) -> Parser:
    """The parser of a format by name; an unknown name is a ConfigError listing the known ones."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown format {name!r}; choose one of: {', '.join(FORMATS)}") from None


def parse_turn(name: str, message: dict, spec: ActionSpec | None = None) -> ParsedTurn:
    """Parse one assistant message in format `name` under `spec` (default: no restrictions)."""
    return get_parser(name)(message, spec or ActionSpec())
