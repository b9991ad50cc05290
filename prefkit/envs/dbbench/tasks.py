"""AgentBench's DBBench task file as prefkit names and reads it: task ids, and the first-turn tasks
`prefkit tasks --from agentbench FILE.jsonl` makes of it.

A task's id depends on the benchmark task alone: its line (or item) in the file and the content of the row
(question, table, type, label), never on prefkit's prompt wording, so editing a prompt renames nothing and
resume, replay files and the pairing of episodes across models keep working.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prefkit.envs.dbbench import NAME
from prefkit.errors import InputError
from prefkit.jsonl import iter_jsonl
from prefkit.records import content_hash

# The prompt of first-turn tasks (the environment itself opens episodes with AgentBench's own instruction).
SYSTEM_PROMPT = (
    "I will ask you a question, then you should help me operate a MySQL database with SQL to answer the question.\n"
    "Explain the problem and your reasoning briefly, then choose to operate or to answer.\n"
    "To operate, write:\nAction: Operation\n```sql\nSELECT * FROM table WHERE condition;\n```\n"
    'To answer, write:\nAction: Answer\nFinal Answer: ["ANSWER1", "ANSWER2", ...]\n'
    "Only one action a turn. Any other pattern fails immediately."
)


def task_id(line: int, row: dict) -> str:
    """The id of the task on `line` (or item) of a DBBench file: its position and a hash of the row itself."""
    return f"{NAME}-l{line}-{content_hash(row, length=8)}"


def first_turn_tasks(path: Path) -> Iterator[dict]:
    """DBBench tasks have no agent turns: one first-turn task each, with the gold SQL as reference action."""
    for line, row in iter_jsonl(path):
        yield first_turn_task(path, line, row)


def first_turn_task(path: Path, line: int, row: dict) -> dict:
    """The first-turn task of one line of AgentBench's DBBench JSONL (with the id `prefkit rollout` gives it)."""
    if not isinstance(row.get("description"), str) or not isinstance(row.get("table"), dict):
        raise InputError("expected a DBBench task with 'description' and 'table'", str(path), line)
    table = row["table"]
    columns = [column["name"] for column in table.get("table_info", {}).get("columns", [])]
    question = (
        f"{row['description']}\n{row.get('add_description') or ''}\n"
        f"Table: {table.get('table_name', '')}; columns: {', '.join(columns)}"
    ).strip()
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
    sql = (row.get("sql") or {}).get("query") or (
        row["label"][0] if row.get("type") in (["INSERT"], ["UPDATE"], ["DELETE"]) else None
    )
    meta = {"source": path.name, "label": row.get("label"), "type": row.get("type")}
    if sql:
        reference = (
            f"Thought: I will query the table to find the answer.\nAction: Operation\n```sql\n{sql.strip()}\n```"
        )
        meta["reference"] = {"role": "assistant", "content": reference}
        meta["reference_source"] = "gold_sql"
    return {"id": task_id(line, row), "messages": messages, "format": "react", "domain": NAME, "meta": meta}
