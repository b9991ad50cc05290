"""The `corrupt` strategy: no teacher. Chosen is the task's real next turn, rejected a rule-based
corruption of it; the corruption kind is recorded in `meta.corruption`."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from prefkit.corruptions import KINDS, corrupt_any
from prefkit.formats import ActionSpec
from prefkit.records import pair_id


class CorruptConfig(BaseModel):
    """Settings of the teacher-free corrupt strategy."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[Literal[KINDS]] = Field(
        default_factory=lambda: list(KINDS), description="Corruption kinds to draw from."
    )
    seed: int = Field(0, description="Seed; the same task always gets the same corruption for a seed.")


def corrupt_pair(task: dict, rng: random.Random, kinds: tuple[str, ...] = KINDS) -> dict | None:
    """A pair for a task that carries `meta.reference`, or None when no corruption applies to it."""
    meta = task.get("meta") or {}
    reference = meta.get("reference")
    if not reference or not task.get("format"):
        return None
    spec = ActionSpec.of(meta.get("action_spec"))
    result = corrupt_any(reference, task["format"], rng, spec, kinds)
    if result is None:
        return None
    kind, rejected = result
    prompt, chosen = task["messages"], [reference]
    pair_meta = {key: value for key, value in meta.items() if key != "reference"}
    pair_meta.update(
        {
            "task_id": task["id"],
            "format": task["format"],
            "domain": task.get("domain"),
            "strategy": "corrupt",
            "corruption": kind,
        }
    )
    return {
        "id": pair_id(prompt, chosen, [rejected]),
        "prompt": prompt,
        "chosen": chosen,
        "rejected": [rejected],
        "meta": pair_meta,
    }
