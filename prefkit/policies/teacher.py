"""The teacher policy: an OpenAI-compatible model through prefkit's teacher client (concurrency, retries, the
answer cache beside the output, the key from `OPENAI_API_KEY`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from prefkit.errors import FatalTeacherError, TeacherError
from prefkit.policies.base import PolicySettings, Reply, TurnRequest, every_sample
from prefkit.policies.spec import PolicySpec


class TeacherPolicy:
    """Each request is one chat completion (sample k of a context is its own cached answer k)."""

    batch_size = 1

    def __init__(self, spec: PolicySpec, settings: PolicySettings, cache_path: Path):
        from prefkit.teacher.client import TeacherConfig

        self.teacher_config = TeacherConfig(
            base_url=spec.base_url,
            model=spec.model,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            concurrency=settings.concurrency,
        )
        self.label = spec.label
        self.cache_path = cache_path
        self.teacher = None
        self.cache = None

    def episodes(self, task_ids: list[str], samples: int) -> list[tuple[str, int]]:
        """Every task `samples` times."""
        return every_sample(task_ids, samples)

    async def __aenter__(self) -> TeacherPolicy:
        from prefkit.teacher.cache import ResponseCache
        from prefkit.teacher.client import Teacher

        self.cache = ResponseCache(self.cache_path)
        try:
            self.teacher = await Teacher(self.teacher_config, self.cache).__aenter__()
            await self.teacher.preflight()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        if self.teacher is not None:
            teacher, self.teacher = self.teacher, None
            await teacher.__aexit__(None, None, None)
        if self.cache is not None:
            self.cache.close()
            self.cache = None

    async def reply(self, requests: Sequence[TurnRequest]) -> list[Reply]:
        """The answers, asked concurrently; a failed request ends its own episode, a fatal error (auth) the run."""
        return list(await asyncio.gather(*(self._one(request) for request in requests)))

    async def _one(self, request: TurnRequest) -> Reply:
        try:
            answer = (await self.teacher.complete(request.messages, n=1, sample=request.sample))[0]
        except FatalTeacherError:
            raise
        except TeacherError as error:
            return Reply(None, stop="unknown", error=str(error))
        return Reply(answer.message, answer.prompt_tokens, answer.completion_tokens, answer.cached)
