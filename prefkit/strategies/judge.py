"""The teacher as a pairwise judge of sampled turns, asked in both orders to cancel position bias: a
comparison counts only when the two orders agree."""

from __future__ import annotations

import asyncio

JUDGE_PROMPT = (
    "You compare two candidate next turns of an agent. Prefer the one that follows the required action format, "
    "takes one sensible action and has no chit-chat. Answer with exactly one letter: A or B.\n\n"
    "Context (last message):\n{context}\n\nCandidate A:\n{a}\n\nCandidate B:\n{b}\n\nBetter candidate:"
)


def parse_verdict(text: str) -> str | None:
    """'A' or 'B' from a judge answer, or None when it is neither."""
    cleaned = (text or "").strip().strip(".*:").upper()
    return cleaned[:1] if cleaned[:1] in ("A", "B") else None


async def judge_wins(task: dict, answers: list, valid: list[bool], teacher) -> list[float]:
    """Share of pairwise comparisons each valid sample wins; a comparison counts only if both orders agree."""
    context = next((m.get("content") or "" for m in reversed(task["messages"]) if m.get("role") != "system"), "")
    candidates = [i for i, ok in enumerate(valid) if ok]
    wins = [0.0] * len(answers)
    comparisons = [(i, j) for n, i in enumerate(candidates) for j in candidates[n + 1 :]]

    async def ask(a: int, b: int) -> str | None:
        prompt = JUDGE_PROMPT.format(
            context=context[-2000:],
            a=answers[a].message.get("content") or "",
            b=answers[b].message.get("content") or "",
        )
        reply = await teacher.complete(
            [{"role": "user", "content": prompt}], sampling={"temperature": 0.0, "max_tokens": 4}
        )
        return parse_verdict(reply[0].message.get("content") or "")

    # Every comparison at once (both orders): one round trip online, one batch round in batch mode.
    orders = [(a, b) for i, j in comparisons for a, b in ((i, j), (j, i))]
    verdicts = await asyncio.gather(*(ask(a, b) for a, b in orders), return_exceptions=True)
    for verdict in verdicts:
        if isinstance(verdict, BaseException):
            raise verdict
    for number, (i, j) in enumerate(comparisons):
        first, second = verdicts[2 * number], verdicts[2 * number + 1]
        if first == "A" and second == "B":
            wins[i] += 1
        elif first == "B" and second == "A":
            wins[j] += 1
    total = max(1, len(candidates) - 1)
    return [w / total for w in wins]
