"""XML Plan/Execute/Reflect/Finish turns (the CodeAgent style): `<node>NAME</node>`, an optional
`<next_node>NAME</next_node>`, and a `<content>` body; an Execute body is the JSON tool call
`{"tool_name": "python_sandbox", "arguments": {"code": "..."}}`.

No benchmark ships a parser for this format (it is the CodeAgent model card's own): prefkit's reading takes
the first node, so a second node is a discipline violation and everything else is the format's."""

from __future__ import annotations

import json
import re

from prefkit.formats.base import Action, ActionSpec, ParsedTurn, begin

NAME = "xml-react"

DEFAULT_NODES = ("Plan", "Execute", "Reflect", "Finish")
DEFAULT_TOOLS = ("python_sandbox",)
_NODE = re.compile(r"<node>\s*(.*?)\s*</node>", re.S)
_NEXT = re.compile(r"<next_node>\s*(.*?)\s*</next_node>", re.S)
_BODY = re.compile(r"<content>(.*?)</content>", re.S)
_TAG = re.compile(r"</?(node|next_node|content)>")


def parse(message: dict, spec: ActionSpec) -> ParsedTurn:
    """Parse one assistant turn in the XML node format."""
    turn, text = begin(NAME, message)
    if not turn.valid:
        return turn
    tags = [match.group(0) for match in _TAG.finditer(text)]
    for name in ("node", "next_node", "content"):
        if tags.count(f"<{name}>") != tags.count(f"</{name}>"):
            turn.fail("unclosed_tag", f"<{name}> is not closed")
    nodes = _NODE.findall(text)
    allowed = spec.actions or DEFAULT_NODES
    if not nodes:
        turn.fail("missing_action", "no <node>...</node>")
        return turn
    if len(nodes) > 1:
        turn.lax("multiple_actions", f"{len(nodes)} <node> elements; a turn is one node")
    node = nodes[0]
    if node not in allowed:
        turn.fail("unknown_node", f"node {node!r} is not one of {', '.join(allowed)}")
    next_node = _NEXT.search(text)
    if next_node and next_node.group(1) not in allowed:
        turn.fail("unknown_node", f"next node {next_node.group(1)!r} is not one of {', '.join(allowed)}")
    bodies = _BODY.findall(text)
    if not bodies:
        turn.fail("missing_body", "no <content>...</content> body")
        return turn
    body = bodies[0].strip()
    turn.actions.append(Action(node, body))
    turn.actions.extend(Action(extra, "") for extra in nodes[1:])
    if node == "Execute":
        _check_tool_call(turn, body, spec)
    elif node == "Finish":
        turn.final_answer = body
    else:
        turn.thought = body
    if turn.accepted:
        turn.accept(turn.actions[0])
    return turn


def _check_tool_call(turn: ParsedTurn, body: str, spec: ActionSpec) -> None:
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as error:
        turn.fail("bad_tool_payload", f"the Execute body is not JSON ({error.msg})")
        return
    if not isinstance(payload, dict) or not isinstance(payload.get("arguments"), dict):
        turn.fail("bad_tool_payload", 'the Execute body must be {"tool_name": ..., "arguments": {...}}')
        return
    tools = tuple(tool["function"]["name"] for tool in spec.tools) if spec.tools else DEFAULT_TOOLS
    tool = payload.get("tool_name")
    if tool not in tools:
        turn.fail("unknown_tool", f"tool {tool!r} is not one of {', '.join(tools)}")
    code = payload["arguments"].get("code")
    if tool == "python_sandbox" and (not isinstance(code, str) or not code.strip()):
        turn.fail("empty_action", "python_sandbox needs a non-empty arguments.code string")
    turn.actions[0].argument = json.dumps(payload, sort_keys=True)
