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


class StepRecord(BaseModel):
    """One assistant turn of an episode as the environment took it (`prefkit/envs/base.py` `Step`), with the
    progress value its grade gave it."""

    model_config = ConfigDict(extra="forbid")

    turn: int = Field(ge=1)
    accepted: bool
    violations: list[str]
    action: dict[str, str] | None = None
    observation: str | None = None
    done: bool = False
    seconds: float = Field(0.0, ge=0)
    progress: float | None = None


class StoppedTurn(BaseModel):
    """A turn the policy did not write (a failed request, the end of a replay): why the episode stopped."""

    model_config = ConfigDict(extra="forbid")

    turn: int = Field(ge=1)
    stopped: str | None
    error: str = ""


class EpisodeUsage(BaseModel):
    """What the policy's turns of one episode cost."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    cached_turns: int = Field(ge=0)


class EpisodeSeconds(BaseModel):
    """Where one episode's time went."""

    model_config = ConfigDict(extra="forbid")

    total: float = Field(ge=0)
    env: float = Field(ge=0)
    policy: float = Field(ge=0)


class Trajectory(BaseModel):
    """A whole episode, as `prefkit rollout` writes it (one line of a *trajectories* file): the task and sample,
    who played it where, every message, each turn as the environment took it, and the benchmark's grade.
    Not to be confused with the agent *transcripts* `prefkit tasks` splits into turn-level tasks."""

    model_config = ConfigDict(extra="allow")

    task_id: str = Field(min_length=1)
    sample: int = Field(ge=0)
    env: str = Field(min_length=1)
    engine: str
    policy: str
    messages: list[Message]
    turns: list[StepRecord | StoppedTurn]
    status: str = Field(min_length=1)
    success: bool
    reward: float
    result: dict[str, Any] = Field(default_factory=dict)
    usage: EpisodeUsage
    seconds: EpisodeSeconds


def trajectory_of(row: dict, path, line: int) -> Trajectory:
    """One line of a trajectories file as its record; an InputError naming the file, line and problem if not."""
    from pydantic import ValidationError

    from prefkit.errors import InputError
    from prefkit.jsonl import describe_validation_error

    try:
        return Trajectory.model_validate(row)
    except ValidationError as error:
        problem = f"not a trajectory record ({describe_validation_error(error)})"
        raise InputError(problem, str(path), line) from None


def read_trajectories(path) -> list[Trajectory]:
    """Every episode of a trajectories file, each line checked (`file:line: what is wrong`)."""
    from prefkit.jsonl import iter_jsonl

    return [trajectory_of(row, path, line) for line, row in iter_jsonl(path)]
