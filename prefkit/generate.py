"""`prefkit generate` as a library call: tasks in, candidate pairs appended as soon as each exists.

Resumable by construction: the output is an append-only log; a task whose pair (or recorded skip) is
already there is not asked again, a torn last line is set aside, and every teacher answer is cached on
disk, so a re-run never pays twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from prefkit.appendlog import AppendLog
from prefkit.corruptions import KINDS
from prefkit.errors import InputError, TeacherError
from prefkit.formats import ActionSpec
from prefkit.jsonl import InvalidLines, iter_jsonl, write_jsonl
from prefkit.records import Task, content_hash, pair_id
from prefkit.scoring import Scorer, VerbosityConfig, previous_assistant
from prefkit.strategies.contrastive import ContrastiveConfig, with_system
from prefkit.strategies.corrupt import corrupt_pair
from prefkit.strategies.sample_rank import (
    JUDGE_PROMPT,
    SampleRankConfig,
    parse_verdict,
    rule_score,
)
from prefkit.teacher.client import Answer, FatalTeacherError, Teacher, TeacherConfig

log = logging.getLogger(__name__)

Strategy = Literal["contrastive", "sample-rank", "corrupt"]


class CorruptConfig(BaseModel):
    """Settings of the teacher-free corrupt strategy."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[Literal[KINDS]] = Field(default_factory=lambda: list(KINDS), description="Corruption kinds to draw from.")
    seed: int = Field(0, description="Seed; the same task always gets the same corruption for a seed.")


class GenerateConfig(BaseModel):
    """Settings of `prefkit generate` (the `generate:` section of a recipe)."""

    model_config = ConfigDict(extra="forbid")

    strategy: Strategy = Field("contrastive", description="contrastive | sample-rank | corrupt.")
    teacher: TeacherConfig = Field(default_factory=TeacherConfig, description="The OpenAI-compatible teacher.")
    contrastive: ContrastiveConfig = Field(default_factory=ContrastiveConfig, description="contrastive settings.")
    sample_rank: SampleRankConfig = Field(default_factory=SampleRankConfig, description="sample-rank settings.")
    corrupt: CorruptConfig = Field(default_factory=CorruptConfig, description="corrupt settings.")
    verbosity: VerbosityConfig = Field(default_factory=VerbosityConfig, description="Rules used to rank samples.")
    limit: int | None = Field(None, ge=1, description="Only the first N tasks.")
    fsync: bool = Field(False, description="fsync after every pair (survives power loss, not just kill -9).")

    @property
    def needs_teacher(self) -> bool:
        """Whether this strategy talks to a teacher."""
        return self.strategy != "corrupt"


@dataclass
class GenerateSummary:
    """What one run did."""

    tasks: int = 0
    already_done: int = 0
    pairs: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[dict] = field(default_factory=list)
    skip_reasons: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    seconds: float = 0.0
    repaired: str | None = None
    out: str = ""
    failures_file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able view: every count, the failed task ids with their errors, where the files are."""
        return dict(self.__dict__)


def read_tasks(path: str | Path, invalid: InvalidLines | None = None) -> list[dict]:
    """Tasks from JSONL; duplicate ids are an error naming both lines."""
    tasks, first_line = [], {}
    for line, row in iter_jsonl(path, Task, invalid=invalid):
        if row["id"] in first_line:
            raise InputError(f"duplicate task id {row['id']!r} (first on line {first_line[row['id']]}); ids must be unique",
                             str(path), line)
        first_line[row["id"]] = line
        tasks.append(row)
    return tasks


def _spec(task: dict) -> ActionSpec:
    return ActionSpec.model_validate((task.get("meta") or {}).get("action_spec") or {})


def _tools(task: dict) -> list[dict] | None:
    tools = ((task.get("meta") or {}).get("action_spec") or {}).get("tools")
    return list(tools) if tools else None


class Generator:
    """Runs one strategy over tasks, appending pairs to `out`."""

    def __init__(self, config: GenerateConfig, out: str | Path, progress: Callable[[int], None] | None = None):
        self.config = config
        self.out = Path(out)
        self.progress = progress or (lambda n: None)
        self.scorer = Scorer(config.verbosity)
        self.prompts_hash = content_hash(config.contrastive.model_dump(), config.sample_rank.model_dump(), length=12)
        self.summary = GenerateSummary(out=str(self.out))

    def run(self, tasks: list[dict]) -> GenerateSummary:
        """Generate pairs for every unfinished task; raises FatalTeacherError (after saving) on a fatal error."""
        return asyncio.run(self._run(tasks))

    async def _run(self, tasks: list[dict]) -> GenerateSummary:
        started = time.perf_counter()
        summary = self.summary
        pairs_log = AppendLog(self.out, fsync=self.config.fsync)
        skips_log = AppendLog(self.out.with_name(self.out.name + ".skipped"), fsync=self.config.fsync)
        summary.repaired = pairs_log.repaired
        done = {(row.get("meta") or {}).get("task_id") for row in pairs_log.rows}
        done |= {row.get("task_id") for row in skips_log.rows}
        self._pair_ids = {row.get("id") for row in pairs_log.rows}
        todo = [task for task in tasks if task["id"] not in done]
        summary.tasks, summary.already_done = len(tasks), len(tasks) - len(todo)
        self.progress(summary.already_done)
        teacher = None
        try:
            if self.config.needs_teacher:
                from prefkit.teacher.cache import ResponseCache

                cache_path = self.config.teacher.cache or self.out.with_name(self.out.name + ".cache.sqlite")
                self.cache = ResponseCache(cache_path)
                teacher = Teacher(self.config.teacher, self.cache)
                if todo:
                    await teacher.preflight()
            await self._work(todo, teacher, pairs_log, skips_log)
        finally:
            pairs_log.close()
            skips_log.close()
            if teacher is not None:
                await teacher.__aexit__(None, None, None)
                usage = teacher.usage
                summary.requests, summary.retries = usage.requests, usage.retries
                summary.cache_hits = self.cache.hits
                self.cache.close()
                price_in, price_out = self.config.teacher.price_input_per_mtok, self.config.teacher.price_output_per_mtok
                if price_in is not None or price_out is not None:
                    summary.cost = round((summary.prompt_tokens * (price_in or 0)
                                          + summary.completion_tokens * (price_out or 0)) / 1e6, 4)
            self._write_failures()
            summary.seconds = time.perf_counter() - started
        return summary

    async def _work(self, todo: list[dict], teacher: Teacher | None, pairs_log: AppendLog, skips_log: AppendLog) -> None:
        queue: asyncio.Queue = asyncio.Queue()
        for task in todo:
            queue.put_nowait(task)
        fatal: list[BaseException] = []

        async def worker() -> None:
            while not queue.empty() and not fatal:
                task = queue.get_nowait()
                try:
                    outcome = await self._make(task, teacher)
                except FatalTeacherError as error:
                    fatal.append(error)
                    return
                except TeacherError as error:
                    self.summary.failed += 1
                    self.summary.failures.append({"task_id": task["id"], "error": str(error)})
                else:
                    self._record(task, outcome, pairs_log, skips_log)
                self.progress(1)

        workers = (self.config.teacher.concurrency * 2) if teacher else 1
        await asyncio.gather(*(worker() for _ in range(min(workers, max(1, len(todo))))))
        if fatal:
            raise fatal[0]

    def _record(self, task: dict, outcome: dict | str, pairs_log: AppendLog, skips_log: AppendLog) -> None:
        if isinstance(outcome, dict) and outcome["id"] in self._pair_ids:
            outcome = f"duplicate of pair {outcome['id']}"
        if isinstance(outcome, str):
            skips_log.append({"task_id": task["id"], "reason": outcome})
            self.summary.skipped += 1
            reason = outcome.split(" of pair")[0]
            self.summary.skip_reasons[reason] = self.summary.skip_reasons.get(reason, 0) + 1
            return
        self._pair_ids.add(outcome["id"])
        pairs_log.append(outcome)
        self.summary.pairs += 1

    def _write_failures(self) -> None:
        path = self.out.with_name(self.out.name + ".failures")
        if self.summary.failures:
            write_jsonl(path, self.summary.failures)
            self.summary.failures_file = str(path)
        elif path.exists():
            path.unlink()

    async def _make(self, task: dict, teacher: Teacher | None) -> dict | str:
        """A pair for one task, or the reason there is none."""
        strategy = self.config.strategy
        if strategy == "corrupt":
            rng = random.Random(f"{self.config.corrupt.seed}:{task['id']}")
            pair = corrupt_pair(task, rng, tuple(self.config.corrupt.kinds))
            return pair if pair is not None else "no reference turn to corrupt"
        assert teacher is not None
        if strategy == "contrastive":
            return await self._contrastive(task, teacher)
        return await self._sample_rank(task, teacher)

    async def _contrastive(self, task: dict, teacher: Teacher) -> dict:
        config = self.config.contrastive
        tools = _tools(task)
        chosen, rejected = await asyncio.gather(
            teacher.complete(with_system(task["messages"], config.chosen_system), tools=tools),
            teacher.complete(with_system(task["messages"], config.rejected_system), tools=tools,
                             sampling={"temperature": config.rejected_temperature}),
        )
        return self._pair(task, chosen[0], rejected[0], [*chosen, *rejected], {})

    async def _sample_rank(self, task: dict, teacher: Teacher) -> dict | str:
        config = self.config.sample_rank
        answers = await teacher.complete(task["messages"], n=config.n, tools=_tools(task))
        spec, previous = _spec(task), previous_assistant(task["messages"])
        format_name = task.get("format") or "react"
        scored = [self.scorer.score(format_name, answer.message, spec, previous) for answer in answers]
        points = [rule_score(score, self.config.verbosity) for score in scored]
        if config.judge:
            wins = await self._judge(task, answers, [s.parsed.valid for s in scored], teacher)
            points = [p + config.judge_weight * w for p, w in zip(points, wins)]
        valid = [i for i, score in enumerate(scored) if score.parsed.valid]
        if not valid:
            return "no valid sample"
        best = max(valid, key=lambda i: (points[i], -i))
        worst = min(range(len(answers)), key=lambda i: (points[i], i))
        if best == worst or points[best] - points[worst] < config.min_margin:
            return "below margin"
        extra = {"scores": {"chosen": round(points[best], 3), "rejected": round(points[worst], 3),
                            "samples": [round(p, 3) for p in points]}}
        return self._pair(task, answers[best], answers[worst], answers, extra)

    async def _judge(self, task: dict, answers: list[Answer], valid: list[bool], teacher: Teacher) -> list[float]:
        """Share of pairwise comparisons each valid sample wins; a comparison counts only if both orders agree."""
        context = next((m.get("content") or "" for m in reversed(task["messages"]) if m.get("role") != "system"), "")
        candidates = [i for i, ok in enumerate(valid) if ok]
        wins = [0.0] * len(answers)
        comparisons = [(i, j) for n, i in enumerate(candidates) for j in candidates[n + 1:]]

        async def ask(a: int, b: int) -> str | None:
            prompt = JUDGE_PROMPT.format(context=context[-2000:], a=answers[a].message.get("content") or "",
                                         b=answers[b].message.get("content") or "")
            reply = await teacher.complete([{"role": "user", "content": prompt}], sampling={"temperature": 0.0, "max_tokens": 4})
            return parse_verdict(reply[0].message.get("content") or "")

        for i, j in comparisons:
            first, second = await asyncio.gather(ask(i, j), ask(j, i))
            if first == "A" and second == "B":
                wins[i] += 1
            elif first == "B" and second == "A":
                wins[j] += 1
        total = max(1, len(candidates) - 1)
        return [w / total for w in wins]

    def _pair(self, task: dict, chosen: Answer, rejected: Answer, used: list[Answer], extra: dict) -> dict:
        prompt = task["messages"]
        meta = {key: value for key, value in (task.get("meta") or {}).items() if key != "reference"}
        prompt_tokens = sum(a.prompt_tokens for a in used)
        completion_tokens = sum(a.completion_tokens for a in used)
        self.summary.prompt_tokens += prompt_tokens
        self.summary.completion_tokens += completion_tokens
        teacher = self.config.teacher
        meta.update({
            "task_id": task["id"], "format": task.get("format"), "domain": task.get("domain"),
            "strategy": self.config.strategy, "teacher": teacher.model, "teacher_url": teacher.base_url,
            "prompts_hash": self.prompts_hash, "sampling": {k: v for k, v in teacher.sampling().items() if v is not None},
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
            "latency_s": round(max((a.latency for a in used), default=0.0), 3),
            "cached": all(a.cached for a in used), **extra,
        })
        if (task.get("meta") or {}).get("reference"):
            meta["reference"] = task["meta"]["reference"]
        return {"id": pair_id(prompt, [chosen.message], [rejected.message]), "prompt": prompt,
                "chosen": [chosen.message], "rejected": [rejected.message], "meta": meta}
