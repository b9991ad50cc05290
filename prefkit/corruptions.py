"""Rule-based corruptions of a good assistant turn: the `corrupt` strategy's rejected turns and the
negative cases of the format tests. Each kind breaks one rule a disciplined agent follows.

`drop_action`, `malformed_action` and `format_break` make turns the benchmark's own parser rejects (`format.*`);
`two_actions` makes one most benchmarks still accept, reading the first (or, for AgentBench OS, the last) action,
which prefkit's discipline rejects."""

from __future__ import annotations

import copy
import json
import random
import re

from prefkit.formats import ActionSpec, parse_turn

KINDS = ("filler", "ramble", "drop_action", "malformed_action", "two_actions", "format_break")

_OPENERS = (
    "Certainly! I'd be happy to help with that.",
    "Great question! Let me think about this.",
    "Sure! I'd be glad to help.",
)
_CLOSERS = (
    "I hope this helps! Let me know if you have any other questions.",
    "Have a nice day!",
    "Feel free to ask if anything is unclear.",
)
_RAMBLE = ("Let me think about this step by step once more.", "I should consider every possibility carefully here.")


def corrupt(
    message: dict, format_name: str, kind: str, rng: random.Random | None = None, spec: ActionSpec | None = None
) -> dict | None:
    """A corrupted copy of `message` of the given kind, or None when the kind does not apply to it."""
    if kind not in KINDS:
        raise ValueError(f"unknown corruption {kind!r}; choose one of: {', '.join(KINDS)}")
    rng = rng or random.Random(0)
    message = copy.deepcopy(message)
    parsed = parse_turn(format_name, message, spec)
    text = message.get("content") or ""
    if kind == "filler":
        message["content"] = f"{rng.choice(_OPENERS)} {text}\n\n{rng.choice(_CLOSERS)}".strip()
        return message
    if kind == "ramble":
        seed = parsed.thought or "I need to decide on the next step for this task."
        sentence = seed.split("\n")[0].strip().rstrip(".") + "."
        padding = f"{sentence} {rng.choice(_RAMBLE)} {sentence} {rng.choice(_RAMBLE)} {sentence}"
        message["content"] = _with_thought(format_name, text, padding)
        return message
    if kind == "format_break":
        action = parsed.action.argument if parsed.action else "continue"
        if message.get("tool_calls"):
            message.pop("tool_calls")
        message["content"] = (
            f"{rng.choice(_OPENERS)} {parsed.thought} I think the best next step would be "
            f"to do this: {action}. {rng.choice(_CLOSERS)}"
        )
        return message
    if not parsed.valid or not parsed.actions:
        return None
    return {"drop_action": _drop_action, "malformed_action": _malformed, "two_actions": _two_actions}[kind](
        message, format_name, rng
    )


def _with_thought(format_name: str, text: str, padding: str) -> str:
    if format_name == "alfworld" and not text.upper().startswith("THOUGHT"):
        return f"think: {padding}\n{text}"
    return f"{padding}\n{text}"


def _drop_action(message: dict, format_name: str, rng: random.Random) -> dict | None:
    text = message.get("content") or ""
    if format_name == "tool-call":
        message.pop("tool_calls", None)
        message["content"] = text or "I will take the next action."
    elif format_name == "react":
        head = re.split(r"\n?Action(?: \d+)?: ", text, maxsplit=1)[0]
        message["content"] = head + "\nI will now run the query and look at the result."
    elif format_name == "alfworld":
        if "ACTION:" in text:
            message["content"] = text.split("ACTION:")[0].strip()
        else:
            message["content"] = f"I will {text.strip()} next."
    elif format_name == "codeact":
        message["content"] = (
            re.sub(r"<execute>.*?</execute>", "", text, flags=re.S).strip() + "\nI will run the code next."
        )
    elif format_name == "xml-react":
        message["content"] = re.sub(r"<node>.*?</node>", "", text, flags=re.S)
    elif format_name == "os":
        head = re.split(r"\n?[ \t]*Act:", text, maxsplit=1)[0]
        message["content"] = head.rstrip() + "\nI will run a command next."
    return message


def _malformed(message: dict, format_name: str, rng: random.Random) -> dict | None:
    text = message.get("content") or ""
    if format_name == "tool-call":
        call = message["tool_calls"][0]
        call["function"]["arguments"] = call["function"]["arguments"].rstrip().rstrip("}")
    elif format_name == "react":
        if "```sql\n" in text:
            message["content"] = text.replace("```sql\n", "```SQL\n", 1)
        elif "Final Answer:" in text:  # on the action line: AgentBench finds no "\nFinal Answer:"
            message["content"] = re.sub(r"\n\s*Final Answer:", " Final Answer:", text)
        else:
            message["content"] = re.sub(r"(Action \d+: \w+)\[(.*)\]", r"\1(\2)", text, count=1)
    elif format_name == "alfworld":
        if "ACTION:" in text:
            message["content"] = text.replace("ACTION:", "Action:", 1)
        else:
            message["content"] = f"Next: {text.strip()} please"
    elif format_name == "codeact":
        message["content"] = text.replace("</execute>", "", 1)
    elif format_name == "xml-react":
        message["content"] = text.replace("</content>", "", 1)
    elif format_name == "os":
        if re.search(r"Act:\s*answer", text, re.I):  # AgentBench skips an answer without parentheses
            message["content"] = re.sub(r"(Act:\s*answer)\s*\((.*)\)", r"\1 \2", text, flags=re.I)
        else:
            message["content"] = text.replace("Act:", "act:")
    return message


def _two_actions(message: dict, format_name: str, rng: random.Random) -> dict | None:
    text = message.get("content") or ""
    if format_name == "tool-call":
        second = copy.deepcopy(message["tool_calls"][0])
        second["id"] = f"{second.get('id', 'call')}-2"
        message["tool_calls"].append(second)
    elif format_name == "react":
        numbered = re.search(r"Action (\d+): (\w+)\[", text)
        if numbered:
            message["content"] = f"{text}\nAction {numbered.group(1)}: {numbered.group(2)}[something else]"
        else:
            message["content"] = f'{text}\nAction: Answer\nFinal Answer: ["unknown"]'
    elif format_name == "alfworld":
        message["content"] = f"{text}\nACTION: look" if "ACTION:" in text else f"{text}\nlook"
    elif format_name == "codeact":
        message["content"] = f"{text}\n<execute>print('done')</execute>"
    elif format_name == "xml-react":
        message["content"] = f"{text}\n<node>Finish</node><content>done</content>"
    elif format_name == "os":
        message["content"] = f"{text}\n\nAct: finish"
    return message


def corrupt_any(
    message: dict, format_name: str, rng: random.Random, spec: ActionSpec | None = None, kinds: tuple[str, ...] = KINDS
) -> tuple[str, dict] | None:
    """Try kinds in random order; the first that applies wins. Returns (kind, corrupted message)."""
    order = list(kinds)
    rng.shuffle(order)
    for kind in order:
        result = corrupt(message, format_name, kind, rng, spec)
        if result is not None and json.dumps(result, sort_keys=True) != json.dumps(message, sort_keys=True):
            return kind, result
    return None
