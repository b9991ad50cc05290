"""Turn evaluation: each model writes the next turn of every held-out task (through its policy), and each turn
is scored with the same rules as `prefkit filter`: accepted by the benchmark's parser, disciplined, filler,
thought tokens, a repeated action, agreement with the reference action."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefkit.errors import ConfigError, TeacherError
from prefkit.evaluate.config import ModelSpec
from prefkit.evaluate.report import TURN_MEASURES, write_report
from prefkit.evaluate.statistics import mean_row, summarise
from prefkit.formats import ActionSpec, parse_turn
from prefkit.jsonl import write_jsonl
from prefkit.policies.base import PolicySettings, TurnRequest
from prefkit.scoring import Scorer, VerbosityConfig, previous_assistant


def generate(model: ModelSpec, tasks: list[dict], settings: PolicySettings, samples: int, cache: Path) -> list[dict]:
    """The next turn of each task, `samples` times each (task-major), from the model's policy: every request at
    once (a local model generates them `settings.batch_size` at a time, a server's concurrency bounds them)."""
    from prefkit.policies.open import open_policy

    spec = model.policy
    requests = [TurnRequest(task["id"], sample, 0, task["messages"]) for task in tasks for sample in range(samples)]

    async def run() -> list[dict]:
        async with open_policy(spec, settings, [task["id"] for task in tasks], cache) as policy:
            replies = await policy.reply(requests)
        for reply in replies:
            if reply.message is None:
                raise TeacherError(f"{model.label}: {reply.error}")
        return [reply.message for reply in replies]

    return asyncio.run(run())


def score_turns(tasks: list[dict], turns: list[dict], format_name: str, scorer: Scorer) -> list[dict]:
    """Per-turn measures: validity, filler, thought tokens, repeated action, agreement with the reference."""
    rows = []
    for task, turn in zip(tasks, turns):
        spec = ActionSpec.of((task.get("meta") or {}).get("action_spec"))
        score = scorer.score(format_name, turn, spec, previous_assistant(task["messages"]))
        reference = (task.get("meta") or {}).get("reference")
        agreement = None
        if reference:
            expected = parse_turn(format_name, reference, spec)
            if expected.action is not None:
                agreement = float(score.parsed.action is not None and score.parsed.action.key == expected.action.key)
        rows.append(
            {
                "task_id": task["id"],
                "turn": turn,
                "violations": score.parsed.codes,
                "executed": score.parsed.to_dict()["executed"],
                "format_valid": float(score.parsed.valid),
                "accepted": float(score.parsed.accepted),
                # judged on the turns the benchmark takes: of those, how many keep prefkit's stricter rules
                "disciplined": float(score.parsed.disciplined) if score.parsed.accepted else None,
                "filler": float(bool(score.filler)),
                "thought_tokens": float(score.thought_tokens),
                "repeated_action": float(score.repeats_previous_action),
                "reference_agreement": agreement,
            }
        )
    return rows


def per_task(rows: list[dict], samples: int) -> list[dict]:
    """Average the measures of each task's samples, so intervals resample tasks, not correlated samples."""
    if samples == 1:
        return rows
    merged = []
    for start in range(0, len(rows), samples):
        group = rows[start : start + samples]
        first = {
            "task_id": group[0]["task_id"],
            "turns": [g["turn"] for g in group],
            "violations": [g["violations"] for g in group],
            "executed": [g["executed"] for g in group],
        }
        merged.append(mean_row(group, TURN_MEASURES, first))
    return merged


def evaluate(
    models: list[ModelSpec],
    tasks: list[dict],
    format_name: str,
    out_dir: Path,
    settings: PolicySettings,
    verbosity: VerbosityConfig | None = None,
    progress=None,
    samples: int = 1,
) -> dict[str, Any]:
    """Generate, score, summarise and write everything under `out_dir`; returns the report."""
    scorer = Scorer(verbosity)
    out_dir.mkdir(parents=True, exist_ok=True)
    if samples > 1 and settings.temperature == 0:
        raise ConfigError("several samples per task need a temperature above 0")
    expanded = [task for task in tasks for _ in range(samples)]
    scored: dict[str, list[dict]] = {}
    for model in models:
        turns = generate(model, tasks, settings, samples, out_dir / f"cache-{model.label}.sqlite")
        scored[model.label] = per_task(score_turns(expanded, turns, format_name, scorer), samples)
        write_jsonl(out_dir / f"turns-{model.label}.jsonl", scored[model.label])
        if progress:
            progress(model.label)
    report = {
        "tasks": len(tasks),
        "samples_per_task": samples,
        "format": format_name,
        "temperature": settings.temperature,
        "models_evaluated": {m.label: m.shown for m in models},
        **summarise(scored, seed=settings.seed, measures=TURN_MEASURES),
    }
    write_report(out_dir, report)
    return report
