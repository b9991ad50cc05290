"""The `Policy` protocol: an async context manager that answers a batch of waiting turns at once, with the
request and reply records it speaks in and the settings every policy shares."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Protocol, runtime_checkable

from pydantic import Field

# Bounds shared by every stage that samples from a policy: one definition, so `rollout` and `eval` cannot drift.
Temperature = Annotated[float, Field(ge=0, le=2)]
MaxTokens = Annotated[int, Field(ge=1, le=1_000_000)]
Concurrency = Annotated[int, Field(ge=1, le=4096)]


@dataclass(frozen=True)
class PolicySettings:
    """How a policy samples: temperature, most tokens a turn, requests in flight (a server), batch size and
    longest context (a local model), and the sampling seed."""

    temperature: float = 0.0
    max_tokens: int = 512
    concurrency: int = 16
    batch_size: int = 16
    max_prompt_tokens: int = 2048
    seed: int = 0


@dataclass(frozen=True)
class TurnRequest:
    """A context waiting for its next assistant turn: which task, which sample, which turn of the episode."""

    task_id: str
    sample: int
    turn: int
    messages: list[dict]


@dataclass
class Reply:
    """One policy turn: the message, or why there is none (`stop`: the episode's status then)."""

    message: dict | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    stop: str | None = None
    error: str = ""


@runtime_checkable
class Policy(Protocol):
    """Who writes the next turn. `async with policy:` loads or connects (and lets go at the end); `reply`
    answers the requests it is given, in their order, however many; `batch_size` is how many it answers best
    together (a local model's batch; 1: each request is best answered on its own, as soon as it is ready)."""

    label: str
    batch_size: int

    def episodes(self, task_ids: list[str], samples: int) -> list[tuple[str, int]]:
        """The (task, sample) episodes this policy plays of these tasks."""

    async def __aenter__(self) -> Policy: ...

    async def __aexit__(self, *exc) -> None: ...

    async def reply(self, requests: Sequence[TurnRequest]) -> list[Reply]:
        """One reply a request, in order."""


def every_sample(task_ids: list[str], samples: int) -> list[tuple[str, int]]:
    """Each task `samples` times: what a policy that writes its own turns plays."""
    return [(task_id, sample) for task_id in task_ids for sample in range(samples)]


class Batcher:
    """Gathers the requests of episodes waiting at the same moment into batches of at most the policy's
    `batch_size`: while one batch is being answered the next requests wait, and go together into the next
    one, so a local model generates for all of them in one pass; a server policy (batch size 1) answers each
    episode as soon as its own turn is ready. `async with Batcher(policy) as ask:`."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    async def __aenter__(self):
        if self.policy.batch_size > 1:
            self._queue = asyncio.Queue()
            self._worker = asyncio.ensure_future(self._serve())
        return self.ask

    async def __aexit__(self, *exc) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def ask(self, request: TurnRequest) -> Reply:
        """The reply to one request."""
        if self._queue is None:
            return (await self.policy.reply([request]))[0]
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((request, future))
        return await future

    async def _serve(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.policy.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                replies = await self.policy.reply([request for request, _ in batch])
            except Exception as error:  # every waiting episode learns of it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), reply in zip(batch, replies):
                if not future.done():
                    future.set_result(reply)
