"""What every action format shares: the parse result, violations and the per-task action spec."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
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
    """One assistant turn as a benchmark's parser reads it, and what prefkit's stricter rules say of it.

    Two questions, answered separately:
    - `accepted`: would the benchmark's own parser take the turn? `executed` is then the action it would run
      (the SQL of the block it reads, the command after its label, the code it joins, the call it dispatches)
      and `ignored` the text it never reads. `format.*` violations mean the benchmark rejects the turn.
    - `disciplined`: does the turn also keep the rules prefkit adds for training data (exactly one action,
      nothing after it, labels in the canonical case)? Their violations are `discipline.*`. They are judged
      on turns the benchmark accepts; a rejected turn has nothing left for them to judge.
    """

    format: str
    style: str = ""
    thought: str = ""
    actions: list[Action] = field(default_factory=list)
    final_answer: Any = None
    trailing: str = ""
    executed: Action | None = None
    ignored: str = ""
    violations: list[Violation] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """True when the benchmark's parser would take the turn (no `format.*` violation)."""
        return not any(violation.code.startswith("format.") for violation in self.violations)

    @property
    def disciplined(self) -> bool:
        """True when the turn keeps prefkit's stricter rules (no `discipline.*` violation)."""
        return not any(violation.code.startswith("discipline.") for violation in self.violations)

    @property
    def valid(self) -> bool:
        """Accepted by the benchmark and disciplined: what a chosen turn must be."""
        return not self.violations

    @property
    def action(self) -> Action | None:
        """The first action, if any."""
        return self.actions[0] if self.actions else None

    def fail(self, code: str, message: str) -> None:
        """Record that the benchmark's parser rejects the turn (the code is prefixed with `format.`)."""
        self.violations.append(Violation(f"format.{code}", message))

    def lax(self, code: str, message: str) -> None:
        """Record a rule the benchmark lets pass but prefkit's training data keeps (prefixed `discipline.`)."""
        self.violations.append(Violation(f"discipline.{code}", message))

    def accept(self, action: Action, ignored: str = "") -> None:
        """The benchmark would execute `action` and never read `ignored` (a turn still rejected stays so)."""
        self.executed = action
        self.ignored = ignored.strip()

    @property
    def codes(self) -> list[str]:
        """The violation codes, in the order they were found."""
        return [violation.code for violation in self.violations]

    def to_dict(self) -> dict[str, Any]:
        """The parse as JSON: both answers with their codes, and what would run and what would be ignored."""
        return {
            "style": self.style,
            "accepted": self.accepted,
            "disciplined": self.disciplined,
            "format_codes": [code for code in self.codes if code.startswith("format.")],
            "discipline_codes": [code for code in self.codes if code.startswith("discipline.")],
            "violations": [{"code": v.code, "message": v.message} for v in self.violations],
            "executed": None if self.executed is None or not self.accepted else asdict(self.executed),
            "ignored": self.ignored,
        }


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
    parallel_calls: bool = Field(False, description="tool-call: several calls in one message are the norm (BFCL).")
    tool_match: Literal["exact", "suffix"] = Field(
        "exact", description="tool-call: suffix for a benchmark that finds a tool by the end of its name (ToolBench)."
    )
    require_thought: bool = Field(False, description="A turn must carry reasoning before its action.")
    style: Literal["dbbench", "numbered", "fireact", "agentbench", "react"] | None = Field(
        None,
        description="The benchmark parser to follow: react: dbbench|numbered|fireact; alfworld: agentbench|react. "
        "None (or a style of another format) detects it from the turn.",
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
