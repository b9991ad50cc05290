"""ALFWorld turns, in AgentBench's `THOUGHT: ...` / `ACTION: <command>` dialect or the ReAct paper's
`think: ...` / bare-command dialect.

AgentBench (v0.2) reads the command case-sensitively after `ACTION:`, first line only, lower-cased, and
matches it against the admissible commands; ReAct stops generation at the first newline, so only the
first line of a turn reaches the environment.
"""

from __future__ import annotations

import re

from prefkit.formats.base import Action, ActionSpec, ParsedTurn, begin, compiled_pattern

NAME = "alfworld"

_OBJ = r"[a-z][a-z\-]*(?: [a-z][a-z\-]*)*(?: \d+)?"
DEFAULT_COMMANDS = (
    rf"go to {_OBJ}",
    rf"open {_OBJ}",
    rf"close {_OBJ}",
    rf"take {_OBJ} from {_OBJ}",
    rf"put {_OBJ} (?:in/on|in|on) {_OBJ}",
    rf"toggle {_OBJ}",
    rf"use {_OBJ}",
    rf"examine {_OBJ}",
    rf"(?:heat|cool|clean|slice) {_OBJ} with {_OBJ}",
    r"look",
    r"inventory",
)
_DEFAULT = re.compile("|".join(f"(?:{c})" for c in DEFAULT_COMMANDS))
_AGENTBENCH_LABEL = re.compile(r"\b(THOUGHT|ACTION)\s*:", re.I)
_ACTION = re.compile(r"ACTION:")
_ACTION_ANY_CASE = re.compile(r"\baction\s*:", re.I)
_THOUGHT = re.compile(r"^\s*THOUGHT\s*:\s*", re.I)
_THINK = re.compile(r"think\s*:\s*(.*)", re.I | re.S)


def parse(message: dict, spec: ActionSpec) -> ParsedTurn:
    """Parse one assistant turn in either ALFWorld dialect."""
    turn, text = begin(NAME, message)
    if not turn.valid:
        return turn
    text = text.strip()
    style = spec.style or ("agentbench" if _has_agentbench_label(text) else "react")
    if style == "agentbench":
        _parse_agentbench(turn, text, spec)
    else:
        _parse_react(turn, text, spec)
    return turn


def _has_agentbench_label(text: str) -> bool:
    # A case-insensitive search tries every position of the turn; most react-style turns hold neither word.
    lowered = text.lower()
    return ("thought" in lowered or "action" in lowered) and _AGENTBENCH_LABEL.search(text) is not None


def _parse_agentbench(turn: ParsedTurn, text: str, spec: ActionSpec) -> None:
    labels = list(_ACTION.finditer(text))
    if not labels:
        head = _ACTION_ANY_CASE.search(text)
        turn.thought = _THOUGHT.sub("", text[: head.start()] if head else text).strip()
        if head:
            turn.fail("action_label_case", f"found {head.group(0)!r}; the parser reads only uppercase 'ACTION:'")
        else:
            turn.fail("missing_action", "no 'ACTION:' line")
        return
    if len(labels) > 1:
        turn.fail("multiple_actions", f"{len(labels)} 'ACTION:' labels; a turn takes exactly one command")
    first = labels[0]
    turn.thought = _THOUGHT.sub("", text[: first.start()]).strip()
    if spec.require_thought and not turn.thought:
        turn.fail("missing_thought", "no THOUGHT before the action")
    line, _, rest = text[first.end() :].partition("\n")
    turn.trailing = rest.strip()
    _check_command(turn, line.strip().lower(), spec)
    for extra in labels[1:]:
        command = text[extra.end() :].partition("\n")[0].strip().lower()
        turn.actions.append(Action(command.split(" ", 1)[0], command))


def _parse_react(turn: ParsedTurn, text: str, spec: ActionSpec) -> None:
    lines = [(line[1:] if line.startswith(">") else line).strip() for line in text.splitlines() if line.strip()]
    first, others = lines[0], lines[1:]
    think = _THINK.fullmatch(first)
    if think:
        turn.thought = think.group(1).strip()
        if not turn.thought:
            turn.fail("empty_thought", "'think:' with nothing after it")
    else:
        _check_command(turn, first.lower(), spec)
    extra_steps = [line for line in others if _THINK.fullmatch(line) or _is_command(line.lower(), spec)]
    turn.actions.extend(Action(step.split(" ", 1)[0], step) for step in extra_steps)
    if extra_steps:
        turn.fail(
            "multiple_actions", f"{1 + len(extra_steps)} steps in one turn; the environment reads only the first line"
        )
    turn.trailing = "\n".join(others)


def _is_command(command: str, spec: ActionSpec) -> bool:
    if spec.admissible is not None:
        return command in spec.admissible
    if spec.commands is not None:
        return any(compiled_pattern(pattern).fullmatch(command) for pattern in spec.commands)
    return _DEFAULT.fullmatch(command) is not None


def _check_command(turn: ParsedTurn, command: str, spec: ActionSpec) -> None:
    if not command:
        turn.fail("empty_action", "no command after the action label")
        return
    verb = command.split(" ", 1)[0]
    turn.actions.append(Action(verb, command))
    if not _is_command(command, spec):
        turn.fail("unknown_command", f"{command[:80]!r} is not an admissible ALFWorld command")
