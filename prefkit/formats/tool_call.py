"""OpenAI tool-call turns: an assistant message with `tool_calls` (or the legacy single `function_call` of
older OpenAI clients and ToolBench) whose arguments parse as a JSON object and match the tool's schema
(AgentBench's current tasks, BFCL).

A tool may be declared in BFCL's own schema dialect. Its types follow PYTHON_TYPE_MAPPING in
ShishirPatil/gorilla `berkeley-function-call-leaderboard/bfcl/eval_checker/ast_eval/ast_checker.py`
(commit 0f6fbeb6a9222978acda2ed13353911afc17908c):
- `dict` is an object, `float` a number (an int is accepted, "python auto conversion from int to float"),
  and `tuple` an array;
- `any` must be a string there (`"any": str`), and so it is here.

BFCL's `simple_function_checker` refuses any parameter a function does not declare ("Unexpected
parameter"), so a BFCL-dialect tool takes no undeclared argument. An OpenAI-style schema refuses one only
when it sets `additionalProperties: false`. The violation says which of the two rules applies.

OpenBMB/ToolBench (commit e8c6cd1d28d3da61710e59eaad83632d62384c65), `toolbench/inference/Downstream_tasks/
rapidapi.py` `rapidapi_wrapper._step`, dispatches a call to the first function whose name ends with the name
called; `tool_match: suffix` in the spec turns that on (accepted, and a discipline violation). Several calls in
one message are run by AgentBench's function-calling DBBench and BFCL's parallel categories alike: they are a
discipline violation unless the spec sets `parallel_calls` (BFCL parallel). `executed` is the first call."""

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
    calls = list(message.get("tool_calls") or [])
    if isinstance(message.get("function_call"), dict):  # the legacy form: one call, no id
        calls.append({"type": "function", "function": message["function_call"]})
    if not calls:
        if spec.allow_text_answer and turn.thought:
            turn.final_answer = turn.thought
        else:
            turn.fail("missing_tool_call", "the message has no tool_calls")
        return turn
    if len(calls) > 1 and not spec.parallel_calls:
        turn.lax("multiple_actions", f"{len(calls)} tool calls; a turn makes exactly one")
    schemas = _schemas(spec.tools)
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not function.get("name"):
            turn.fail("malformed_tool_call", "a tool call without function.name")
            continue
        name, raw = function["name"], function.get("arguments", "")
        turn.actions.append(Action(name, raw if isinstance(raw, str) else json.dumps(raw)))
        if spec.tools is not None and name not in schemas:
            resolved = _by_suffix(name, schemas) if spec.tool_match == "suffix" else None
            if resolved is None:
                turn.fail("unknown_tool", f"tool {name!r} is not one of {', '.join(schemas)}")
                continue
            turn.lax("tool_name_suffix", f"{name!r} is resolved by the end of its name to {resolved!r}; call it so")
            name = resolved
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
        validator, bfcl = schemas.get(name, (None, False))
        problems = list(validator.iter_errors(arguments)) if validator is not None else []
        extra = next((p for p in problems if p.validator == "additionalProperties"), None)
        other = next((p for p in problems if p.validator != "additionalProperties"), None)
        if extra is not None:
            rule = (
                "BFCL's checker refuses parameters a function does not declare"
                if bfcl
                else "the tool's schema sets additionalProperties: false"
            )
            turn.fail("unexpected_argument", f"arguments of {name}: {extra.message} ({rule})")
        if other is not None:
            turn.fail("schema_mismatch", f"arguments of {name}: {other.message}")
    if turn.accepted and turn.actions:
        turn.accept(turn.actions[0])
    return turn


def _by_suffix(name: str, schemas: dict) -> str | None:
    """ToolBench's rule (rapidapi.py `_step`): the first declared function whose name ends with `name`."""
    return next((declared for declared in schemas if declared.endswith(name)), None)


# BFCL's type names (ast_checker.py PYTHON_TYPE_MAPPING) as JSON Schema; "float" also takes an int there.
BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": "string"}


def _is_bfcl(schema: Any) -> bool:
    """Whether a parameters schema uses BFCL's type names anywhere."""
    if isinstance(schema, dict):
        return schema.get("type") in BFCL_TYPES or any(_is_bfcl(value) for value in schema.values())
    if isinstance(schema, list):
        return any(_is_bfcl(item) for item in schema)
    return False


def _from_bfcl(schema: Any) -> Any:
    """A BFCL parameters schema as JSON Schema, with every `type` translated."""
    if isinstance(schema, dict):
        out = {key: _from_bfcl(value) for key, value in schema.items()}
        if isinstance(schema.get("type"), str):
            out["type"] = BFCL_TYPES.get(schema["type"], schema["type"])
        return out
    if isinstance(schema, list):
        return [_from_bfcl(item) for item in schema]
    return schema


def _schemas(tools: tuple[dict[str, Any], ...] | None) -> dict[str, tuple[Draft202012Validator, bool]]:
    if not tools:
        return {}
    return _compile(json.dumps(tools, sort_keys=True))


@lru_cache(maxsize=64)
def _compile(tools_json: str) -> dict[str, tuple[Draft202012Validator, bool]]:
    """name -> (validator, whether the tool is in BFCL's dialect)."""
    from jsonschema import Draft202012Validator  # imported when a tool schema is first checked

    validators = {}
    for tool in json.loads(tools_json):
        function = tool.get("function", tool)
        parameters = function.get("parameters") or {"type": "object"}
        bfcl = _is_bfcl(parameters)
        if bfcl:
            parameters = {**_from_bfcl(parameters), "additionalProperties": False}
        validators[function["name"]] = (Draft202012Validator(parameters), bfcl)
    return validators
