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
        ({**message(), "tool_calls": message()["tool_calls"] * 2}, "discipline.multiple_actions"),
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


# A BFCL function doc, in BFCL's own dialect (its data files' "parameters": {"type": "dict", ...}).
BFCL_TOOL = {
    "name": "calculate_triangle_area",
    "description": "Calculate the area of a triangle given its base and height.",
    "parameters": {
        "type": "dict",
        "properties": {
            "base": {"type": "float", "description": "The base of the triangle."},
            "height": {"type": "integer", "description": "The height of the triangle."},
            "unit": {"type": "any", "description": "The unit of measure."},
            "sides": {"type": "tuple", "items": {"type": "float"}, "description": "All three sides."},
        },
        "required": ["base", "height"],
    },
}


def legacy(name: str, arguments: str) -> dict:
    return {"role": "assistant", "content": "", "function_call": {"name": name, "arguments": arguments}}


# Cases from BFCL's checker, ShishirPatil/gorilla berkeley-function-call-leaderboard/bfcl/eval_checker/
# ast_eval/ast_checker.py at 0f6fbeb6a9222978acda2ed13353911afc17908c (simple_function_checker, type_checker).
@pytest.mark.parametrize(
    "arguments,code",
    [
        ({"base": 10.0, "height": 5}, None),
        ({"base": 10, "height": 5}, None),  # "Allow python auto conversion from int to float"
        ({"base": 10.0, "height": 5, "sides": [3.0, 4.0, 5.0]}, None),  # a tuple arrives as a JSON list
        ({"base": 10.0, "height": 5, "unit": "cm"}, None),
        ({"base": 10.0, "height": 5, "unit": 3}, "format.schema_mismatch"),  # "any": str in PYTHON_TYPE_MAPPING
        ({"base": "10", "height": 5}, "format.schema_mismatch"),  # "Incorrect type for parameter"
        ({"base": 10.0}, "format.schema_mismatch"),  # "Missing required parameter"
        ({"base": 10.0, "height": 5, "color": "red"}, "format.unexpected_argument"),  # "Unexpected parameter"
    ],
)
def test_bfcl_dialect_schemas_check_as_bfcls_checker_does(arguments, code):
    parsed = parse_turn("tool-call", legacy(BFCL_TOOL["name"], json.dumps(arguments)), ActionSpec(tools=(BFCL_TOOL,)))
    assert parsed.codes == ([code] if code else []), parsed.violations
    if code == "format.unexpected_argument":
        assert "BFCL's checker refuses parameters a function does not declare" in parsed.violations[0].message


def test_an_undeclared_argument_names_the_rule_that_refuses_it():
    parsed = parse_turn("tool-call", message(arguments='{"sql": "SELECT 1", "limit": 5}'), ActionSpec(tools=TOOLS))
    assert parsed.codes == ["format.unexpected_argument"]
    assert "the tool's schema sets additionalProperties: false" in parsed.violations[0].message
    # commit_final_answer's schema does not forbid extras, so JSON Schema (and prefkit) lets one through.
    extra = message("commit_final_answer", '{"answers": ["x"], "note": "done"}')
    assert parse_turn("tool-call", extra, ActionSpec(tools=TOOLS)).valid


def test_the_legacy_function_call_field_is_a_call():
    parsed = parse_turn("tool-call", legacy("execute_sql", '{"sql": "SELECT 1"}'), ActionSpec(tools=TOOLS))
    assert (
        parsed.valid
        and parsed.action.name == "execute_sql"
        and json.loads(parsed.action.argument) == {"sql": "SELECT 1"}
    )
    both = {**message(), "function_call": {"name": "execute_sql", "arguments": '{"sql": "SELECT 2"}'}}
    assert "discipline.multiple_actions" in parse_turn("tool-call", both, ActionSpec(tools=TOOLS)).codes
