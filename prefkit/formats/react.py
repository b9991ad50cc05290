"""ReAct turns: AgentBench DBBench (`Action: Operation` + ```sql, `Action: Answer` + `Final Answer: [...]`)
and the ReAct paper's numbered `Thought N:` / `Action N: Tool[arg]`.

The checks mirror what the benchmarks' own parsers accept: DBBench reads `Action: (.*?)\\n`, SQL from
```` ```sql\\n...\\n``` ````, and an answer from `\\nFinal Answer:` parsed as a Python list; ReAct splits on
`\\nAction N: ` and expects `Name[argument]` with nothing after it.
"""

from __future__ import annotations

import ast
import json
import math
import re

from prefkit.formats.base import Action, ActionSpec, ParsedTurn, begin

NAME = "react"

# Any line that looks like an action label, whatever its case or spacing, so we can say what is wrong with it.
# Matched in "\n" + text: a pattern that opens with a literal newline is searched for in C, where one
# anchored at every line start (re.M) is tried at every position. The newline after the line is looked at,
# not consumed, so the next line can match.
_ACTION_LINE = re.compile(r"\n[ \t]*(action)(?:[ \t]+(\d+))?[ \t]*:([^\n]*)(?=(\n?))", re.I)
_EXACT_LABEL = re.compile(r"Action(?: \d+)?:")
_INLINE_ACTION = re.compile(r"\bAction(?: \d+)?: ")  # only consulted when no line starts with it
_THOUGHT_LABEL = re.compile(r"^\s*Thought(?:[ \t]+(\d+))?[ \t]*:[ \t]*", re.I)
_BRACKET = re.compile(r"([A-Za-z_][\w ]*?)\[(.*)\]", re.S)
_WORD = re.compile(r"[A-Za-z_]\w*")
_SQL_BLOCK = re.compile(r"```sql\n([\s\S]*?)\n```")
_ANY_FENCE = re.compile(r"```")
_FINAL_ANSWER = re.compile(r"\nFinal Answer:(.*)")
_ANSWER_WORDS = ("Answer", "Finish")


def parse(message: dict, spec: ActionSpec) -> ParsedTurn:
    """Parse one assistant turn in the ReAct / DBBench format."""
    turn, text = begin(NAME, message)
    if not turn.valid:
        return turn
    padded = "\n" + text  # positions in `padded` are one past the same place in `text`
    mentions_action = "action" in text.lower()  # most chatty turns never say it: no search needed
    lines = list(_ACTION_LINE.finditer(padded)) if mentions_action else []
    if not lines:
        if mentions_action and _INLINE_ACTION.search(text):
            turn.fail("action_not_on_own_line", "'Action:' must start its own line")
        else:
            turn.fail("missing_action", "no 'Action:' line")
        turn.thought = _strip_thought_label(text)
        return turn
    if len(lines) > 1:
        turn.fail("multiple_actions", f"{len(lines)} 'Action:' lines; a turn takes exactly one action")
    first = lines[0]
    turn.thought = _strip_thought_label(padded[: first.start()])
    if spec.require_thought and not turn.thought:
        turn.fail("missing_thought", "no reasoning before the action")
    label = padded[first.start() : first.start(3)].strip()
    action_text = first.group(3)
    if not _EXACT_LABEL.fullmatch(label) or not action_text.startswith(" "):
        turn.fail("malformed_action_label", f"the label {label!r} must be written exactly 'Action: ' (one space)")
    else:
        action_text = action_text[1:]
    rest = padded[first.end() + len(first.group(4)) :]
    bracket = _BRACKET.fullmatch(action_text.strip())
    style = spec.style or ("numbered" if (bracket or first.group(2)) else "dbbench")
    if style == "numbered":
        _parse_numbered(turn, text, first, bracket, rest, spec)
    else:
        _parse_dbbench(turn, action_text, first.group(4) == "\n", rest, spec)
    # Record the extra actions too, so verbosity rules can count them.
    turn.actions.extend(Action(line.group(3).strip(), "") for line in lines[1:])
    return turn


def _strip_thought_label(text: str) -> str:
    return _THOUGHT_LABEL.sub("", text, count=1).strip()


def _parse_numbered(
    turn: ParsedTurn, text: str, line: re.Match, bracket: re.Match | None, rest: str, spec: ActionSpec
) -> None:
    if bracket is None:
        turn.fail("malformed_action", f"expected 'Tool[argument]', found {line.group(3).strip()!r}")
        return
    name, argument = bracket.group(1).strip(), bracket.group(2)
    turn.actions.append(Action(name, argument))
    if spec.check_name(turn, name):
        spec.check_argument(turn, name, argument)
    if name in _ANSWER_WORDS or (spec.actions is None and name.lower() == "finish"):
        turn.final_answer = argument
    thought_number = _THOUGHT_LABEL.match(text)
    step = line.group(2)
    if thought_number and thought_number.group(1) and step and thought_number.group(1) != step:
        turn.fail("step_mismatch", f"'Thought {thought_number.group(1)}' is followed by 'Action {step}'")
    if rest.strip():
        # ReAct splits on the action line and reads the remainder as part of the action: nothing may follow.
        turn.trailing = rest.strip()
        turn.fail("trailing_text", "text after 'Action N: Tool[...]' would be read as part of the action")


def _parse_dbbench(turn: ParsedTurn, action_text: str, terminated: bool, rest: str, spec: ActionSpec) -> None:
    word = action_text.strip()
    if not _WORD.fullmatch(word):
        turn.fail("malformed_action", f"expected one action word after 'Action: ', found {word!r}")
        return
    if word != action_text:
        turn.fail("malformed_action", f"spaces around {word!r}: the parser reads the whole rest of the line")
    if not terminated:
        turn.fail("unterminated_action_line", "the 'Action:' line must end with a newline")
    turn.actions.append(Action(word, ""))
    if not spec.check_name(turn, word):
        return
    if word == "Operation":
        blocks = list(_SQL_BLOCK.finditer(rest))
        if not blocks:
            detail = "a code fence that is not '```sql' + newline" if _ANY_FENCE.search(rest) else "no code block"
            turn.fail("missing_sql_block", f"'Action: Operation' needs one ```sql block ({detail})")
            return
        if len(blocks) > 1:
            turn.fail("multiple_actions", f"{len(blocks)} SQL blocks; only the first would run")
            turn.actions.extend(Action(word, block.group(1).strip()) for block in blocks[1:])
        sql = blocks[0].group(1).strip()
        if not sql:
            turn.fail("empty_action", "the SQL block is empty")
        turn.actions[0].argument = sql
        spec.check_argument(turn, word, sql)
        turn.trailing = rest[blocks[-1].end() :].strip()
        return
    # DBBench treats every other action word as an answer.
    rest = "\n" + rest  # the action line's newline, which `Final Answer:` must follow
    answer = _FINAL_ANSWER.search(rest)
    if answer is None:
        turn.fail("missing_final_answer", f"'Action: {word}' needs a 'Final Answer: [...]' line after it")
        return
    raw = answer.group(1).strip()
    turn.actions[0].argument = raw
    try:
        value = _python_literal(raw)
    except (ValueError, SyntaxError):
        turn.fail("final_answer_not_list", f"'Final Answer:' must be a Python list, found {raw[:60]!r}")
        return
    if not isinstance(value, (list, tuple)):
        turn.fail("final_answer_not_list", f"'Final Answer:' must be a Python list, found {type(value).__name__}")
        return
    turn.final_answer = list(value)
    spec.check_argument(turn, word, raw)
    turn.trailing = rest[answer.end() :].strip()


def _python_literal(raw: str):
    """`ast.literal_eval(raw)`, answered by the JSON parser when both read it the same way (five times faster
    on the usual `["name", 3]`): no backslash escapes, and no value Python spells differently (true, null, NaN)."""
    if "\\" not in raw:
        try:
            value = json.loads(raw)
        except ValueError:
            pass
        else:
            if _plain(value):
                return value
    return ast.literal_eval(raw)


def _plain(value) -> bool:
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int)) and not isinstance(value, bool)
