"""`prefkit generate` as a library call: tasks in, candidate pairs appended as soon as each exists.

Resumable by construction: the output is an append-only log; a task whose pair (or recorded skip) is
already there is not asked again, a torn last line is set aside, and every teacher answer is cached on
disk, so a re-run never pays twice. One process at a time writes an output (a lock beside it). The
strategies themselves live in `prefkit/strategies/`; this module queues tasks and records outcomes.
With `teacher.mode: batch` the same strategies run in rounds against the OpenAI Batch API
(`prefkit/teacher/batch.py`), sharing the one answer cache with online runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from prefkit import eventloop
from prefkit.appendlog import AppendLog
from prefkit.errors import ConfigError, FatalTeacherError, TeacherError
from prefkit.formats import ActionSpec
from prefkit.jsonl import InvalidLines, write_jsonl
from prefkit.lock import OutputLock
from prefkit.outputs import check_outputs, output_folder, side_file
from prefkit.privacy import redact_text
from prefkit.records import content_hash, pair_id
from prefkit.scoring import Scorer, VerbosityConfig
from prefkit.stage import Output, Stage, StageContext
from prefkit.strategies.contrastive import ContrastiveConfig, contrastive
from prefkit.strategies.corrupt import CorruptConfig, corrupt_pair
from prefkit.strategies.sample_rank import SampleRankConfig, sample_rank
from prefkit.tasks import read_tasks
from prefkit.teacher.answers import Answer
from prefkit.teacher.batch import BatchRunner, BatchTeacher, Deferred
from prefkit.teacher.client import Teacher, TeacherConfig

log = logging.getLogger(__name__)

Strategy = Literal["contrastive", "sample-rank", "corrupt"]


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
    batch_prompt_tokens: int = 0
    batch_completion_tokens: int = 0
    cost: float | None = None
    mode: str = "online"
    endpoints: list[dict] = field(default_factory=list)
    batches: list[dict] = field(default_factory=list)
    batch_files: list[str] = field(default_factory=list)
    waiting: int = 0
    seconds: float = 0.0
    repaired: str | None = None
    out: str = ""
    failures_file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able view: every count, the failed task ids with their errors, where the files are."""
        return dict(self.__dict__)


def cache_file(out: Path) -> Path:
    """The answer cache beside an output (OUT.cache.sqlite); one written by an earlier prefkit under the older
    name OUT.jsonl.cache.sqlite is still used, so upgrading never pays for an answer twice."""
    legacy = out.with_name(out.name + ".cache.sqlite")
    return legacy if legacy.exists() else side_file(out, "cache", ".sqlite")


def batch_folder(out: Path) -> Path:
    """Where a batch run keeps its state log, input files and downloaded results (OUT.batches/)."""
    return side_file(out, "batches", "")


def _spec(task: dict) -> ActionSpec:
    return ActionSpec.of((task.get("meta") or {}).get("action_spec"))


def _tools(task: dict) -> list[dict] | None:
    tools = ((task.get("meta") or {}).get("action_spec") or {}).get("tools")
    return list(tools) if tools else None


class Generator:
    """Runs one strategy over tasks, appending pairs to `out`."""

    def __init__(
        self,
        config: GenerateConfig,
        out: str | Path,
        ctx: StageContext | None = None,
        batch_file_only: bool = False,
        batch_results: Path | None = None,
    ):
        self.config = config
        self.out = Path(out)
        self.ctx = ctx or StageContext()
        self.file_only, self.results = batch_file_only, batch_results
        self.batched = config.needs_teacher and (config.teacher.mode == "batch" or batch_file_only)
        self.scorer = Scorer(config.verbosity)
        self.prompts_hash = content_hash(config.contrastive.model_dump(), config.sample_rank.model_dump(), length=12)
        self.summary = GenerateSummary(out=str(self.out))
        teacher = config.teacher
        self._run_meta = {  # the same for every pair of this run: worked out once
            "strategy": config.strategy,
            "teacher": teacher.model,
            "teacher_url": teacher.shown_url(),
            "prompts_hash": self.prompts_hash,
            "sampling": {k: v for k, v in teacher.sampling().items() if v is not None},
        }

    def run(self, tasks: list[dict]) -> GenerateSummary:
        """Generate pairs for every unfinished task; raises FatalTeacherError (after saving) on a fatal error."""
        return eventloop.run(self._run(tasks))

    async def _run(self, tasks: list[dict]) -> GenerateSummary:
        started = time.perf_counter()
        summary = self.summary
        pairs_log = AppendLog(self.out, fsync=self.config.fsync)
        skips_log = AppendLog(side_file(self.out, "skipped"), fsync=self.config.fsync)
        summary.repaired = pairs_log.repaired
        done = {(row.get("meta") or {}).get("task_id") for row in pairs_log.rows}
        done |= {row.get("task_id") for row in skips_log.rows}
        self._pair_ids = {row.get("id") for row in pairs_log.rows}
        todo = [task for task in tasks if task["id"] not in done]
        summary.tasks, summary.already_done = len(tasks), len(tasks) - len(todo)
        summary.mode = "batch" if self.batched else "online"
        teacher = runner = None
        self._hits: set[str] = set()
        try:
            if self.config.needs_teacher:
                from prefkit.teacher.cache import ResponseCache

                cache_path = self.config.teacher.cache or cache_file(self.out)
                self.cache = ResponseCache(cache_path)
                teacher = Teacher(self.config.teacher, self.cache)
                if self.batched or self.results:
                    runner = BatchRunner(
                        teacher, self.cache, batch_folder(self.out), say=self.ctx.say, progress=self.ctx.progress
                    )
                if self.results:
                    answered, failed = runner.read_results_file(self.results)
                    self.ctx.say(f"read {answered} answers from {self.results} ({failed} failed lines)")
                if todo and not self.file_only:
                    await teacher.preflight()
            if self.batched:
                await self._batch_rounds(todo, teacher, runner, pairs_log, skips_log)
            else:
                with self.ctx.progress(f"generate ({self.config.strategy})", len(tasks)) as advance:
                    advance(summary.already_done)
                    await self._work(todo, teacher, pairs_log, skips_log, advance)
        finally:
            pairs_log.close()
            skips_log.close()
            if teacher is not None:
                await teacher.__aexit__(None, None, None)
                self._count_usage(teacher, runner)
                self.cache.close()
            if runner is not None:
                runner.close()
            self._write_failures()
            summary.seconds = time.perf_counter() - started
        return summary

    def _count_usage(self, teacher: Teacher, runner: BatchRunner | None) -> None:
        """Requests, tokens paid (online and in batches), cost, per-endpoint figures and batches."""
        summary, usage, config = self.summary, teacher.usage, self.config.teacher
        summary.requests, summary.retries = usage.requests, usage.retries
        summary.cache_hits = self.cache.hits + len(self._hits)
        summary.prompt_tokens = usage.prompt_tokens + usage.batch_prompt_tokens
        summary.completion_tokens = usage.completion_tokens + usage.batch_completion_tokens
        summary.batch_prompt_tokens, summary.batch_completion_tokens = (
            usage.batch_prompt_tokens,
            usage.batch_completion_tokens,
        )
        summary.endpoints = teacher.router.summary()
        if runner is not None:
            summary.batches = [
                {"id": b.id, "input": b.input, "status": b.status, "requests": b.requests, "failed": b.failed}
                for b in runner.batches.values()
            ]
        price_in, price_out = config.price_input_per_mtok, config.price_output_per_mtok
        batch_in = config.batch.price_input_per_mtok if config.batch.price_input_per_mtok is not None else price_in
        batch_out = config.batch.price_output_per_mtok if config.batch.price_output_per_mtok is not None else price_out
        if any(price is not None for price in (price_in, price_out, batch_in, batch_out)):
            online = usage.prompt_tokens * (price_in or 0) + usage.completion_tokens * (price_out or 0)
            batched = usage.batch_prompt_tokens * (batch_in or 0) + usage.batch_completion_tokens * (batch_out or 0)
            summary.cost = round((online + batched) / 1e6, 4)

    async def _batch_rounds(
        self, todo: list[dict], teacher: Teacher, runner: BatchRunner, pairs_log: AppendLog, skips_log: AppendLog
    ) -> None:
        """Rounds of: run the strategies on the cache, send what is missing as batches, read the answers."""
        if not self.file_only:
            await runner.resume()
        elif runner.pending():
            names = ", ".join(record.id for record in runner.pending())
            raise ConfigError(
                f"batches {names} were submitted by an earlier run and are not finished; run without "
                "--batch-file-only to follow them (their requests would otherwise be written out again)"
            )
        round_number = 0
        while todo:
            round_number += 1
            asker = BatchTeacher(teacher, runner, online=not self.file_only)
            label = f"generate ({self.config.strategy}, batch round {round_number})"
            with self.ctx.progress(label, len(todo)) as advance:
                todo = await self._work(todo, asker, pairs_log, skips_log, advance)
            self._hits |= asker.hit_keys
            if not asker.wanted:
                break
            if self.file_only:
                names = runner.covered(asker.wanted) or [path.name for path in runner.write_inputs(asker.wanted)]
                self.summary.batch_files = [str(runner.folder / name) for name in names]
                break
            await runner.submit(asker.wanted)
        self.summary.waiting = len(todo)

    async def _work(
        self,
        todo: list[dict],
        teacher: Teacher | BatchTeacher | None,
        pairs_log: AppendLog,
        skips_log: AppendLog,
        advance: Callable[[int], None],
    ) -> list[dict]:
        """Every task in `todo` made, failed or (in a batch round) left waiting; returns the waiting ones."""
        queue: asyncio.Queue = asyncio.Queue()
        for task in todo:
            queue.put_nowait(task)
        fatal: list[BaseException] = []
        waiting: list[dict] = []

        async def worker() -> None:
            while not queue.empty() and not fatal:
                task = queue.get_nowait()
                try:
                    outcome = await self._make(task, teacher)
                except Deferred:
                    waiting.append(task)
                    continue
                except FatalTeacherError as error:
                    fatal.append(error)
                    return
                except TeacherError as error:
                    self.summary.failed += 1
                    self.summary.failures.append({"task_id": task["id"], "error": redact_text(str(error))})
                else:
                    self._record(task, outcome, pairs_log, skips_log)
                advance(1)

        # At least one endpoint's worth of workers: --batch-file-only needs no URL, and its tasks still need asking.
        endpoints = max(1, len(self.config.teacher.urls))
        workers = self.config.teacher.concurrency * 2 * endpoints if teacher else 1
        await asyncio.gather(*(worker() for _ in range(min(workers, max(1, len(todo))))))
        if fatal:
            raise fatal[0]
        order = {task["id"]: number for number, task in enumerate(todo)}
        return sorted(waiting, key=lambda task: order[task["id"]])

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
        path = side_file(self.out, "failures")
        if self.summary.failures:
            write_jsonl(path, self.summary.failures)
            self.summary.failures_file = str(path)
        elif path.exists():
            path.unlink()

    async def _make(self, task: dict, teacher: Teacher | BatchTeacher | None) -> dict | str:
        """A pair for one task, or the reason there is none."""
        strategy = self.config.strategy
        if strategy == "corrupt":
            rng = random.Random(f"{self.config.corrupt.seed}:{task['id']}")
            pair = corrupt_pair(task, rng, tuple(self.config.corrupt.kinds))
            return pair if pair is not None else "no reference turn to corrupt"
        assert teacher is not None
        if strategy == "contrastive":
            chosen, rejected, used = await contrastive(task, teacher, self.config.contrastive, _tools(task))
            return self._pair(task, chosen, rejected, used, {})
        outcome = await sample_rank(task, teacher, self.config.sample_rank, self.scorer, _spec(task), _tools(task))
        if isinstance(outcome, str):
            return outcome
        chosen, rejected, used, scores = outcome
        return self._pair(task, chosen, rejected, used, {"scores": scores})

    def _pair(self, task: dict, chosen: Answer, rejected: Answer, used: list[Answer], extra: dict) -> dict:
        prompt = task["messages"]
        meta = {key: value for key, value in (task.get("meta") or {}).items() if key != "reference"}
        prompt_tokens = sum(a.prompt_tokens for a in used)
        completion_tokens = sum(a.completion_tokens for a in used)
        meta.update(
            {
                "task_id": task["id"],
                "format": task.get("format"),
                "domain": task.get("domain"),
                **self._run_meta,
                "sampling": dict(self._run_meta["sampling"]),
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
                "latency_s": round(max((a.latency for a in used), default=0.0), 3),
                "cached": all(a.cached for a in used),
                **extra,
            }
        )
        if (task.get("meta") or {}).get("reference"):
            meta["reference"] = task["meta"]["reference"]
        return {
            "id": pair_id(prompt, [chosen.message], [rejected.message]),
            "prompt": prompt,
            "chosen": [chosen.message],
            "rejected": [rejected.message],
            "meta": meta,
        }


def generate_file(
    config: GenerateConfig,
    tasks: Path,
    out: Path,
    *,
    skip_invalid: bool = False,
    ctx: StageContext | None = None,
    batch_file_only: bool = False,
    batch_results: Path | None = None,
) -> dict[str, Any]:
    """Pairs for the tasks in `tasks`, appended to `out` (resumed unless `ctx.resume` is false, which starts the
    output over but keeps the answer cache and any batches); returns the summary. Unreadable task lines stop the
    run, or with `skip_invalid` go to OUT.invalid.jsonl. `batch_file_only`: write the missing requests as Batch
    API input files (OUT.batches/) and stop; `batch_results`: read a results file of those first."""
    ctx = ctx or StageContext()
    out = Path(out)
    if (batch_file_only or batch_results) and not config.needs_teacher:
        raise ConfigError(f"{ctx.source}: the {config.strategy} strategy asks no teacher, so it has no batches")
    sides = {f"--out's {kind} file": side_file(out, kind) for kind in ("skipped", "failures", "torn")}
    if skip_invalid:
        sides["--out's invalid file"] = side_file(out, "invalid")
    if config.needs_teacher:
        sides["the answer cache"] = config.teacher.cache or cache_file(out)
    batched = config.needs_teacher and (config.teacher.mode == "batch" or batch_file_only or batch_results)
    folders = {"--out's batch folder": batch_folder(out)} if batched else {}
    check_outputs([tasks, batch_results], {"--out": out, **sides, "--out's lock": side_file(out, "lock", "")}, folders)
    with OutputLock(side_file(out, "lock", ""), f"output {out}"), contextlib.ExitStack() as stack:
        if batched:
            stack.enter_context(output_folder(batch_folder(out), keep_on_error=True))
        if not ctx.resume:
            for path in (out, *(side_file(out, kind) for kind in ("skipped", "failures", "torn"))):
                path.unlink(missing_ok=True)
        invalid = InvalidLines(side_file(out, "invalid")) if skip_invalid else None
        rows = read_tasks(tasks, invalid)
        if invalid is not None:
            invalid.flush()
        if config.limit:
            rows = rows[: config.limit]
        summary = Generator(config, out, ctx, batch_file_only, batch_results).run(rows)
    report = summary.as_dict()
    if invalid is not None:
        report["invalid_lines"] = len(invalid)
    return report


def raise_for_failures(report: dict[str, Any]) -> None:
    """A run with tasks that failed after every retry ends with an error that says how to go on."""
    if report["failed"]:
        raise TeacherError(
            f"{report['failed']} of {report['tasks']} tasks failed after every retry; they are listed in "
            f"{report['failures_file']} and the next run retries them"
        )


def _check(config: GenerateConfig, source: str) -> None:
    if config.needs_teacher:
        config.teacher.require(source)


def _counts(report: dict[str, Any]) -> dict[str, Any]:
    return {"pairs": report["pairs"] + report["already_done"] - report["skipped"], "skipped": report["skipped"]}


STAGE = Stage(
    "generate",
    GenerateConfig,
    generate_file,
    inputs={"tasks": "tasks"},
    outputs={"out": Output("pairs", "candidates.jsonl")},
    check=_check,
    counts=_counts,
    verify=raise_for_failures,
)
