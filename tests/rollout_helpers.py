"""What the rollout and eval tests share: AgentBench's DBBench dev set and a replay file of its gold solutions."""

from __future__ import annotations

import json

from prefkit.tasks import load_tasks
from tests.conftest import CORPUS

DEV = CORPUS / "agentbench/dbbench_dev.jsonl"


def gold_replay(path, tasks=None):
    rows = [json.loads(line) for line in DEV.read_text().splitlines()]
    with open(path, "w") as handle:
        for task, row in zip(load_tasks(DEV, "agentbench"), rows):
            if tasks is not None and task["id"] not in tasks:
                continue
            kind = row["type"][0]
            sql = row["label"][0] if kind in ("INSERT", "UPDATE") else row["sql"]["query"]
            turns = [
                f"Thought: run it.\nAction: Operation\n```sql\n{sql}\n```",
                f"Thought: done.\nAction: Answer\nFinal Answer: {json.dumps(row['label'])}",
            ]
            handle.write(json.dumps({"task_id": task["id"], "turns": turns}) + "\n")
    return path
