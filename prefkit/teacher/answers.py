"""A teacher's answers: the assistant messages of a chat completion, online or from a batch line, with what
they cost."""

from __future__ import annotations

from dataclasses import dataclass


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
        message = {"role": "assistant", "content": raw.get("content")}
        if raw.get("tool_calls"):
            message["tool_calls"] = [{k: v for k, v in call.items() if v is not None} for call in raw["tool_calls"]]
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
