"""The xml-react format: <node>, optional <next_node>, <content>; Execute carries a python_sandbox call."""

import json

import pytest

from prefkit.formats import ActionSpec, parse_turn

CALL = json.dumps({"tool_name": "python_sandbox", "arguments": {"code": "print(1)"}})


def parse(text, **spec):
    return parse_turn("xml-react", {"role": "assistant", "content": text}, ActionSpec(**spec))


def test_execute_node_with_tool_call_is_valid():
    parsed = parse(f"<node>Execute</node><next_node>Reflect</next_node><content>{CALL}</content>")
    assert parsed.valid and parsed.action.name == "Execute"


def test_plan_and_finish_nodes_are_valid():
    assert parse("<node>Plan</node><next_node>Execute</next_node><content>Load the file, then count.</content>").valid
    assert parse("<node>Finish</node><content>42</content>").final_answer == "42"


@pytest.mark.parametrize(
    "text,code",
    [
        ("<content>hello</content>", "format.missing_action"),
        ("<node>Dance</node><content>x</content>", "format.unknown_node"),
        ("<node>Plan</node><next_node>Sleep</next_node><content>x</content>", "format.unknown_node"),
        ("<node>Plan</node>", "format.missing_body"),
        ("<node>Execute</node><content>print(1)</content>", "format.bad_tool_payload"),
        (
            '<node>Execute</node><content>{"tool_name": "shell", "arguments": {"code": "ls"}}</content>',
            "format.unknown_tool",
        ),
        (
            '<node>Execute</node><content>{"tool_name": "python_sandbox", "arguments": {"code": ""}}</content>',
            "format.empty_action",
        ),
        ("<node>Plan</node><node>Execute</node><content>x</content>", "discipline.multiple_actions"),
        ("<node>Plan</node><content>x", "format.unclosed_tag"),
    ],
)
def test_broken_turns_name_their_violation(text, code):
    assert code in parse(text).codes


def test_node_names_come_from_the_spec():
    assert parse("<node>Think</node><content>x</content>", actions=("Think", "Act")).valid
