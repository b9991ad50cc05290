"""Scripted agents the stand-in server answers with: a turn-level responder (disciplined or chatty, by the
system prompt) and a DBBench player that gets a share of tasks right and makes typical mistakes on the rest."""

from __future__ import annotations

import hashlib
import json

DISCIPLINED_MARK = "exactly one action"


def default_responder(body: dict, index: int) -> str:
    """A disciplined turn when the system prompt asks for one, a chatty one otherwise (format from the prompt)."""
    system = " ".join(m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "system").lower()
    last = next((m.get("content") or "" for m in reversed(body.get("messages", [])) if m.get("role") != "system"), "")
    topic = " ".join(last.split()[:6]) or "the task"
    disciplined = DISCIPLINED_MARK in system
    if "alfworld" in system or "household" in system:
        turn = (
            f"THOUGHT: I should look for it next.\nACTION: go to cabinet {index + 1}"
            if disciplined
            else f"Certainly! I'd be happy to help with {topic}. I think I should probably go to the cabinet. "
            "I hope this helps!"
        )
    else:
        turn = (
            f"Thought: I need the rows about {topic}.\nAction: Operation\n"
            f"```sql\nSELECT * FROM t LIMIT {index + 1};\n```"
            if disciplined
            else f"Certainly! Great question about {topic}. Let me think. Let me think. I hope this helps!"
        )
    return turn


class DBBenchAgent:
    """An agent mode: plays AgentBench DBBench episodes of the task file it was given. A share of tasks
    (`correct_share`, chosen by a hash of the question, so every run agrees) gets the gold SQL and answer; the
    others one of the typical mistakes: a wrong column, a missing quote, chatty text, no action at all."""

    MISTAKES = ("wrong_column", "missing_quote", "chatty", "no_action")

    def __init__(self, tasks_path, correct_share: float = 0.5, seed: int = 0):
        self.correct_share, self.seed = correct_share, seed
        self.entries: dict[str, dict] = {}
        with open(tasks_path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    entry = json.loads(line)
                    self.entries[entry["description"] + "\n" + entry.get("add_description", "")] = entry

    def plan(self, question: str) -> str:
        """ "correct" or the mistake this task gets."""
        roll = int(hashlib.sha256(f"{self.seed}:{question}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        if roll < self.correct_share:
            return "correct"
        return self.MISTAKES[int(roll * 1000) % len(self.MISTAKES)]

    def __call__(self, body: dict, index: int) -> str:
        messages = body.get("messages", [])
        users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
        entry = next((self.entries[text] for text in users if text in self.entries), None)
        if entry is None:
            return default_responder(body, index)
        turn = sum(1 for m in messages if m.get("role") == "assistant") - 1  # after the injected "Ok."
        plan = self.plan(entry["description"] + "\n" + entry.get("add_description", ""))
        table = entry["table"]["table_name"]
        kind = entry["type"][0]
        if plan == "chatty":
            return "Certainly! I'd be happy to help with that. Let me look at the table and get back to you."
        if plan == "no_action":
            return f"I think the answer is {entry['label'][0] if kind not in ('INSERT', 'UPDATE') else 'done'}."
        if turn == 0:
            if plan == "correct":
                sql = entry["label"][0] if kind in ("INSERT", "UPDATE", "DELETE") else f"SELECT * FROM `{table}`"
            elif plan == "wrong_column":
                sql = f"SELECT `no_such_column` FROM `{table}`"
            else:
                sql = f"SELECT * FROM `{table}` WHERE `{entry['table']['table_info']['columns'][0]['name']}` = 'x"
            return f"Thought: I will look at the table.\nAction: Operation\n```sql\n{sql}\n```"
        final = entry["label"] if plan == "correct" and kind not in ("INSERT", "UPDATE") else ["unknown"]
        return f"Thought: I have what I need.\nAction: Answer\nFinal Answer: {json.dumps(final)}"
