"""CodeAct turns: optional `<thought>...</thought>`, then one `<execute>...</execute>` block, or an answer
(`<solution>...</solution>` or plain text). CodeAct itself joins every execute block; prefkit asks for one."""

from __future__ import annotations

import re

from prefkit.formats.base import Action, ActionSpec, ParsedTurn, begin

NAME = "codeact"

_TAGS = ("thought", "execute", "solution")
_BLOCK = {tag: re.compile(rf"<{tag}>(.*?)</{tag}>", re.S) for tag in _TAGS}
_MARKS = [(f"<{tag}>", f"</{tag}>") for tag in _TAGS]
_FENCE = re.compile(r"```")


def parse(message: dict, spec: ActionSpec) -> ParsedTurn:
    """Parse one assistant turn in the CodeAct format."""
    turn, text = begin(NAME, message)
    if not turn.valid:
        return turn
    for opening, closing in _MARKS:
        opened, closed = text.count(opening), text.count(closing)
        if opened != closed:
            turn.fail("unclosed_tag", f"{opened} {opening} but {closed} {closing}")
    executes = list(_BLOCK["execute"].finditer(text))
    solutions = list(_BLOCK["solution"].finditer(text))
    thought = _BLOCK["thought"].search(text)
    first = executes[0] if executes else (solutions[0] if solutions else None)
    if thought:
        turn.thought = thought.group(1).strip()
    elif first is not None:
        turn.thought = text[: first.start()].strip()
    if len(executes) > 1:
        turn.fail("multiple_actions", f"{len(executes)} <execute> blocks; a turn runs exactly one")
    if executes and solutions:
        turn.fail("multiple_actions", "both <execute> and <solution>; act or answer, not both")
    if executes:
        code = executes[0].group(1).strip()
        turn.actions.extend(Action("execute", block.group(1).strip()) for block in executes)
        if not code:
            turn.fail("empty_action", "the <execute> block is empty")
        spec.check_argument(turn, "execute", code)
        turn.actions.extend(Action("solution", block.group(1).strip()) for block in solutions)
        turn.trailing = text[executes[-1].end() :].strip()
    elif solutions:
        turn.final_answer = solutions[0].group(1).strip()
        turn.actions.append(Action("solution", turn.final_answer))
        turn.trailing = text[solutions[-1].end() :].strip()
    else:
        if _FENCE.search(text):
            turn.fail("code_outside_execute", "a code block outside <execute> is never run")
        turn.final_answer = text.strip()
    if spec.require_thought and not turn.thought and executes:
        turn.fail("missing_thought", "no reasoning before <execute>")
    return turn
