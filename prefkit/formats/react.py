"""ReAct turns, in three styles, each read exactly as its benchmark's own loop reads it.

`dbbench`: AgentBench DBBench, THUDM/AgentBench branch v0.2 (commit 41e6807349f741e06428fae3e9e4d334e7002362),
`src/server/tasks/dbbench/__init__.py` `DBBench.start_sample`:
- the action is `re.search(r"Action: (.*?)\\n", text)`: the first `Action: ` anywhere in the turn, its line
  read up to a newline that must be there; only the exact word `Operation` operates;
- an operation runs the first `re.search(r"```sql\\n([\\s\\S]*?)\\n```", text)` of the whole turn, stripped,
  its newlines made spaces; no such block fails the sample (AGENT_VALIDATION_FAILED);
- every other action line, and a turn with none, is read as an answer: `re.search(r"\\nFinal Answer:(.*)")`,
  the sample completes even when its rest of line is empty (an empty answer is still an answer); the metric
  then tries `list(eval(answer))` and falls back to the raw text, so an answer that is not a list is graded.

`numbered`: the ReAct paper's HotpotQA/FEVER loop, ysymyth/ReAct (commit 6bdb3a1fd38b8188fc7ba4102969fe483df8fdc9),
`hotpotqa.ipynb` `webthink` and `wikienv.py` `WikiEnv.step`: generation stops at `\\nObservation N:`; the
turn is `.strip().split("\\nAction N: ")` into exactly a thought and an action (any other count is a bad call
that is asked again; a turn that opens with `Action N: ` is read as the act-only prompts continue it); the
action's first letter is lower-cased and it must read `name[argument]` with nothing after the closing bracket,
else the environment answers "Invalid action".

`fireact`: FireAct's unnumbered `Thought: ... / Action: tool[argument]`, anchen1011/FireAct (commit
94c6189f04b10fccae6bcd97a4632d6119266899), `generation.py` `run`: the action is what follows the first
`\\nAction: ` (up to a second one), or the turn minus its first eight characters when `Action: ` appears but
not after a newline; `action.split("[")[:2]` must give a tool name and an argument, whose last character is
dropped (the closing bracket); a name containing "finish" (any case) ends the episode, any other is called.

Where these loops are lenient (a second action after the first, an inline label, an answer that is not a
list), the turn is accepted and the leniency is a `discipline.*` violation.
"""

from __future__ import annotations

import ast
import json
import math
import re

from prefkit.formats.base import Action, ActionSpec, ParsedTurn, begin

NAME = "react"
STYLES = ("dbbench", "numbered", "fireact")

# Any line that looks like an action label, whatever its case or spacing, so we can say what is wrong with it.
# Matched in "\n" + text: a pattern that opens with a literal newline is searched for in C, where one
# anchored at every line start (re.M) is tried at every position.
_ACTION_LINE = re.compile(r"\n[ \t]*(action)(?:[ \t]+(\d+))?[ \t]*:([^\n]*)", re.I)
_THOUGHT_LABEL = re.compile(r"^\s*Thought(?:[ \t]+(\d+))?[ \t]*:[ \t]*", re.I)
_BRACKET = re.compile(r"[A-Za-z_][\w ]*?\[.*\]", re.S)

# AgentBench v0.2 dbbench/__init__.py; the DBBench environment's loop reads turns with these same patterns
DBBENCH_ACTION = re.compile(r"Action: (.*?)\n")
DBBENCH_SQL = re.compile(r"```sql\n([\s\S]*?)\n```")
DBBENCH_ANSWER = re.compile(r"\nFinal Answer:(.*)")
_ANY_FENCE = re.compile(r"```")
_WORD = re.compile(r"[A-Za-z_]\w*")
WIKIENV_ACTIONS = ("Search", "Lookup", "Finish", "Think")  # ReAct wikienv.py WikiEnv.step, first letter folded
FIREACT_TOOLS = ("search",)  # FireAct tools/__init__.py call_tools; a name containing "finish" ends the episode


def parse(message: dict, spec: ActionSpec) -> ParsedTurn:
    """Parse one assistant turn in the ReAct / DBBench format."""
    turn, text = begin(NAME, message)
    if not turn.valid:
        return turn
    turn.style = spec.style if spec.style in STYLES else _detect(text)
    if turn.style == "numbered":
        _parse_numbered(turn, text, spec)
    elif turn.style == "fireact":
        _parse_fireact(turn, text, spec)
    else:
        _parse_dbbench(turn, text, spec)
    if spec.require_thought and not turn.thought and turn.actions:
        turn.lax("missing_thought", "no reasoning before the action")
    return turn


def _detect(text: str) -> str:
    lines = list(_ACTION_LINE.finditer("\n" + text)) if "ction" in text else []
    if any(line.group(2) for line in lines):
        return "numbered"
    if lines and _BRACKET.fullmatch(lines[0].group(3).strip()):
        return "fireact"
    return "dbbench"


def _strip_thought_label(text: str) -> str:
    return _THOUGHT_LABEL.sub("", text, count=1).strip()


def _label_lines(text: str) -> list[re.Match]:
    """Every line that looks like an action label, in any case or spacing."""
    return list(_ACTION_LINE.finditer("\n" + text)) if "ction" in text.lower() else []


# --- dbbench -------------------------------------------------------------------------------------------


def _parse_dbbench(turn: ParsedTurn, text: str, spec: ActionSpec) -> None:
    action = DBBENCH_ACTION.search(text)
    word = action.group(1) if action else None
    turn.thought = _strip_thought_label(text[: action.start()] if action else text.split("\nFinal Answer:")[0])
    if word == "Operation":
        _db_operation(turn, text, action, spec)
    else:
        _db_answer(turn, text, action, spec)
    if turn.accepted:
        _db_discipline(turn, text, action, spec)


def _db_operation(turn: ParsedTurn, text: str, action: re.Match, spec: ActionSpec) -> None:
    turn.actions.append(Action("Operation", ""))
    if not spec.check_name(turn, "Operation"):
        return
    blocks = list(DBBENCH_SQL.finditer(text))
    if not blocks:
        detail = "a code fence that is not '```sql' + newline" if _ANY_FENCE.search(text) else "no code block"
        turn.fail("missing_sql_block", f"'Action: Operation' needs a ```sql block ({detail})")
        return
    first = blocks[0]
    sql = first.group(1).strip().replace("\n", " ")
    turn.actions[0].argument = first.group(1).strip()
    turn.actions.extend(Action("Operation", block.group(1).strip()) for block in blocks[1:])
    spec.check_argument(turn, "Operation", turn.actions[0].argument)
    turn.trailing = text[blocks[-1].end() :].strip()
    turn.accept(Action("Operation", sql), text[first.end() :])
    if len(blocks) > 1:
        turn.lax("multiple_actions", f"{len(blocks)} SQL blocks; AgentBench runs only the first")
    if first.start() < action.start():
        turn.lax("sql_before_action", "the SQL block comes before 'Action: Operation'")
    if not sql:
        turn.lax("empty_action", "the SQL block is empty; AgentBench would run an empty statement")
    elif len(_statements(sql)) > 1:
        turn.lax("multiple_statements", f"{len(_statements(sql))} SQL statements in one block; write one a turn")


def _db_answer(turn: ParsedTurn, text: str, action: re.Match | None, spec: ActionSpec) -> None:
    word = action.group(1) if action else ""
    answer = DBBENCH_ANSWER.search(text)
    if action is not None:
        turn.actions.append(Action(word.strip(), ""))
    if answer is None:
        turn.fail(*_why_no_answer(text, action))
        return
    raw = answer.group(1)
    if action is None:
        turn.actions.append(Action("Answer", ""))
    turn.actions[0].argument = raw.strip()
    turn.trailing = text[answer.end() :].strip()
    turn.accept(Action(word.strip() or "Answer", raw), text[answer.end() :])
    if action is not None and spec.declared(word.strip()) is None:
        # AgentBench reads any word but Operation as an answer; the spec names the ones a turn should use.
        allowed = ", ".join(spec.actions or ())
        turn.lax("unknown_action", f"{word.strip()!r} is not one of {allowed}; AgentBench reads it as an answer")
    spec.check_argument(turn, word.strip() or "Answer", raw.strip())
    try:
        value = _python_literal(raw.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = None
    if isinstance(value, (list, tuple)):
        turn.final_answer = list(value)
    else:
        turn.final_answer = raw.strip()
        turn.lax(
            "final_answer_not_list",
            f"'Final Answer:' is not a Python list ({raw.strip()[:60]!r}); AgentBench grades it as one raw value",
        )


def _why_no_answer(text: str, action: re.Match | None) -> tuple[str, str]:
    """The code and sentence for a turn AgentBench reads as an answer and finds none in."""
    lines = _label_lines(text)
    if action is not None:
        word = action.group(1)
        if word.strip() == "Operation":
            return "malformed_action", f"{word!r} is not exactly 'Operation', so AgentBench reads the turn as an answer"
        if word.strip().lower() == "operation":
            return "unknown_action", f"{word.strip()!r} is not 'Operation' (AgentBench compares case-sensitively)"
        return "missing_final_answer", f"'Action: {word.strip()}' needs a 'Final Answer: [...]' line after it"
    if re.search(r"Action: \S", text):
        return "unterminated_action_line", "the 'Action:' line must end with a newline"
    if lines:
        label = lines[0].group(0).strip()
        return "malformed_action_label", f"{label[:40]!r}: AgentBench reads only 'Action: ' (capital A, one space)"
    if "Final Answer:" in text:
        return "missing_final_answer", "'Final Answer:' must start a line after the first"
    return "missing_action", "no 'Action:' line and no 'Final Answer:'"


def _db_discipline(turn: ParsedTurn, text: str, action: re.Match | None, spec: ActionSpec) -> None:
    lines = _label_lines(text)
    if action is not None and not (action.start() == 0 or text[action.start() - 1] == "\n"):
        turn.lax("action_not_on_own_line", "'Action:' is inside a line; write it at the start of its own line")
    elif action is None:
        turn.lax("missing_action", "a 'Final Answer:' with no 'Action: Answer' line before it")
    if len(lines) > 1:
        turn.lax("multiple_actions", f"{len(lines)} 'Action:' lines; AgentBench reads only the first")
        turn.actions.extend(Action(line.group(3).strip(), "") for line in lines[1:])
    if action is not None and spec.actions is None and action.group(1) not in ("Operation", "Answer"):
        turn.lax("answer_word", f"'Action: {action.group(1)}' is read as an answer; write 'Action: Answer'")


def _statements(sql: str) -> list[str]:
    """The statements of `sql`, split on semicolons outside quotes and comments (empty ones dropped)."""
    statements, current, quote, index = [], [], "", 0
    while index < len(sql):
        char = sql[index]
        if quote:
            if char == "\\" and quote != "`":
                current.append(sql[index : index + 2])
                index += 2
                continue
            if char == quote:
                quote = ""
        elif char in "'\"`":
            quote = char
        elif sql.startswith("--", index) or char == "#":
            index = sql.find("\n", index) if "\n" in sql[index:] else len(sql)
            continue
        elif sql.startswith("/*", index):
            end = sql.find("*/", index + 2)
            index = len(sql) if end < 0 else end + 2
            continue
        elif char == ";":
            statements.append("".join(current))
            current = []
            index += 1
            continue
        current.append(char)
        index += 1
    statements.append("".join(current))
    return [statement for statement in statements if statement.strip()]


# --- numbered (ReAct paper) ----------------------------------------------------------------------------


def _parse_numbered(turn: ParsedTurn, text: str, spec: ActionSpec) -> None:
    stripped = text.strip()
    lines = _label_lines(stripped)
    thought_label = _THOUGHT_LABEL.match(stripped)
    step = (thought_label.group(1) if thought_label and thought_label.group(1) else None) or next(
        (line.group(2) for line in lines if line.group(2)), None
    )
    if step is None:
        turn.fail("missing_action", "no 'Action N:' line")
        turn.thought = _strip_thought_label(stripped)
        return
    # Generation stops at "\nObservation N:": nothing after it reaches the parser.
    seen, _, invented = stripped.partition(f"\nObservation {step}:")
    # A turn that opens with its action (the paper's act-only prompts) is read as the continuation of "Action N:".
    parts = ("\n" + seen.strip()).split(f"\nAction {step}: ")
    parts[0] = parts[0].strip()
    turn.thought = _strip_thought_label(parts[0])
    if len(parts) != 2:
        turn.fail(*_why_not_split(parts, seen, step, lines))
        return
    raw = parts[1]
    turn.trailing = invented.strip()
    action = raw.strip()
    action = action[:1].lower() + action[1:]
    bracket = re.fullmatch(r"([^\[\]\n]*?)\[(.*)\]", action, re.S)
    if bracket is None:
        closed = re.match(r"([^\[\]\n]*?)\[([^\]]*)\]", action)
        if closed:
            turn.actions.append(Action(closed.group(1), closed.group(2)))
            turn.trailing = action[closed.end() :].strip()
            turn.fail("trailing_text", "text after 'Action N: Tool[...]' is read as part of the action")
        else:
            turn.fail("malformed_action", f"expected 'Tool[argument]', found {raw.strip()[:60]!r}")
        return
    name, argument = raw.strip().split("[", 1)[0], bracket.group(2)
    turn.actions.append(Action(name, argument))
    if not _react_name_allowed(turn, name, spec):
        return
    spec.check_argument(turn, spec.declared(name) or name, argument)
    if name.lower() in ("finish", "answer"):
        turn.final_answer = argument
    turn.accept(Action(name, argument), invented and f"Observation {step}:{invented}")
    if invented.strip():
        turn.lax("invented_observation", f"the turn writes its own 'Observation {step}:'; ReAct stops before it")
    if "\n" in argument:
        turn.lax("multiline_argument", "the argument runs over several lines")


def _why_not_split(parts: list[str], seen: str, step: str, lines: list[re.Match]) -> tuple[str, str]:
    if not lines:
        return "missing_action", "no 'Action N:' line"
    if len(parts) > 2:
        return "multiple_actions", f"{len(parts) - 1} 'Action {step}:' lines; ReAct cannot split the turn"
    other = next((line.group(2) for line in lines if line.group(2) and line.group(2) != step), None)
    if other is not None:
        return "step_mismatch", f"'Thought {step}' is followed by 'Action {other}'"
    return "malformed_action_label", f"no line 'Action {step}: ' (exactly, one space) follows the thought"


def _react_name_allowed(turn: ParsedTurn, name: str, spec: ActionSpec) -> bool:
    """ReAct lower-cases the first letter of the action before matching it; so does this check. Without a
    spec the actions are those of ReAct's Wikipedia environment."""
    if spec.actions is not None and spec.actions_case == "insensitive":
        return spec.check_name(turn, name)
    allowed = spec.actions if spec.actions is not None else WIKIENV_ACTIONS
    folded = name[:1].lower() + name[1:]
    match = next((action for action in allowed if action[:1].lower() + action[1:] == folded), None)
    if match is None:
        where = "" if spec.actions is not None else " (ReAct's Wikipedia environment; the spec can name others)"
        turn.fail("unknown_action", f"{name!r} is not one of {', '.join(allowed)}{where}")
        return False
    if spec.actions is not None and match != name:
        turn.lax("action_case", f"{name!r} is read as {match!r}; write it as the spec does")
    return True


# --- fireact -------------------------------------------------------------------------------------------


def _parse_fireact(turn: ParsedTurn, text: str, spec: ActionSpec) -> None:
    stripped = text.strip()
    lines = _label_lines(stripped)
    if "\nAction: " in stripped:
        parts = stripped.split("\nAction: ")
        thought, action = parts[:2]
        ignored = "\nAction: ".join(parts[2:])
    elif "Action: " in stripped:
        thought, action, ignored = "", text[len("Action: ") :], ""
    else:
        turn.thought = _strip_thought_label(stripped)
        code = "malformed_action_label" if lines else "missing_action"
        turn.fail(code, "no 'Action: ' (capital A, one space) in the turn")
        return
    turn.thought = _strip_thought_label(thought)
    if "[" not in action:
        turn.fail("malformed_action", f"expected 'tool[argument]', found {action.strip()[:60]!r}")
        return
    name, argument = action.split("[")[:2]
    argument = argument[:-1]
    turn.actions.append(Action(name, argument))
    if not _WORD.fullmatch(name):
        turn.fail("malformed_action", f"{name[:40]!r} is not a tool name FireAct can call")
        return
    finish = "finish" in name.lower()
    if not finish and spec.actions is None and name not in FIREACT_TOOLS:
        tools = ", ".join(FIREACT_TOOLS)
        turn.fail("unknown_action", f"{name!r}: FireAct calls only {tools} (the spec can name others)")
        return
    if not finish and not spec.check_name(turn, name):
        return
    spec.check_argument(turn, spec.declared(name) or name, argument)
    if finish:
        turn.final_answer = argument
    turn.accept(Action(name, argument), ignored)
    head = action.split("\n", 1)[0]
    if len(lines) > 1:
        turn.lax("multiple_actions", f"{len(lines)} 'Action:' lines; FireAct reads only the first")
        turn.actions.extend(Action(line.group(3).strip(), "") for line in lines[1:])
    if not re.fullmatch(r"[^\[\]]+\[[^\[]*\]", head) or action.rstrip() != head:
        turn.trailing = action[len(head) :].strip() if action.startswith(head) else ""
        turn.lax("trailing_text", "write exactly 'tool[argument]' and end the turn there")


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
