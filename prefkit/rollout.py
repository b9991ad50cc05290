"""`prefkit rollout`: whole episodes of an environment's tasks played by a policy, each graded as the benchmark
grades it and appended to a trajectories file (`prefkit/records.py` `Trajectory`) the moment it ends.

The environment comes from the registry (`prefkit/envs/registry.py`), the policy from its spec
(`prefkit/policies/`). Episodes run concurrently, each episode's turns in order; a killed run resumes without
replaying the episodes it finished, and a teacher's answers of an unfinished episode come back from the cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from prefkit.appendlog import AppendLog
from prefkit.config import ConfigPath
from prefkit.envs.base import Environment, Outcome
from prefkit.envs.registry import EnvSettings, default_env_config, env_keys_in_place
from prefkit.errors import ConfigError, InputError
from prefkit.lock import OutputLock
from prefkit.outputs import check_outputs, side_file
from prefkit.policies.base import Batcher, Concurrency, MaxTokens, Policy, PolicySettings, Temperature, TurnRequest
from prefkit.policies.spec import FORMS, PolicySpec, check_policy
from prefkit.records import Trajectory, trajectory_of
from prefkit.stage import Output, Stage, StageContext

log = logging.getLogger(__name__)


class RolloutConfig(BaseModel):
    """Settings of `prefkit rollout`."""

    model_config = ConfigDict(extra="forbid")

    env: EnvSettings = Field(
        default_factory=default_env_config,
        description="The environment (its benchmark's rules): a name, or {name: ..., and its settings}.",
    )
    tasks: ConfigPath | None = Field(
        None, description="In a recipe: the benchmark's task file (dbbench: AgentBench's DBBench JSONL, as it is)."
    )
    policy: str | None = Field(None, description=f"Who plays: {FORMS}.")
    samples: int = Field(
        1, ge=1, le=10_000, description="Episodes per task (sampled independently; needs temperature > 0)."
    )
    temperature: Temperature = Field(0.0, description="Sampling temperature of the policy.")
    max_tokens: MaxTokens = Field(512, description="Most tokens per policy turn.")
    concurrency: Concurrency = Field(16, description="Episodes in play at once.")
    limit: int | None = Field(None, ge=1, description="Only the first N tasks.")

    @model_validator(mode="before")
    @classmethod
    def _env_keys(cls, data: Any) -> Any:
        return env_keys_in_place(data)

    @field_validator("policy")
    @classmethod
    def _policy(cls, text: str | None) -> str | None:
        return text if text is None else check_policy(text)

    def policy_settings(self) -> PolicySettings:
        """How the policy samples."""
        return PolicySettings(temperature=self.temperature, max_tokens=self.max_tokens, concurrency=self.concurrency)


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
    env: Environment, ask, label: str, task_id: str, sample: int, pool: ThreadPoolExecutor, slots: asyncio.Semaphore
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
                reply = await ask(TurnRequest(task_id, sample, len(turns), list(episode.messages)))
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
        "policy": label,
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
    env: Environment,
    policy: Policy,
    todo: list[tuple[str, int]],
    out: _Trajectories,
    config: RolloutConfig,
    summary,
    advance,
) -> None:
    # Threads for the steps of the episodes in play, and for the set-ups and clean-ups beside them.
    pool = ThreadPoolExecutor(max_workers=2 * config.concurrency + 2, thread_name_prefix="episode")
    slots = asyncio.Semaphore(config.concurrency)

    async def one(ask, task_id: str, sample: int) -> None:
        record = await _play(env, ask, policy.label, task_id, sample, pool, slots)
        typed = Trajectory.model_validate(record)  # what is written is what every reader checks
        out.append(record)
        _count(summary, typed)
        summary.played += 1
        advance(1, summary)

    try:
        async with policy, Batcher(policy) as ask:
            tasks = [asyncio.ensure_future(one(ask, task_id, sample)) for task_id, sample in todo]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _count(summary: RolloutSummary, record: Trajectory) -> None:
    summary.successes += bool(record.success)
    summary.statuses[record.status] = summary.statuses.get(record.status, 0) + 1
    summary.prompt_tokens += record.usage.prompt_tokens
    summary.completion_tokens += record.usage.completion_tokens
    summary.cache_hits += record.usage.cached_turns
    summary.env_seconds += record.seconds.env
    outcome = Outcome(record.status, record.success, record.reward, record.result or {})
    summary.graded.append((record.task_id, outcome))


def rollout_file(
    config: RolloutConfig,
    out: Path,
    *,
    ctx: StageContext | None = None,
    progress=None,
    settings: PolicySettings | None = None,
) -> dict[str, Any]:
    """Play every (task, sample) of `config.tasks` not yet in `out`, appending each finished episode; returns the
    summary with the benchmark's metrics over every episode in `out`. `progress(n, summary)` is told of each
    episode; `settings` (eval's) replace the config's sampling settings. `prefkit rollout` and a recipe's
    rollout stage both call this."""
    from prefkit.policies.open import open_policy

    ctx = ctx or StageContext()
    _check(config, ctx.source)
    if config.tasks is None:
        raise ConfigError(f"{ctx.source}: missing required setting 'rollout.tasks' (the benchmark's task file)")
    tasks, out = Path(config.tasks), Path(out)
    spec = PolicySpec.parse(config.policy)
    replay = spec.path if spec.kind == "replay" else None
    sides = {"--out's lock": side_file(out, "lock", "")}
    if replay is None:
        sides["the answer cache"] = side_file(out, "cache", ".sqlite")
    check_outputs([tasks, replay], {"--out": out, **sides})
    started = time.perf_counter()
    summary = RolloutSummary(out=str(out))
    with OutputLock(side_file(out, "lock", ""), f"output {out}"):
        if not ctx.resume:
            out.unlink(missing_ok=True)
        # samples of one task may be in play together only when there are several
        env = config.env.open(tasks, concurrency=config.concurrency if config.samples > 1 else 1)
        with env:
            all_ids = env.task_ids()
            task_ids = all_ids[: config.limit] if config.limit else all_ids
            policy = open_policy(
                spec, settings or config.policy_settings(), all_ids, side_file(out, "cache", ".sqlite")
            )
            episodes = policy.episodes(task_ids, config.samples)
            log_ = _Trajectories(out)
            try:
                previous_rows = _checked_rows(log_, set(all_ids), tasks)
                done = {(row.task_id, row.sample) for row in previous_rows}
                # Sample-major: episodes in play at once are of different tasks (one task's episodes share a
                # database name on a server, so they take turns).
                position = {task_id: index for index, task_id in enumerate(task_ids)}
                todo = sorted((e for e in episodes if e not in done), key=lambda e: (e[1], position[e[0]]))
                wanted = set(episodes)
                previous = [row for row in previous_rows if (row.task_id, row.sample) in wanted]
                for row in previous:
                    _count(summary, row)
                summary.episodes, summary.already_done = len(episodes), len(previous)
                engine = getattr(config.env, "engine", None)
                label = f"rollout ({config.env.name}, {engine})" if engine else f"rollout ({config.env.name})"
                with ctx.progress(label, len(episodes)) as advance:
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
    headline = config.env.headline
    if headline and report["metrics"].get(headline) is not None:
        report[headline] = report["metrics"][headline]
    return report


def _checked_rows(log_: _Trajectories, known: set[str], tasks: Path) -> list[Trajectory]:
    """The episodes an earlier run wrote, each checked as a trajectory record and as an episode of a task of
    this task file (a file written for another task file, or with an older id scheme, is refused, never
    silently played again beside the old episodes)."""
    rows = []
    for number, row in enumerate(log_.rows, start=1):
        try:
            record = trajectory_of(row, log_.path, number)
        except InputError as error:
            raise InputError(f"{error}; write to a new --out") from None
        if record.task_id not in known:
            raise InputError(
                f"task {record.task_id!r} is not a task of {tasks} (the file was written for another task file, "
                "or by a prefkit before 0.2, whose task ids hashed its prompt text); write to a new --out",
                str(log_.path),
                number,
            )
        rows.append(record)
    return rows


def _check(config: RolloutConfig, source: str) -> None:
    if config.policy is None:
        raise ConfigError(f"{source}: missing required setting 'rollout.policy' ({FORMS})")
    if PolicySpec.parse(config.policy).kind != "replay" and config.samples > 1 and config.temperature == 0:
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
