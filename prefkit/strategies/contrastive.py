"""The `contrastive` strategy: the same context answered twice, once under a disciplined system prompt
(chosen) and once under an undisciplined one (rejected)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field

DISCIPLINED = (
    "{system}\n\nRespond as a disciplined agent: reason briefly (one or two sentences), then take exactly one "
    "action in the required format. No greetings, no apologies, no filler, no text after the action."
)
UNDISCIPLINED = (
    "{system}\n\nRespond as a chatty, eager assistant: greet the user, think out loud at length, restate the "
    "task, and do not worry much about the exact action format."
)


class ContrastiveConfig(BaseModel):
    """Prompt templates of the contrastive strategy; `{system}` is the task's own system prompt."""

    model_config = ConfigDict(extra="forbid")

    chosen_system: str = Field(DISCIPLINED, description="System prompt template for the chosen turn.")
    rejected_system: str = Field(UNDISCIPLINED, description="System prompt template for the rejected turn.")
    rejected_temperature: float | None = Field(
        1.0, ge=0, le=2, description="Sampling temperature of the rejected turn."
    )


def with_system(messages: list[dict], template: str) -> list[dict]:
    """The task's messages with its system prompt rendered into `template` (added when the task has none)."""
    if messages and messages[0].get("role") == "system":
        system, rest = messages[0].get("content") or "", messages[1:]
    else:
        system, rest = "", messages
    return [{"role": "system", "content": template.replace("{system}", system).strip()}, *rest]


async def contrastive(task: dict, teacher, config: ContrastiveConfig, tools: list[dict] | None) -> tuple:
    """(chosen answer, rejected answer, every answer used) for one task."""
    # Both requests run to their end even when one fails, so a batch round writes both down at once and no
    # failure is left unretrieved.
    chosen, rejected = await asyncio.gather(
        teacher.complete(with_system(task["messages"], config.chosen_system), tools=tools),
        teacher.complete(
            with_system(task["messages"], config.rejected_system),
            tools=tools,
            sampling={"temperature": config.rejected_temperature},
        ),
        return_exceptions=True,
    )
    for outcome in (chosen, rejected):
        if isinstance(outcome, BaseException):
            raise outcome
    return chosen[0], rejected[0], [*chosen, *rejected]
