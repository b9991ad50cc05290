"""A teacher's answers: the assistant messages of a chat completion, online or from a batch line, with what
they cost. An answer is untrusted input, checked here before anything caches or uses it: text content (or
tool calls whose name and arguments are text), UTF-8 encodable (no lone surrogates), at most
`MAX_ANSWER_CHARS` characters; anything else is a malformed answer (retried, never cached)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_ANSWER_CHARS = 1_000_000


def checked_text(value, what: str) -> str | None:
    """`value` if it is text an answer may hold (or None); a ValueError saying what is wrong otherwise."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} is a {type(value).__name__}, not text")
    if len(value) > MAX_ANSWER_CHARS:
        raise ValueError(f"{what} is longer than {MAX_ANSWER_CHARS} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not UTF-8 text (a lone surrogate)") from None
    return value


def _tool_call(call) -> dict:
    """One tool call as OpenAI's API writes it: `function` with a text name and text arguments, and text `id`
    and `type`; nothing else is kept."""
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise ValueError("a tool call is not {'function': {...}}")
    function = call["function"]
    kept = {
        "name": checked_text(function.get("name"), "a tool call's name"),
        "arguments": checked_text(function.get("arguments"), "a tool call's arguments"),
    }
    if kept["name"] is None:
        raise ValueError("a tool call has no name")
    result = {key: checked_text(call.get(key), f"a tool call's {key}") for key in ("id", "type")}
    return {**{key: value for key, value in result.items() if value is not None}, "function": kept}


@dataclass
class Answer:
    """One sampled assistant message with what it cost."""

    message: dict
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency: float = 0.0
    cached: bool = False


def parse_answers(response: dict, wanted: int, latency: float = 0.0) -> list[Answer]:
    """The assistant messages of a chat completion response (online or a batch line's body), with the usage
    split over them; a ValueError when it holds fewer than `wanted` or an empty one."""
    usage = response.get("usage") or {}
    prompt_tokens = usage.get("prompt_tokens") or 0
    completion_tokens = usage.get("completion_tokens") or 0
    answers = []
    choices = sorted(response["choices"], key=lambda choice: choice.get("index", 0))
    for number, choice in enumerate(choices):
        raw = choice["message"]
        message = {"role": "assistant", "content": checked_text(raw.get("content"), "content")}
        if raw.get("tool_calls"):
            message["tool_calls"] = [_tool_call(call) for call in raw["tool_calls"]]
        if message["content"] is None and "tool_calls" not in message:
            raise ValueError("empty message")
        answers.append(
            Answer(
                message=message,
                prompt_tokens=prompt_tokens if number == 0 else 0,
                completion_tokens=completion_tokens // max(1, len(choices)),
                latency=latency,
            )
        )
    if len(answers) < wanted:
        raise ValueError(f"asked for {wanted} choices, got {len(answers)}")
    return answers
