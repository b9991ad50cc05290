"""CodeAct turns, read as MINT reads them: xingyaoww/code-act (commit d607f56c9cfe9e8632ebaf65dcaf2b4b7fe1c6f8),
`mint/agents/base.py` (`LMAgent.stop_words`, `lm_output_to_action`) and `mint/envs/general_env.py`
(`GeneralEnv.parse_action`):
- generation stops at `\\nObservation:`, `\\nExpert feedback:`, `\\nTask:` or `\\n---`; nothing after reaches MINT;
- a turn holding `<solution>` anywhere proposes an answer: every `<solution>(.*?)</solution>` stripped and
  joined by newlines; an empty join is a parse error ("No answer found.") and any `<execute>` is not run;
- any other turn uses a tool: every `<execute>(.*?)</execute>` stripped and joined by newlines, run as one
  cell; an empty join, which includes a turn with neither tag, is a parse error ("No code found.");
- tags are case-sensitive.
prefkit's stricter rules: one `<execute>` block or one `<solution>`, not both, every tag closed.
"""

from __future__ import annotations

import re

from prefkit.formats.base import Action, ActionSpec, ParsedTurn, begin

NAME = "codeact"

STOP_WORDS = ("\nObservation:", "\nExpert feedback:", "\nTask:", "\n---")
_TAGS = ("thought", "execute", "solution")
_BLOCK = {tag: re.compile(rf"<{tag}>(.*?)</{tag}>", re.S) for tag in _TAGS}
_MARKS = [(f"<{tag}>", f"</{tag}>") for tag in _TAGS]
_FENCE = re.compile(r"```")
_ANY_CASE_TAG = re.compile(r"</?(execute|solution)>", re.I)


def parse(message: dict, spec: ActionSpec) -> ParsedTurn:
    """Parse one assistant turn in the CodeAct format."""
    turn, text = begin(NAME, message)
    if not turn.valid:
        return turn
    cut = min((index for index in (text.find(word) for word in STOP_WORDS) if index >= 0), default=len(text))
    text, invented = text[:cut], text[cut:]
    executes = list(_BLOCK["execute"].finditer(text))
    solutions = list(_BLOCK["solution"].finditer(text))
    thought = _BLOCK["thought"].search(text)
    first = (solutions or executes or [None])[0]
    if thought:
        turn.thought = thought.group(1).strip()
    elif first is not None:
        turn.thought = text[: min(block.start() for block in executes + solutions)].strip()
    if "<solution>" in text:
        _solution(turn, text, solutions)
    else:
        _execute(turn, text, executes, spec)
    if not turn.accepted:
        return turn
    if invented.strip():
        turn.ignored = (turn.ignored + invented).strip()
        turn.lax("invented_observation", f"the turn goes on past {invented.strip().split(':')[0]!r}; MINT stops there")
    for opening, closing in _MARKS:
        opened, closed = text.count(opening), text.count(closing)
        if opened != closed:
            turn.lax("unclosed_tag", f"{opened} {opening} but {closed} {closing}")
    if spec.require_thought and not turn.thought and executes and "<solution>" not in text:
        turn.lax("missing_thought", "no reasoning before <execute>")
    return turn


def _solution(turn: ParsedTurn, text: str, solutions: list[re.Match]) -> None:
    answer = "\n".join(block.group(1).strip() for block in solutions)
    turn.actions.extend(Action("solution", block.group(1).strip()) for block in solutions)
    if not answer:
        detail = "an unclosed <solution>" if not solutions else "an empty <solution>"
        turn.fail("empty_answer", f"{detail}: MINT finds no answer")
        return
    turn.final_answer = answer
    turn.trailing = text[solutions[-1].end() :].strip()
    turn.accept(Action("solution", answer), text[solutions[-1].end() :])
    if len(solutions) > 1:
        turn.lax("multiple_actions", f"{len(solutions)} <solution> blocks; MINT joins them")
    if "<execute>" in text:
        turn.lax("multiple_actions", "both <execute> and <solution>: MINT takes the answer and never runs the code")


def _execute(turn: ParsedTurn, text: str, executes: list[re.Match], spec: ActionSpec) -> None:
    code = "\n".join(block.group(1).strip() for block in executes)
    turn.actions.extend(Action("execute", block.group(1).strip()) for block in executes)
    if not code:
        if executes:
            turn.fail("empty_action", "the <execute> block is empty: MINT finds no code")
        elif "<execute>" in text:
            turn.fail("unclosed_tag", "<execute> is never closed: MINT finds no code")
        elif _ANY_CASE_TAG.search(text):
            tag = _ANY_CASE_TAG.search(text).group(0)
            turn.fail("tag_case", f"{tag}: MINT's tags are lowercase")
        elif _FENCE.search(text):
            turn.fail("code_outside_execute", "a code block outside <execute> is never run")
        else:
            turn.fail("missing_action", "neither <execute> nor <solution>: MINT finds no code")
        return
    spec.check_argument(turn, "execute", code)
    turn.trailing = text[executes[-1].end() :].strip()
    turn.accept(Action("execute", code), text[executes[-1].end() :])
    if len(executes) > 1:
        turn.lax("multiple_actions", f"{len(executes)} <execute> blocks; MINT joins them into one cell")
    if any(not block.group(1).strip() for block in executes):
        turn.lax("empty_action", "an empty <execute> block")
