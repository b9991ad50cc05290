"""The `sample-rank` strategy: n samples per task, scored by the same rules as `prefkit filter` (and
optionally by the teacher as a pairwise judge, both orders, to cancel position bias); best valid sample
is chosen, worst is rejected, and the pair is kept only when they differ by at least a margin."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from prefkit.scoring import TurnScore, VerbosityConfig

JUDGE_PROMPT = (
    "You compare two candidate next turns of an agent. Prefer the one that follows the required action format, "
    "takes one sensible action and has no chit-chat. Answer with exactly one letter: A or B.\n\n"
    "Context (last message):\n{context}\n\nCandidate A:\n{a}\n\nCandidate B:\n{b}\n\nBetter candidate:"
)

RULE_WEIGHTS = {"format": 4.0, "filler": 1.0, "thought_budget": 0.02, "repetition": 1.0, "loop": 2.0,
                "multiple_actions": 2.0, "trailing": 0.5}


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


def parse_verdict(text: str) -> str | None:
    """'A' or 'B' from a judge answer, or None when it is neither."""
    cleaned = (text or "").strip().strip(".*:").upper()
    return cleaned[:1] if cleaned[:1] in ("A", "B") else None
