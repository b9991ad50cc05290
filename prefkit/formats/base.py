"""What every action format shares: the parse result, violations and the per-task action spec."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prefkit.errors import InputError


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a turn breaks its format: a machine-readable code and a sentence for people."""

    code: str
    message: str


@dataclass(slots=True)
class Action:
    """The one thing a turn asks the environment to do (a command, a SQL query, a tool call...)."""

    name: str
    argument: str = ""

    @property
    def key(self) -> str:
        """A normalised form used to notice the same action repeated across turns."""
        return f"{self.name.lower()}\x00{' '.join(self.argument.lower().split())}"


@dataclass(slots=True)
class ParsedTurn:
    """One assistant turn split into its parts, or the violations that stop a parser from doing so."""

    format: str
    thought: str = ""
    actions: list[Action] = field(default_factory=list)
    final_answer: Any = None
    trailing: str = ""
    violations: list[Violation] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when the benchmark's parser would accept the turn."""
        return not self.violations

    @property
    def action(self) -> Action | None:
        """The first action, if any."""
        return self.actions[0] if self.actions else None

    def fail(self, code: str, message: str) -> None:
        """Record a violation (the code is prefixed with `format.`)."""
        self.violations.append(Violation(f"format.{code}", message))

    @property
    def codes(self) -> list[str]:
        """The violation codes, in the order they were found."""
        return [violation.code for violation in self.violations]


def begin(format_name: str, message: dict) -> tuple[ParsedTurn, str]:
    """A fresh parse result and the message's text; an empty text is already recorded as a violation."""
    turn = ParsedTurn(format=format_name)
    text = message.get("content") or ""
    if not text or text.isspace():
        turn.fail("empty", "the turn is empty")
    return turn, text


class ActionSpec(BaseModel):
    """Which actions a task allows and what their arguments must look like (from the task or the recipe)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    actions: tuple[str, ...] | None = Field(
        None, description="Allowed action, node or tool names; None accepts any name the format can express."
    )
    actions_case: Literal["sensitive", "insensitive"] = Field(
        "sensitive", description="How the benchmark compares action names: insensitive for one that lowercases them."
    )
    arguments: dict[str, str] = Field(
        default_factory=dict,
        description="Regular expression the argument of an action must fully match, by action name.",
    )
    commands: tuple[str, ...] | None = Field(
        None,
        description="alfworld: regular expressions of admissible commands (default: the ALFWorld command grammar).",
    )
    admissible: tuple[str, ...] | None = Field(
        None, description="alfworld: the exact admissible commands at this step, when the task knows them."
    )
    tools: tuple[dict[str, Any], ...] | None = Field(
        None, description="tool-call: OpenAI tool definitions; arguments are checked against their JSON schemas."
    )
    allow_text_answer: bool = Field(False, description="tool-call: a turn with no tool call counts as a final answer.")
    require_thought: bool = Field(False, description="A turn must carry reasoning before its action.")
    style: str | None = Field(
        None, description="Force one dialect: react: dbbench|numbered; alfworld: agentbench|react. None detects it."
    )

    @field_validator("arguments", "commands")
    @classmethod
    def _compiles(cls, patterns: dict[str, str] | tuple[str, ...] | None):
        for pattern in patterns.values() if isinstance(patterns, dict) else patterns or ():
            try:
                compiled_pattern(pattern)
            except re.error as error:
                raise ValueError(f"{pattern!r} is not a valid regular expression ({error})") from None
        return patterns

    @classmethod
    def of(cls, settings: dict[str, Any] | None) -> ActionSpec:
        """A task's own spec (its `meta.action_spec`, or none); a bad one is an InputError."""
        try:
            return cls.model_validate(settings or {})
        except ValidationError as error:
            from prefkit.config import describe_config_error

            raise InputError(f"a task's meta.action_spec: {describe_config_error(cls, error)}") from None

    def merged(self, overrides: dict[str, Any] | None) -> ActionSpec:
        """This spec with a task's own `action_spec` keys laid over it (a bad one is an InputError)."""
        if not overrides:
            return self
        return ActionSpec.of({**self.model_dump(exclude_unset=True), **overrides})

    def declared(self, name: str) -> str | None:
        """The allowed name `name` stands for (the spec's own spelling), or None when it is not allowed."""
        if self.actions is None:
            return name
        if self.actions_case == "insensitive":
            return next((allowed for allowed in self.actions if allowed.casefold() == name.casefold()), None)
        return name if name in self.actions else None

    def check_name(self, turn: ParsedTurn, name: str, code: str = "unknown_action") -> bool:
        """Flag `name` when the spec lists allowed names and it is not one of them."""
        if self.declared(name) is None:
            turn.fail(code, f"'{name}' is not one of the allowed actions ({', '.join(self.actions or ())})")
            return False
        return True

    def check_argument(self, turn: ParsedTurn, name: str, argument: str) -> None:
        """Flag an argument that does not fully match the spec's pattern for `name`."""
        pattern = self.arguments.get(self.declared(name) or name)
        if pattern is not None and not compiled_pattern(pattern).fullmatch(argument):
            turn.fail("bad_argument", f"the argument of {name} does not match {pattern!r}")


_PATTERNS: dict[str, re.Pattern] = {}


def compiled_pattern(pattern: str) -> re.Pattern:
    """A compiled regular expression, cached (spec patterns are reused for every turn)."""
    if pattern not in _PATTERNS:
        _PATTERNS[pattern] = re.compile(pattern, re.S)
    return _PATTERNS[pattern]
