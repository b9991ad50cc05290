"""`prefkit rollout`: whole episodes of an environment's tasks played by a policy, each graded as the benchmark
grades it and appended to a trajectories file the moment it ends.

Policies: `openai:MODEL@BASE_URL` (the teacher client: concurrency, retries, the answer cache, the key from
`OPENAI_API_KEY`), a local checkpoint or adapter folder (transformers; the episodes waiting at one moment are
generated in one batch), or `replay:FILE.jsonl` (`{"task_id": ..., "turns": ["...", ...]}` a line, optionally
with `"sample"`: turns written elsewhere, graded here). Episodes run concurrently, each episode's turns in order;
a killed run resumes without replaying the episodes it finished, and the teacher's answers of an unfinished
episode come back from the cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefkit.appendlog import AppendLog
from prefkit.config import ConfigPath
from prefkit.envs import Environment, Episode, Outcome, open_env
from prefkit.errors import ConfigError, FatalTeacherError, InputError, TeacherError
from prefkit.jsonl import iter_jsonl
from prefkit.lock import OutputLock
from prefkit.outputs import check_outputs, side_file
from prefkit.stage import Output, Stage, StageContext

log = logging.getLogger(__name__)

REPLAY_ENDED = "the replay file has no further turn for this episode"


class RolloutConfig(BaseModel):
    """Settings of `prefkit rollout`."""

    model_config = ConfigDict(extra="forbid")

    env: Literal["dbbench"] = Field("dbbench", description="The environment (its benchmark's rules).")
    tasks: ConfigPath | None = Field(
        None, description="In a recipe: the benchmark's task file (dbbench: AgentBench's DBBench JSONL, as it is)."
    )
    engine: Literal["mariadb", "sqlite"] = Field(
        "mariadb", description="dbbench: mariadb (a server prefkit starts, or --db-url) or sqlite (quick runs)."
    )
    db_url: str | None = Field(None, description="dbbench: mysql://USER:PASSWORD@HOST:PORT of a running server.")
    max_round: int = Field(5, ge=1, description="dbbench: most statements an episode runs (AgentBench's default).")
    statement_timeout: float = Field(10.0, gt=0, description="Seconds one SQL statement may run.")
    policy: str | None = Field(
        None, description="openai:MODEL@BASE_URL, replay:FILE.jsonl, or a checkpoint or adapter folder."
    )
    samples: int = Field(1, ge=1, description="Episodes per task (sampled independently; needs temperature > 0).")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature of the policy.")
    max_tokens: int = Field(512, ge=1, description="Most tokens per policy turn.")
    concurrency: int = Field(16, ge=1, description="Episodes in play at once.")
    limit: int | None = Field(None, ge=1, description="Only the first N tasks.")

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, policy: str | None) -> str | None:
        if policy is None:
            return policy
        if policy.startswith("openai:"):
            from prefkit.teacher.client import split_openai_target

            split_openai_target(policy)  # a ValueError says what is wrong
        elif not policy.startswith("replay:"):
            path = Path(policy)
            if not ((path / "config.json").exists() or (path / "adapter_config.json").exists()):
                raise ValueError(
                    f"{policy!r} is neither openai:MODEL@BASE_URL, replay:FILE.jsonl nor a model or adapter folder"
                )
        return policy


# --- policies ------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One policy turn: the message, or why there is none (`stop`: the episode's status then)."""

    message: dict | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    stop: str | None = None
    error: str = ""


class ReplayPolicy:
    """Turns recorded elsewhere, one list per (task, sample)."""

    def __init__(self, path: Path, task_ids: list[str]):
        self.path = path
        self.turns: dict[tuple[str, int], list] = {}
        known = set(task_ids)
        for line, row in iter_jsonl(path):
            task_id, turns, sample = row.get("task_id"), row.get("turns"), row.get("sample", 0)
            if not isinstance(task_id, str) or not isinstance(turns, list):
                raise InputError('expected {"task_id": ..., "turns": [...]}', str(path), line)
            if task_id not in known:
                raise InputError(f"task {task_id!r} is not in the tasks file", str(path), line)
            if not isinstance(sample, int) or (task_id, sample) in self.turns:
                problem = f"task {task_id!r} sample {sample!r} is given twice or is not a number"
                raise InputError(problem, str(path), line)
            if not all(isinstance(t, str) or (isinstance(t, dict) and t.get("role") == "assistant") for t in turns):
                raise InputError("each turn is a string or an assistant message", str(path), line)
            self.turns[(task_id, sample)] = turns

    @property
    def label(self) -> str:
        return f"replay:{self.path.name}"

    def episodes(self, task_ids: list[str], samples: int) -> list[tuple[str, int]]:
        """Every recorded (task, sample) of these tasks, whatever --samples says: the file decides."""
        order = {task_id: index for index, task_id in enumerate(task_ids)}
        return sorted((key for key in self.turns if key[0] in order), key=lambda key: (order[key[0]], key[1]))

    async def reply(self, episode: Episode, sample: int, turn: int) -> Reply:
        turns = self.turns[(episode.task_id, sample)]
        if turn >= len(turns):
            return Reply(None, stop="unknown", error=REPLAY_ENDED)
        recorded = turns[turn]
        return Reply(recorded if isinstance(recorded, dict) else {"role": "assistant", "content": recorded})

    async def close(self) -> None:
        return None


class TeacherPolicy:
    """An OpenAI-compatible model through prefkit's teacher client (answers cached beside the output)."""

    def __init__(self, spec: str, config: RolloutConfig, cache_path: Path):
        from prefkit.teacher.client import TeacherConfig, split_openai_target

        model, base_url = split_openai_target(spec)
        self.model = model
        self.teacher_config = TeacherConfig(
            base_url=base_url,
            model=model,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            concurrency=config.concurrency,
        )
        self.cache_path = cache_path
        self.teacher = None
        self.cache = None

    @property
    def label(self) -> str:
        from prefkit.privacy import redact_url

        return f"openai:{self.model}@{redact_url(self.teacher_config.base_url)}"

    def episodes(self, task_ids: list[str], samples: int) -> list[tuple[str, int]]:
        return [(task_id, sample) for task_id in task_ids for sample in range(samples)]

    async def start(self) -> None:
        from prefkit.teacher.cache import ResponseCache
        from prefkit.teacher.client import Teacher

        self.cache = ResponseCache(self.cache_path)
        self.teacher = await Teacher(self.teacher_config, self.cache).__aenter__()
        await self.teacher.preflight()

    async def reply(self, episode: Episode, sample: int, turn: int) -> Reply:
        try:
            answer = (await self.teacher.complete(episode.messages, n=1, sample=sample))[0]
        except FatalTeacherError:
            raise
        except TeacherError as error:
            return Reply(None, stop="unknown", error=str(error))
        return Reply(answer.message, answer.prompt_tokens, answer.completion_tokens, answer.cached)

    async def close(self) -> None:
        if self.teacher is not None:
            await self.teacher.__aexit__(None, None, None)
        if self.cache is not None:
            self.cache.close()


class LocalPolicy:
    """A local checkpoint or adapter folder (transformers), generating for the episodes waiting at the same
    moment in one batch, on a thread of its own."""

    def __init__(self, target: str, config: RolloutConfig, batch_size: int = 16, max_prompt_tokens: int = 2048):
        self.target, self.config = target, config
        self.batch_size, self.max_prompt_tokens = batch_size, max_prompt_tokens
        self.model = self.tokenizer = None
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")

    @property
    def label(self) -> str:
        return self.target

    def episodes(self, task_ids: list[str], samples: int) -> list[tuple[str, int]]:
        return [(task_id, sample) for task_id in task_ids for sample in range(samples)]

    async def start(self) -> None:
        import torch

        from prefkit.evaluate import load_local

        loop = asyncio.get_running_loop()
        self.model, self.tokenizer = await loop.run_in_executor(self._pool, load_local, self.target)
        torch.manual_seed(0)
        self._queue = asyncio.Queue()
        self._worker = asyncio.ensure_future(self._serve())

    async def _serve(self) -> None:
        from prefkit.evaluate import generate_turns

        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            conversations, usage = [messages for messages, _ in batch], []
            try:
                turns = await loop.run_in_executor(
                    self._pool,
                    generate_turns,
                    self.model,
                    self.tokenizer,
                    conversations,
                    self.config.max_tokens,
                    self.config.temperature,
                    self.max_prompt_tokens,
                    usage,
                )
            except Exception as error:  # every waiting episode learns of it
                for _, future in batch:
                    future.set_exception(error)
                continue
            for (_, future), turn, counts in zip(batch, turns, usage):
                future.set_result((turn, counts))

    async def reply(self, episode: Episode, sample: int, turn: int) -> Reply:
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((list(episode.messages), future))
        message, (prompt, completion) = await future
        return Reply(message, prompt_tokens=prompt, completion_tokens=completion)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)


def open_policy(config: RolloutConfig, task_ids: list[str], out: Path):
    """The policy the config names; a replay file is read (and checked) at once."""
    if config.policy.startswith("replay:"):
        path = Path(config.policy[len("replay:") :])
        if not path.exists():
            raise InputError("replay file not found; check the path", str(path))
        return ReplayPolicy(path, task_ids)
    if config.policy.startswith("openai:"):
        return TeacherPolicy(config.policy, config, side_file(out, "cache", ".sqlite"))
    return LocalPolicy(config.policy, config)


# --- playing -------------------------------------------------------------------------------------------


@dataclass
class RolloutSummary:
    """What a rollout did, for the table and --json."""

    out: str
    episodes: int = 0
    already_done: int = 0
    played: int = 0
    successes: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    seconds: float = 0.0
    play_seconds: float = 0.0  # from the first episode's start to the last one's end (no start-up, no shutdown)
    env_seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    graded: list[tuple[str, Outcome]] = field(default_factory=list, repr=False)  # what the metrics need

    def as_dict(self) -> dict[str, Any]:
        done = self.played + self.already_done
        counts = {key: value for key, value in self.__dict__.items() if key != "graded"}
        return {**counts, "success_rate": self.successes / done if done else None}


def _timed(function, *args):
    """`function(*args)` and the seconds it took, measured in the thread that ran it (not the waiting)."""
    tick = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - tick


async def _play(
    env: Environment, policy, task_id: str, sample: int, pool: ThreadPoolExecutor, slots: asyncio.Semaphore
) -> dict[str, Any]:
    """One episode from start to grade; the record `prefkit rollout` appends. The episode's set-up runs while
    the policy writes its first turn, and its grading and clean-up after it has left its slot, so only the
    steps themselves stand between one policy turn and the next."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    env_seconds = policy_seconds = 0.0
    episode = env.start(task_id, sample)
    turns, usage = [], {"prompt_tokens": 0, "completion_tokens": 0, "cached_turns": 0}
    setup = None
    try:
        async with slots:
            setup = loop.run_in_executor(pool, _timed, episode.prepare)
            while not episode.done:
                tick = time.perf_counter()
                reply = await policy.reply(episode, sample, len(turns))
                policy_seconds += time.perf_counter() - tick
                if reply.message is None:
                    episode.stop(reply.stop or "unknown")
                    turns.append({"turn": len(turns) + 1, "stopped": reply.stop, "error": reply.error})
                    break
                usage["prompt_tokens"] += reply.prompt_tokens
                usage["completion_tokens"] += reply.completion_tokens
                usage["cached_turns"] += reply.cached
                if not turns:
                    env_seconds += (await setup)[1]
                step, seconds = await loop.run_in_executor(pool, _timed, episode.step, reply.message)
                env_seconds += seconds
                turns.append(step.to_dict())
        if not turns or "stopped" in turns[0]:
            env_seconds += (await setup)[1]
        outcome, seconds = await loop.run_in_executor(pool, _timed, episode.grade)
        env_seconds += seconds
    finally:
        if setup is not None:
            await asyncio.gather(setup, return_exceptions=True)
        await loop.run_in_executor(pool, episode.close)
    for record, progress in zip((t for t in turns if "stopped" not in t), outcome.progress):
        record["progress"] = progress
    return {
        "task_id": task_id,
        "sample": sample,
        "env": env.name,
        "engine": env.engine,
        "policy": policy.label,
        "messages": episode.messages,
        "turns": turns,
        "status": outcome.status,
        "success": outcome.success,
        "reward": outcome.reward,
        "result": outcome.result,
        "usage": usage,
        "seconds": {
            "total": round(time.perf_counter() - started, 4),
            "env": round(env_seconds, 4),
            "policy": round(policy_seconds, 4),
        },
    }


class _Trajectories:
    """The output, opened (and an existing one repaired) at once, but created only when the first episode ends:
    a run that fails before any episode (an unreachable teacher) leaves no file behind."""

    def __init__(self, path: Path):
        self.path = path
        self.log = AppendLog(path) if path.exists() else None
        self.rows = self.log.rows if self.log else []

    def append(self, record: dict) -> None:
        if self.log is None:
            self.log = AppendLog(self.path)
        self.log.append(record)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


async def _run(
    env: Environment, policy, todo: list[tuple[str, int]], out: _Trajectories, config: RolloutConfig, summary, advance
) -> None:
    # Threads for the steps of the episodes in play, and for the set-ups and clean-ups beside them.
    pool = ThreadPoolExecutor(max_workers=2 * config.concurrency + 2, thread_name_prefix="episode")
    slots = asyncio.Semaphore(config.concurrency)

    async def one(task_id: str, sample: int) -> None:
        record = await _play(env, policy, task_id, sample, pool, slots)
        out.append(record)
        _count(summary, record)
        summary.played += 1
        advance(1, summary)

    try:
        if isinstance(policy, (TeacherPolicy, LocalPolicy)):
            await policy.start()
        tasks = [asyncio.ensure_future(one(task_id, sample)) for task_id, sample in todo]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    finally:
        await policy.close()
        pool.shutdown(wait=True, cancel_futures=True)


def _count(summary: RolloutSummary, record: dict) -> None:
    summary.successes += bool(record["success"])
    summary.statuses[record["status"]] = summary.statuses.get(record["status"], 0) + 1
    summary.prompt_tokens += record["usage"]["prompt_tokens"]
    summary.completion_tokens += record["usage"]["completion_tokens"]
    summary.cache_hits += record["usage"]["cached_turns"]
    summary.env_seconds += record["seconds"]["env"]
    outcome = Outcome(record["status"], record["success"], record["reward"], record.get("result") or {})
    summary.graded.append((record["task_id"], outcome))


def rollout_file(config: RolloutConfig, out: Path, *, ctx: StageContext | None = None, progress=None) -> dict[str, Any]:
    """Play every (task, sample) of `config.tasks` not yet in `out`, appending each finished episode; returns the
    summary with the benchmark's metrics over every episode in `out`. `progress(n, summary)` is told of each
    episode. `prefkit rollout` and a recipe's rollout stage both call this."""
    ctx = ctx or StageContext()
    _check(config, ctx.source)
    if config.tasks is None:
        raise ConfigError(f"{ctx.source}: missing required setting 'rollout.tasks' (the benchmark's task file)")
    tasks, out = Path(config.tasks), Path(out)
    replay = Path(config.policy[len("replay:") :]) if config.policy.startswith("replay:") else None
    sides = {"--out's lock": side_file(out, "lock", "")}
    if replay is None:
        sides["the answer cache"] = side_file(out, "cache", ".sqlite")
    check_outputs([tasks, replay], {"--out": out, **sides})
    if config.db_url and config.engine != "mariadb":
        raise ConfigError("--db-url is for the mariadb engine")
    if replay is None and config.samples > 1 and config.temperature == 0:
        raise ConfigError("several samples per task need a temperature above 0")
    started = time.perf_counter()
    summary = RolloutSummary(out=str(out))
    with OutputLock(side_file(out, "lock", ""), f"output {out}"):
        if not ctx.resume:
            out.unlink(missing_ok=True)
        env = open_env(
            config.env,
            tasks,
            engine=config.engine,
            db_url=config.db_url,
            max_round=config.max_round,
            statement_timeout=config.statement_timeout,
            # samples of one task may be in play together only when there are several
            concurrency=config.concurrency if config.samples > 1 else 1,
        )
        with env:
            task_ids = env.task_ids()[: config.limit] if config.limit else env.task_ids()
            policy = open_policy(config, env.task_ids(), out)
            episodes = policy.episodes(task_ids, config.samples)
            log_ = _Trajectories(out)
            try:
                done = {(row.get("task_id"), row.get("sample")) for row in log_.rows}
                # Sample-major: episodes in play at once are of different tasks (one task's episodes share a
                # database name on a server, so they take turns).
                position = {task_id: index for index, task_id in enumerate(task_ids)}
                todo = sorted((e for e in episodes if e not in done), key=lambda e: (e[1], position[e[0]]))
                wanted = set(episodes)
                previous = [row for row in log_.rows if (row.get("task_id"), row.get("sample")) in wanted]
                for row in previous:
                    _count(summary, row)
                summary.episodes, summary.already_done = len(episodes), len(previous)
                with ctx.progress(f"rollout ({config.env}, {config.engine})", len(episodes)) as advance:
                    advance(len(previous))
                    if progress is not None:
                        progress(0, summary)

                    def told(n: int, current: RolloutSummary) -> None:
                        advance(n)
                        if progress is not None:
                            progress(n, current)

                    playing = time.perf_counter()
                    asyncio.run(_run(env, policy, todo, log_, config, summary, told))
                    summary.play_seconds = round(time.perf_counter() - playing, 3)
            finally:
                log_.close()
            summary.metrics = env.summarise(summary.graded)
    summary.seconds = round(time.perf_counter() - started, 3)
    report = summary.as_dict()
    if report["metrics"].get("overall_cat_accuracy") is not None:
        report["overall_cat_accuracy"] = report["metrics"]["overall_cat_accuracy"]
    return report


def _check(config: RolloutConfig, source: str) -> None:
    if config.policy is None:
        raise ConfigError(f"{source}: missing required setting 'rollout.policy' (openai:MODEL@BASE_URL, ...)")
    if config.db_url and config.engine != "mariadb":
        raise ConfigError(f"{source}: db_url is for the mariadb engine")
    if not config.policy.startswith("replay:") and config.samples > 1 and config.temperature == 0:
        raise ConfigError(f"{source}: several samples per task need a temperature above 0")


def _counts(report: dict[str, Any]) -> dict[str, Any]:
    rate = report["success_rate"]
    return {"episodes": report["episodes"], "success": "-" if rate is None else f"{rate:.3f}"}


def _check_stage(config: RolloutConfig, source: str) -> None:
    if config.tasks is None:
        raise ConfigError(f"{source}: missing required setting 'rollout.tasks' (the benchmark's task file)")
    if not Path(config.tasks).exists():
        raise ConfigError(f"{source}: rollout task file not found: {config.tasks}; check rollout.tasks")
    _check(config, source)


STAGE = Stage(
    "rollout",
    RolloutConfig,
    rollout_file,
    outputs={"out": Output("trajectories", "trajectories.jsonl")},
    check=_check_stage,
    counts=_counts,
)
