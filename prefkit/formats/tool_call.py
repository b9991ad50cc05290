"""OpenAI tool-call turns: an assistant message with `tool_calls` whose arguments parse as a JSON object
and match the tool's JSON schema (AgentBench's current tasks, BFCL)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from prefkit.formats.base import Action, ActionSpec, ParsedTurn

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

NAME = "tool-call"


def parse(message: dict, spec: ActionSpec) -> ParsedTurn:
    """Parse one assistant message that should call exactly one tool."""
    turn = ParsedTurn(format=NAME)
    turn.thought = (message.get("content") or "").strip()
    calls = message.get("tool_calls") or []
    if not calls:
        if spec.allow_text_answer and turn.thought:
            turn.final_answer = turn.thought
        else:
            turn.fail("missing_tool_call", "the message has no tool_calls")
        return turn
    if len(calls) > 1:
        turn.fail("multiple_actions", f"{len(calls)} tool calls; a turn makes exactly one")
    schemas = _schemas(spec.tools)
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not function.get("name"):
            turn.fail("malformed_tool_call", "a tool call without function.name")
            continue
        name, raw = function["name"], function.get("arguments", "")
        turn.actions.append(Action(name, raw if isinstance(raw, str) else json.dumps(raw)))
        if spec.tools is not None and name not in schemas:
            turn.fail("unknown_tool", f"tool {name!r} is not one of {', '.join(schemas)}")
            continue
        spec.check_name(turn, name, "unknown_tool")
        try:
            arguments = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError as error:
            turn.fail("arguments_not_json", f"arguments of {name} are not JSON ({error.msg})")
            continue
        if not isinstance(arguments, dict):
            turn.fail("arguments_not_object", f"arguments of {name} must be a JSON object")
            continue
        turn.actions[-1].argument = json.dumps(arguments, sort_keys=True, ensure_ascii=False)
        validator = schemas.get(name)
        if validator is not None:
            problem = next(iter(validator.iter_errors(arguments)), None)
            if problem is not None:
                turn.fail("schema_mismatch", f"arguments of {name}: {problem.message}")
    return turn


def _schemas(tools: tuple[dict[str, Any], ...] | None) -> dict[str, Draft202012Validator]:
    if not tools:
        return {}
    return _compile(json.dumps(tools, sort_keys=True))


@lru_cache(maxsize=64)
def _compile(tools_json: str) -> dict[str, Draft202012Validator]:
    from jsonschema import Draft202012Validator  # imported when a tool schema is first checked

    validators = {}
    for tool in json.loads(tools_json):
        function = tool.get("function", tool)
        validators[function["name"]] = Draft202012Validator(function.get("parameters") or {"type": "object"})
    return validators
