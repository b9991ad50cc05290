"""AgentBench OS interaction turns: `Think: ...`, then `Act: bash` with a ```bash block, `Act: answer(...)` or
`Act: finish`, read as THUDM/AgentBench branch v0.2 (commit 41e6807349f741e06428fae3e9e4d334e7002362) reads them
in `src/server/tasks/os_interaction/task.py` (`OSInteraction.extract_action` and `start_sample`):
- the actions are `re.findall(r"Act:\\s*(.+)", raw)` (anywhere, case-sensitive label, the first non-space text
  after it to the end of its line), tried from the last to the first; the first that starts, in any case,
  with `bash`, `finish` or `answer` is taken (an `answer` without both `(` and `)` is skipped);
- `bash` runs every `re.findall(r"```bash\\n(.*?)\\n```", raw, re.DOTALL)` block of the whole turn, joined by a
  blank line; with no block it runs an empty command;
- `answer` commits the text between the first `(` and the last `)` of its line, `finish` commits nothing;
- a turn with none of them fails the sample (AGENT_INVALID_ACTION).
prefkit's stricter rules: one `Act:` line at the start of a line, its word written `bash`, `finish` or
`answer(...)` with nothing after, and for bash exactly one ```bash block after it.
"""

from __future__ import annotations

import re

from prefkit.formats.base import Action, ActionSpec, ParsedTurn, begin

NAME = "os"

_ACT = re.compile(r"Act:\s*(.+)")
_ANY_ACT = re.compile(r"\bact\s*:", re.I)
_THINK = re.compile(r"^\s*Think:\s*", re.I)
_BASH = re.compile(r"```bash\n(.*?)\n```", re.S)
_FENCE = re.compile(r"```")
_CANONICAL = {"bash": re.compile(r"bash"), "finish": re.compile(r"finish"), "answer": re.compile(r"answer\(.*\)")}


def parse(message: dict, spec: ActionSpec) -> ParsedTurn:
    """Parse one assistant turn of AgentBench's OS interaction task."""
    turn, text = begin(NAME, message)
    if not turn.valid:
        return turn
    turn.style = "agentbench"
    acts = list(_ACT.finditer(text))
    chosen = next((act for act in reversed(acts) if _kind(act.group(1)) is not None), None)
    head = chosen or (acts[0] if acts else None)
    turn.thought = _THINK.sub("", text[: head.start()] if head else text).strip()
    if chosen is None:
        _reject(turn, text, acts)
        return turn
    kind, word = _kind(chosen.group(1)), chosen.group(1)
    turn.actions.extend(Action(_kind(act.group(1)) or act.group(1).strip(), act.group(1).strip()) for act in acts)
    blocks = list(_BASH.finditer(text))
    if kind == "bash":
        code = "\n\n".join(block.group(1) for block in blocks)
        turn.actions[acts.index(chosen)].argument = code
        spec.check_argument(turn, "bash", code)
        end = blocks[-1].end() if blocks else chosen.end()
        turn.accept(Action("bash", code), text[end:])
        turn.trailing = text[end:].strip()
    elif kind == "answer":
        answer = word[6:].strip()
        answer = answer[answer.find("(") + 1 : answer.rfind(")")]
        turn.actions[acts.index(chosen)].argument = answer
        turn.final_answer = answer
        spec.check_argument(turn, "answer", answer)
        turn.accept(Action("answer", answer), text[chosen.end() :])
        turn.trailing = text[chosen.end() :].strip()
    else:
        turn.final_answer = ""
        turn.accept(Action("finish", ""), text[chosen.end() :])
        turn.trailing = text[chosen.end() :].strip()
    _discipline(turn, text, acts, chosen, kind, blocks, spec)
    return turn


def _kind(action: str) -> str | None:
    """Which action AgentBench reads in the text after `Act:`, or None when it skips it."""
    lowered = action.lower()
    if lowered.startswith("bash"):
        return "bash"
    if lowered.startswith("finish"):
        return "finish"
    if lowered.startswith("answer"):
        content = action[6:].strip()
        return "answer" if content.find("(") != -1 and content.rfind(")") != -1 else None
    return None


def _reject(turn: ParsedTurn, text: str, acts: list[re.Match]) -> None:
    if acts:
        words = ", ".join(repr(act.group(1).strip()[:30]) for act in acts)
        if any(act.group(1).lower().startswith("answer") for act in acts):
            turn.fail("malformed_answer", f"{words}: AgentBench reads an answer only as 'answer(...)'")
        else:
            turn.fail("unknown_action", f"{words}: AgentBench knows only bash, finish and answer(...)")
    elif _ANY_ACT.search(text):
        turn.fail("malformed_action_label", f"found {_ANY_ACT.search(text).group(0)!r}; AgentBench reads only 'Act:'")
    else:
        turn.fail("missing_action", "no 'Act:' line")


def _discipline(
    turn: ParsedTurn,
    text: str,
    acts: list[re.Match],
    chosen: re.Match,
    kind: str,
    blocks: list[re.Match],
    spec: ActionSpec,
) -> None:
    line_start = text.rfind("\n", 0, chosen.start()) + 1
    if text[line_start : chosen.start()].strip():
        turn.lax("action_not_on_own_line", "'Act:' must start its own line")
    if "\n" in text[chosen.start() : chosen.start(1)]:
        turn.lax("malformed_action_label", "write the action on the 'Act:' line itself")
    if len(acts) > 1:
        turn.lax("multiple_actions", f"{len(acts)} 'Act:' lines; AgentBench takes the last one it can read")
    if not _CANONICAL[kind].fullmatch(chosen.group(1).strip()):
        shown = "answer(...)" if kind == "answer" else kind
        turn.lax("malformed_action", f"'Act: {chosen.group(1).strip()[:40]}': write exactly 'Act: {shown}'")
    if kind == "bash":
        if not blocks:
            why = "a code fence that is not '```bash' + newline" if _FENCE.search(text) else "no code block"
            turn.lax("missing_code_block", f"'Act: bash' with {why}: AgentBench runs an empty command")
        elif len(blocks) > 1:
            turn.lax("multiple_actions", f"{len(blocks)} ```bash blocks; AgentBench runs them all, joined")
        elif blocks[0].start() < chosen.start():
            turn.lax("code_before_action", "the ```bash block comes before 'Act: bash'")
        elif not blocks[0].group(1).strip():
            turn.lax("empty_action", "the ```bash block is empty")
    elif blocks:
        turn.lax("multiple_actions", f"a ```bash block with 'Act: {kind}': AgentBench ignores the code")
    if spec.require_thought and not turn.thought:
        turn.lax("missing_thought", "no 'Think:' before the action")
