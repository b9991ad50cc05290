"""The replay policy: turns written elsewhere (`{"task_id": ..., "turns": ["...", ...]}` a line, optionally
with `"sample"`), graded here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prefkit.errors import InputError
from prefkit.jsonl import iter_jsonl
from prefkit.policies.base import Reply, TurnRequest
from prefkit.policies.spec import PolicySpec

REPLAY_ENDED = "the replay file has no further turn for this episode"
UNKNOWN_TASK = (
    "task {task_id!r} is not in the tasks file (written for another task file, or with task ids from before "
    "prefkit 0.2, which hashed prefkit's prompt text: take the ids from a rollout of this file)"
)


class ReplayPolicy:
    """Turns recorded elsewhere, one list per (task, sample); the file is read and checked at once."""

    batch_size = 1

    def __init__(self, spec: PolicySpec, task_ids: list[str]):
        path = Path(spec.target)
        if not path.exists():
            raise InputError("replay file not found; check the path", str(path))
        self.path = path
        self.turns: dict[tuple[str, int], list] = {}
        known = set(task_ids)
        for line, row in iter_jsonl(path):
            task_id, turns, sample = row.get("task_id"), row.get("turns"), row.get("sample", 0)
            if not isinstance(task_id, str) or not isinstance(turns, list):
                raise InputError('expected {"task_id": ..., "turns": [...]}', str(path), line)
            if task_id not in known:
                raise InputError(UNKNOWN_TASK.format(task_id=task_id), str(path), line)
            if not isinstance(sample, int) or isinstance(sample, bool) or (task_id, sample) in self.turns:
                problem = f"task {task_id!r} sample {sample!r} is given twice or is not a number"
                raise InputError(problem, str(path), line)
            if not all(isinstance(t, str) or (isinstance(t, dict) and t.get("role") == "assistant") for t in turns):
                raise InputError("each turn is a string or an assistant message", str(path), line)
            self.turns[(task_id, sample)] = turns
        self.label = spec.label

    def episodes(self, task_ids: list[str], samples: int) -> list[tuple[str, int]]:
        """Every recorded (task, sample) of these tasks, whatever --samples says: the file decides."""
        order = {task_id: index for index, task_id in enumerate(task_ids)}
        return sorted((key for key in self.turns if key[0] in order), key=lambda key: (order[key[0]], key[1]))

    async def __aenter__(self) -> ReplayPolicy:
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    async def reply(self, requests: Sequence[TurnRequest]) -> list[Reply]:
        """The recorded turn of each request, or the end of the recording."""
        replies = []
        for request in requests:
            turns = self.turns[(request.task_id, request.sample)]
            if request.turn >= len(turns):
                replies.append(Reply(None, stop="unknown", error=REPLAY_ENDED))
                continue
            recorded = turns[request.turn]
            replies.append(
                Reply(recorded if isinstance(recorded, dict) else {"role": "assistant", "content": recorded})
            )
        return replies
