"""The environment interface: where an agent's turns are executed and its episodes graded.

An `Environment` loads its benchmark's tasks and starts `Episode`s; an episode gives the opening messages,
takes one assistant turn at a time (parsed with the task's format, executed, answered with an observation)
and, once done, is graded as the benchmark grades it. Episodes never share state, and one played twice with
the same turns gives the same record. The trajectory record `prefkit rollout` writes is built from the
`Step`s and the `Outcome` (see `prefkit/rollout.py`).

Each environment also owns a config model (`EnvConfig`): its settings, the action format its turns are read
in, and how its episodes are measured; `prefkit/envs/registry.py` lists them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from prefkit.formats.base import ActionSpec


@dataclass(slots=True)
class Step:
    """One assistant turn as the environment took it."""

    turn: int
    accepted: bool
    violations: list[str]
    action: dict[str, str] | None = None  # what was executed: {"name": ..., "argument": ...}
    observation: str | None = None  # the environment's reply; None when the turn ended the episode
    done: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The step as JSON."""
        return asdict(self)


@dataclass(slots=True)
class Outcome:
    """How a finished episode grades: the benchmark's status and verdict, and a progress value per step."""

    status: str
    success: bool
    reward: float
    result: dict[str, Any] = field(default_factory=dict)
    progress: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The outcome as JSON."""
        return asdict(self)


class Episode(ABC):
    """One task being played: opening messages, then a turn at a time, then a grade."""

    task_id: str
    messages: list[dict]
    done: bool

    def prepare(self) -> None:  # noqa: B027 - an episode with nothing to set up
        """Set up what the episode needs before its first step (a database): `start` is cheap, so a policy can
        be asked for the first turn while this runs; `step` and `grade` call it if nobody did."""

    @abstractmethod
    def step(self, message: dict) -> Step:
        """Take one assistant message; its observation (if any) is appended to `messages`."""

    @abstractmethod
    def stop(self, status: str) -> None:
        """End the episode from outside (the policy could not answer: context limit, a failed request)."""

    @abstractmethod
    def grade(self) -> Outcome:
        """Grade the finished episode as the benchmark does."""

    @abstractmethod
    def close(self) -> None:
        """Release what the episode holds (its database); idempotent."""


class Environment(ABC):
    """A benchmark's tasks and the means to play them."""

    name: str
    engine: str

    @abstractmethod
    def task_ids(self) -> list[str]:
        """Every task's id, in file order."""

    @abstractmethod
    def start(self, task_id: str, sample: int = 0) -> Episode:
        """A fresh, isolated episode of one task (its opening messages; the set-up is `Episode.prepare`)."""

    @abstractmethod
    def summarise(self, outcomes: list[tuple[str, Outcome]]) -> dict[str, Any]:
        """The benchmark's own metrics over (task id, outcome) pairs."""

    def close(self) -> None:  # noqa: B027 - most environments start nothing
        """Stop what the environment started (a database server); idempotent."""

    def __enter__(self) -> Environment:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EnvConfig(BaseModel):
    """An environment's settings (`env:` in a rollout or eval section, `--env` and its flags on the command
    line) and what it declares: its action format and style, how many opening messages an episode starts
    with (not the policy's turns), and the metric its benchmark leads with."""

    model_config = ConfigDict(extra="forbid")

    name: str
    format: ClassVar[str]
    style: ClassVar[str | None] = None
    opening_messages: ClassVar[int] = 0
    headline: ClassVar[str | None] = None
    benchmark: ClassVar[str] = "The benchmark"
    metrics_key: ClassVar[str] = "benchmark_metrics"  # where eval's report.json keeps the benchmark's metrics
    metrics_how: ClassVar[str] = "as the benchmark computes them"

    def open(self, tasks: Path, concurrency: int = 1) -> Environment:
        """The environment over the task file `tasks`, ready for `concurrency` episodes at once."""
        raise NotImplementedError

    def action_spec(self) -> ActionSpec:
        """The action spec its turns are parsed with."""
        from prefkit.formats.base import ActionSpec

        return ActionSpec(style=self.style)

    def policy_turns(self, messages: list[dict]) -> list[dict]:
        """The assistant turns the policy wrote in an episode's messages (after the opening)."""
        return [message for message in messages[self.opening_messages :] if message["role"] == "assistant"]
