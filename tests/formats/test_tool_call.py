"""The tool-call format: one OpenAI tool call whose JSON arguments match the tool's schema."""

import json

import pytest

from prefkit.formats import ActionSpec, parse_turn

TOOLS = (
    {
        "type": "function",
        "function": {
            "name": "execute_sql",
            "parameters": {
                "type": "object",
                "properties": {"sql": {"type": "string"}},
                "required": ["sql"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "commit_final_answer",
            "parameters": {
                "type": "object",
                "properties": {"answers": {"type": "array", "items": {"type": "string"}}},
                "required": ["answers"],
            },
        },
    },
)


def message(name="execute_sql", arguments=None, content="Look at the table."):
    args = json.dumps({"sql": "SELECT 1"}) if arguments is None else arguments
    return {
        "role": "assistant",
        "content": content,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": name, "arguments": args}}],
    }


def codes(msg, **spec):
    return parse_turn("tool-call", msg, ActionSpec(tools=TOOLS, **spec)).codes


def test_valid_call():
    parsed = parse_turn("tool-call", message(), ActionSpec(tools=TOOLS))
    assert parsed.valid and parsed.action.name == "execute_sql" and parsed.thought == "Look at the table."


@pytest.mark.parametrize(
    "msg,code",
    [
        ({"role": "assistant", "content": "I will query."}, "format.missing_tool_call"),
        (message(arguments='{"sql": "SELECT 1"'), "format.arguments_not_json"),
        (message(arguments='["SELECT 1"]'), "format.arguments_not_object"),
        (message(name="drop_db"), "format.unknown_tool"),
        (message(arguments='{"query": "SELECT 1"}'), "format.schema_mismatch"),
        (message(arguments='{"sql": 1}'), "format.schema_mismatch"),
        ({**message(), "tool_calls": message()["tool_calls"] * 2}, "format.multiple_actions"),
        (
            {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {}}]},
            "format.malformed_tool_call",
        ),
    ],
)
def test_broken_calls_name_their_violation(msg, code):
    assert code in codes(msg)


def test_text_answer_allowed_when_the_spec_says_so():
    assert codes({"role": "assistant", "content": "42"}, allow_text_answer=True) == []
