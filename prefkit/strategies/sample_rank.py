"""The `sample-rank` strategy: n samples per task, scored by the same rules as `prefkit filter` (and
optionally by the teacher as a pairwise judge, both orders, to cancel position bias); best valid sample
is chosen, worst is rejected, and the pair is kept only when they differ by at least a margin."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from prefkit.formats import ActionSpec
from prefkit.scoring import Scorer, TurnScore, VerbosityConfig, previous_assistant
from prefkit.strategies.judge import judge_wins

RULE_WEIGHTS = {
    "format": 4.0,
    "filler": 1.0,
    "thought_budget": 0.02,
    "repetition": 1.0,
    "loop": 2.0,
    "multiple_actions": 2.0,
    "trailing": 0.5,
}


class SampleRankConfig(BaseModel):
    """Settings of the sample-rank strategy."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(4, ge=2, description="Samples per task.")
    min_margin: float = Field(1.0, ge=0, description="Least score difference between chosen and rejected.")
    judge: bool = Field(False, description="Also ask the teacher to compare samples pairwise (both orders).")
    judge_weight: float = Field(2.0, ge=0, description="Score points for winning every pairwise comparison.")


def rule_score(score: TurnScore, config: VerbosityConfig) -> float:
    """Higher is better: minus the weighted badness of the turn on every rule."""
    badness = score.badness(config)
    return -sum(RULE_WEIGHTS[rule] * value for rule, value in badness.items())


async def sample_rank(
    task: dict, teacher, config: SampleRankConfig, scorer: Scorer, spec: ActionSpec, tools: list[dict] | None
) -> tuple | str:
    """(chosen answer, rejected answer, every answer used, scores) for one task, or the reason there is none."""
    answers = await teacher.complete(task["messages"], n=config.n, tools=tools)
    previous = previous_assistant(task["messages"])
    format_name = task.get("format") or "react"
    scored = [scorer.score(format_name, answer.message, spec, previous) for answer in answers]
    points = [rule_score(score, scorer.config) for score in scored]
    if config.judge:
        wins = await judge_wins(task, answers, [s.parsed.valid for s in scored], teacher)
        points = [p + config.judge_weight * w for p, w in zip(points, wins)]
    valid = [i for i, score in enumerate(scored) if score.parsed.valid]
    if not valid:
        return "no valid sample"
    best = max(valid, key=lambda i: (points[i], -i))
    worst = min(range(len(answers)), key=lambda i: (points[i], i))
    if best == worst or points[best] - points[worst] < config.min_margin:
        return "below margin"
    scores = {
        "chosen": round(points[best], 3),
        "rejected": round(points[worst], 3),
        "samples": [round(p, 3) for p in points],
    }
    return answers[best], answers[worst], answers, scores
