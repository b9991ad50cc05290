"""Task and pair records: the JSON Lines rows every stage reads and writes."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]


class Message(BaseModel):
    """One chat message; extra keys (e.g. `reasoning_content`) are allowed and kept."""

    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    name: str | None = None
    tool_call_id: str | None = None


class Task(BaseModel):
    """An agent context waiting for its next assistant turn."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    format: str | None = None
    domain: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class Pair(BaseModel):
    """TRL's conversational preference row (prompt/chosen/rejected) plus provenance in `meta`."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    prompt: list[Message] = Field(min_length=1)
    chosen: list[Message] = Field(min_length=1)
    rejected: list[Message] = Field(min_length=1)
    meta: dict[str, Any] = Field(default_factory=dict)


# One encoder made once: json.dumps with any non-default option builds a new encoder per call, a visible share
# of a teacher request's CPU (a cache key and a pair id are hashed for each). Same output as json.dumps.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_hash(*parts: Any, length: int = 24) -> str:
    """A stable hex digest of JSON-serialisable parts (key order and whitespace do not matter)."""
    blob = _CANONICAL.encode(parts)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def pair_id(prompt: list[dict], chosen: list[dict], rejected: list[dict]) -> str:
    """The deterministic id of a pair: a hash of its prompt, chosen and rejected messages."""
    return content_hash(prompt, chosen, rejected)


def ensure_pair_id(row: dict) -> dict:
    """Give a pair row its content-hash id when it has none; an existing id is never rewritten."""
    if not row.get("id"):
        row["id"] = pair_id(row["prompt"], row["chosen"], row["rejected"])
    return row


def turn_text(messages: list[dict]) -> str:
    """The text of a chosen/rejected turn: contents joined, tool calls rendered as name(arguments)."""
    if len(messages) == 1 and not messages[0].get("tool_calls"):
        return messages[0].get("content") or ""  # the usual single plain message, without building a list
    parts = []
    for message in messages:
        if message.get("content"):
            parts.append(message["content"])
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            parts.append(f"{function.get('name', '')}({function.get('arguments', '')})")
    return "\n".join(parts)


def context_chars(messages: list[dict]) -> int:
    """How many characters of content a context holds (used to keep toy runs to short contexts)."""
    return sum(len(message.get("content") or "") for message in messages)


def add_meta(row: dict, key: str, value: Any) -> dict:
    """Record a stage's findings under `meta[key]`, keeping every other meta key as it was."""
    meta = row.get("meta")
    if not isinstance(meta, dict):
        meta = {}
        row["meta"] = meta
    meta[key] = value
    return row
