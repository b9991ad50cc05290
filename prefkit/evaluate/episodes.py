"""Episode evaluation: the same episodes of an environment played by each model (through `prefkit rollout`),
graded as the benchmark grades them; task success and each episode's turn measures side by side, with
intervals over tasks, paired differences, and the benchmark's own metrics per model. What a turn is and how
it is read comes from the environment (`EnvConfig`: its format, action spec and opening messages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefkit.envs.base import EnvConfig
from prefkit.errors import InputError
from prefkit.evaluate.config import EvalConfig, ModelSpec
from prefkit.evaluate.report import EPISODE_MEASURES, write_report
from prefkit.evaluate.statistics import mean_row, summarise
from prefkit.records import Trajectory, read_trajectories
from prefkit.rollout import RolloutConfig, rollout_file
from prefkit.scoring import Scorer, VerbosityConfig
from prefkit.stage import StageContext


def evaluate_env(
    config: EvalConfig, models: list[ModelSpec], tasks: Path, out_dir: Path, ctx: StageContext
) -> dict[str, Any]:
    """Each model plays `config.env`'s episodes into trajectories-LABEL.jsonl (resumable); returns the report."""
    scorer = Scorer(VerbosityConfig())
    played: dict[str, dict[tuple[str, int], Trajectory]] = {}
    benchmark: dict[str, dict[str, float]] = {}
    engine = getattr(config.env, "engine", None)
    for model in models:
        rollout = RolloutConfig(
            env=config.env,
            policy=model.target,
            samples=config.samples,
            temperature=config.temperature,
            max_tokens=config.max_new_tokens,
            concurrency=config.concurrency,
            limit=config.limit,
            tasks=tasks,
        )
        trajectories = out_dir / f"trajectories-{model.label}.jsonl"
        report = rollout_file(
            rollout,
            trajectories,
            ctx=StageContext(resume=ctx.resume, source=ctx.source),
            settings=config.policy_settings(),
        )
        played[model.label] = {(row.task_id, row.sample): row for row in read_trajectories(trajectories)}
        benchmark[model.label] = report["metrics"]
        ctx.say(f"played {model.label}: success {report['success_rate']:.3f}")
    # Paired differences compare the same episodes: those every model played (a replay file may hold fewer).
    common = sorted(set.intersection(*(set(records) for records in played.values())))
    if not common:
        raise InputError("the models played no episode in common; check the replay files' task ids", str(tasks))
    scored: dict[str, list[dict]] = {}
    for label, records in played.items():
        if len(records) > len(common):
            ctx.say(f"{label}: {len(records) - len(common)} episodes left out (not played by every model)")
        by_task: dict[str, list[dict]] = {}
        for key in common:  # a task's samples averaged: intervals resample tasks
            by_task.setdefault(key[0], []).append(episode_measures(records[key], config.env, scorer))
        scored[label] = [
            mean_row(group, EPISODE_MEASURES, {"task_id": group[0]["task_id"], "samples": len(group)})
            for group in by_task.values()
        ]
    first = next(iter(scored.values()))
    report = {
        "tasks": len(first),
        "samples_per_task": config.samples,
        "env": config.env.name,
        "engine": engine,
        "format": config.env.format,
        "temperature": config.temperature,
        "measures": list(EPISODE_MEASURES),
        "models_evaluated": {m.label: m.shown for m in models},
        **summarise(scored, seed=config.seed, measures=EPISODE_MEASURES),
        config.env.metrics_key: benchmark,
    }
    write_report(out_dir, report)
    return report


def episode_measures(record: Trajectory, env: EnvConfig, scorer: Scorer) -> dict[str, Any]:
    """One episode's row: success, and the policy's turns' format and verbosity measures averaged."""
    spec = env.action_spec()
    turns = env.policy_turns([message.model_dump() for message in record.messages])
    scores = [scorer.score(env.format, message, spec) for message in turns]
    accepted = [score for score in scores if score.parsed.accepted]

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    return {
        "task_id": record.task_id,
        "sample": record.sample,
        "status": record.status,
        "success": float(bool(record.success)),
        "format_valid": mean([float(score.parsed.valid) for score in scores]),
        "accepted": mean([float(score.parsed.accepted) for score in scores]),
        "disciplined": mean([float(score.parsed.disciplined) for score in accepted]),
        "filler": mean([float(bool(score.filler)) for score in scores]),
        "thought_tokens": mean([float(score.thought_tokens) for score in scores]),
        "turns": float(len(turns)),
        "tokens": float(record.usage.completion_tokens),
    }
