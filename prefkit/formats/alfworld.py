"""ALFWorld turns, in AgentBench's `THOUGHT: ...` / `ACTION: <command>` style or the ReAct paper's
`think: ...` / bare-command style, each read as its benchmark reads it.

`agentbench`: THUDM/AgentBench branch v0.2 (commit 41e6807349f741e06428fae3e9e4d334e7002362),
`src/server/tasks/alfworld/utils.py` `process_action` and `task.py` `alfworld_run`: the command is
`re.search("ACTION:(.*)", output)` (case-sensitive, anywhere in the turn, the rest of that line), stripped and
lower-cased; no label or an empty command ends the episode (AGENT_INVALID_ACTION). A command that is not one
of the admissible commands is replaced by the admissible command with the highest BLEU score (nltk's
`sentence_bleu` with smoothing method 4, whitespace tokens) when that score exceeds 0.01, and sent as it is
otherwise; so an inadmissible command is accepted, and reported as a discipline violation. The same output
three times in a row fails the episode (a rule of the episode, not of one turn).

`react`: ysymyth/ReAct (commit 6bdb3a1fd38b8188fc7ba4102969fe483df8fdc9), `alfworld.ipynb` `alfworld_run`:
generation stops at the first newline and the line is stripped; a line starting with `think:` is a thought
(the environment answers "OK."), anything else is sent to the environment as a command, which answers
"Nothing happens." to one it does not know: that is the game refusing the turn, so it is a `format.*` violation
(the admissible commands of the step, when the task has them, or ALFWorld's command grammar decide). The rest
of the turn is never generated.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from prefkit.formats.base import Action, ActionSpec, ParsedTurn, begin, compiled_pattern

NAME = "alfworld"
STYLES = ("agentbench", "react")

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
_ACTION = re.compile(r"ACTION:(.*)")
_ACTION_ANY_CASE = re.compile(r"\baction\s*:", re.I)
_THOUGHT = re.compile(r"^\s*THOUGHT\s*:\s*", re.I)
_THINK = re.compile(r"think\s*:\s*(.*)", re.I | re.S)
BLEU_LIMIT = 0.01  # utils.py process_action(limit=0.01)


def parse(message: dict, spec: ActionSpec) -> ParsedTurn:
    """Parse one assistant turn in either ALFWorld style."""
    turn, text = begin(NAME, message)
    if not turn.valid:
        return turn
    detected = "agentbench" if _has_agentbench_label(text) else "react"
    turn.style = spec.style if spec.style in STYLES else detected
    if turn.style == "agentbench":
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
            turn.fail("action_label_case", f"found {head.group(0)!r}; AgentBench reads only uppercase 'ACTION:'")
        else:
            turn.fail("missing_action", "no 'ACTION:' label")
        return
    first = labels[0]
    turn.thought = _THOUGHT.sub("", text[: first.start()]).strip()
    command = first.group(1).strip().lower()
    turn.trailing = text[first.end() :].strip()
    if not command:
        turn.fail("empty_action", "no command after 'ACTION:'")
        return
    turn.actions.append(Action(command.split(" ", 1)[0], command))
    for extra in labels[1:]:
        other = extra.group(1).strip().lower()
        turn.actions.append(Action(other.split(" ", 1)[0], other))
    executed = command
    if spec.admissible is not None and command not in spec.admissible:
        executed = nearest_admissible(command, spec.admissible)
        turn.lax(
            "inadmissible_command",
            f"{command[:80]!r} is not admissible; AgentBench would run {executed[:80]!r} (nearest by BLEU)",
        )
    elif spec.admissible is None and not _is_command(command, spec):
        turn.lax("unknown_command", f"{command[:80]!r} is not an ALFWorld command; AgentBench would run another")
    turn.accept(Action(executed.split(" ", 1)[0], executed), text[first.end() :])
    line_start = text.rfind("\n", 0, first.start()) + 1
    if text[line_start : first.start()].strip():
        turn.lax("action_not_on_own_line", "'ACTION:' must start its own line")
    if len(labels) > 1:
        turn.lax("multiple_actions", f"{len(labels)} 'ACTION:' labels; AgentBench reads only the first")
    if spec.require_thought and not turn.thought:
        turn.lax("missing_thought", "no THOUGHT before the action")


def _parse_react(turn: ParsedTurn, text: str, spec: ActionSpec) -> None:
    first, _, rest = text.partition("\n")
    line = first.strip()
    others = [row.strip() for row in rest.splitlines() if row.strip()]
    turn.trailing = "\n".join(others)
    if line.startswith("think:"):
        turn.thought = line[len("think:") :].strip()
        turn.accept(Action("think", line), rest)
        if not turn.thought:
            turn.lax("empty_thought", "'think:' with nothing after it")
    elif not line:
        turn.fail("empty_action", "the first line is empty; ReAct stops generating at the first newline")
        return
    else:
        command = line.lower()
        turn.actions.append(Action(command.split(" ", 1)[0], command))
        if _THINK.fullmatch(line):
            label = line.split(":", 1)[0]
            turn.fail("label_case", f"{label!r}: ReAct reads only 'think:'; the game is sent the line and refuses it")
        elif not _is_command(command, spec):
            turn.fail("unknown_command", f"{line[:80]!r} is not an admissible command; the game refuses it")
        else:
            turn.accept(Action(line.split(" ", 1)[0], line), rest)
    extra_steps = [step for step in others if _THINK.fullmatch(step) or _is_command(step.lower(), spec)]
    turn.actions.extend(Action(step.split(" ", 1)[0], step) for step in extra_steps)
    if extra_steps:
        turn.lax("multiple_actions", f"{1 + len(extra_steps)} steps in one turn; ReAct reads only the first line")


def _is_command(command: str, spec: ActionSpec) -> bool:
    if spec.admissible is not None:
        return command in spec.admissible
    if spec.commands is not None:
        return any(compiled_pattern(pattern).fullmatch(command) for pattern in spec.commands)
    return _DEFAULT.fullmatch(command) is not None


def nearest_admissible(command: str, choices: tuple[str, ...] | list[str]) -> str:
    """What AgentBench sends for an inadmissible command: the choice of highest BLEU above 0.01 (the first of
    equal ones, as numpy's argmax), or the command itself."""
    if not choices:
        return command
    scores = [bleu(choice, command) for choice in choices]
    best = max(range(len(scores)), key=lambda index: (scores[index], -index))
    return choices[best] if scores[best] > BLEU_LIMIT else command


def bleu(reference: str, candidate: str) -> float:
    """nltk 3.x `sentence_bleu([reference.split()], candidate.split(), smoothing_function=method4)`, the score
    AgentBench's `bleu_score` computes (uniform weights up to 4-grams, k=5)."""
    ref, hyp = reference.split(), candidate.split()
    if not hyp:
        return 0.0
    matches, totals = [], []
    for n in range(1, 5):
        counts = Counter(tuple(hyp[i : i + n]) for i in range(len(hyp) - n + 1))
        ref_counts = Counter(tuple(ref[i : i + n]) for i in range(len(ref) - n + 1))
        matches.append(sum(min(count, ref_counts[gram]) for gram, count in counts.items()))
        totals.append(max(1, sum(counts.values())))
    if matches[0] == 0:
        return 0.0
    precisions, increment = [], 1
    for match, total in zip(matches, totals):
        if match == 0 and len(hyp) > 1:
            precisions.append(1 / (2**increment * 5 / math.log(len(hyp))) / total)
            increment += 1
        else:
            precisions.append(match / total)
    penalty = 1.0 if len(hyp) > len(ref) else math.exp(1 - len(ref) / len(hyp))
    return penalty * math.exp(math.fsum(0.25 * math.log(p) for p in precisions if p > 0))
