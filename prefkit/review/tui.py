"""`prefkit review tui`: one person reviews pairs in the terminal, one at a time.

The two answers are shown as A and B in an order drawn per pair (and recorded) to cancel position bias.
Every key press is appended to OUT.decisions.jsonl at once, and OUT is rewritten atomically after each answer,
so quitting, a crash or Ctrl-C loses nothing and the next start resumes at the first undecided pair.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefkit.appendlog import AppendLog
from prefkit.jsonl import write_jsonl
from prefkit.outputs import side_file
from prefkit.records import add_meta, turn_text
from prefkit.review.aggregate import Answer, apply_decision

LABELS = {"a": "A better", "b": "B better", "t": "tie", "x": "both bad"}
KEYS = "[a] A better  [b] B better  [t] tie  [x] both bad  [s] skip  [u] undo  [q] quit"


def shown_order(pair_id: str, seed: int = 0) -> str:
    """'chosen-first' or 'rejected-first', fixed for a pair id and seed."""
    return "chosen-first" if random.Random(f"{seed}:{pair_id}").random() < 0.5 else "rejected-first"


def replay(entries: list[dict]) -> dict[str, dict]:
    """The current decision per pair id from the decisions log (undo records take the last one back)."""
    decisions: dict[str, dict] = {}
    history: list[str] = []
    for entry in entries:
        if entry.get("undo"):
            if history:
                decisions.pop(history.pop(), None)
            continue
        decisions[entry["pair_id"]] = entry
        history.append(entry["pair_id"])
    return decisions


def decided_rows(rows: list[dict], decisions: dict[str, dict]) -> tuple[list[dict], list[dict]]:
    """(kept, dropped) pairs as the reviewer decided (see `aggregate.apply_decision`): ties and both-bad
    pairs are dropped, skipped and undecided ones left out of both. Each carries its decision under
    `meta.review`."""
    kept_rows, dropped_rows = [], []
    for row in rows:
        decision = decisions.get(row["id"])
        if not decision or decision["label"] not in LABELS:
            continue
        kept, record = apply_decision(row, decision["order"], [Answer("tui", LABELS[decision["label"]])])
        review = {"mode": "tui", "label": record["label"], "order": record["order"], "decided_at": decision["at"]}
        if kept is not None:
            add_meta(kept, "review", {**review, "swapped": record["swapped"]})
            kept_rows.append(kept)
        else:
            dropped = dict(row, meta=dict(row.get("meta") or {}))
            add_meta(dropped, "review", review)
            dropped_rows.append(dropped)
    return kept_rows, dropped_rows


def reviewed_rows(rows: list[dict], decisions: dict[str, dict]) -> list[dict]:
    """The kept pairs of `decided_rows`."""
    return decided_rows(rows, decisions)[0]


def review(
    rows: list[dict],
    out: Path,
    ask: Callable[[str], str],
    show: Callable[[Any], None],
    seed: int = 0,
    dropped: Path | None = None,
) -> dict[str, int]:
    """Run the loop until every pair is decided or the reviewer quits; returns counts per label. Kept pairs go
    to `out`, ties and both-bad pairs to `dropped` [default OUT.dropped.jsonl]."""
    dropped = dropped or side_file(out, "dropped")
    log = AppendLog(side_file(out, "decisions"), fsync=True)
    entries = list(log.rows)
    decisions = replay(entries)
    try:
        while True:
            pending = [row for row in rows if row["id"] not in decisions]
            if not pending:
                show(f"all {len(rows)} pairs reviewed")
                break
            row = pending[0]
            order = shown_order(row["id"], seed)
            show(_render(row, order, len(rows) - len(pending) + 1, len(rows)))
            key = ask(KEYS + " > ").strip().lower()[:1]
            if key == "q":
                break
            if key == "u":
                entry = {"undo": True, "at": time.time()}
            elif key in LABELS or key == "s":
                entry = {"pair_id": row["id"], "label": key, "order": order, "at": time.time()}
            else:
                show(f"unknown key {key!r}")
                continue
            log.append(entry)
            entries.append(entry)
            decisions = replay(entries)
            write_jsonl(out, reviewed_rows(rows, decisions))
    finally:
        log.close()
    kept, thrown = decided_rows(rows, decisions)
    write_jsonl(out, kept)
    write_jsonl(dropped, thrown)
    counts: dict[str, int] = {}
    for decision in decisions.values():
        counts[decision["label"]] = counts.get(decision["label"], 0) + 1
    return counts


def _render(row: dict, order: str, number: int, total: int):
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    first, second = (row["chosen"], row["rejected"]) if order == "chosen-first" else (row["rejected"], row["chosen"])
    context = [m for m in row["prompt"] if m.get("role") != "system"][-3:]
    prompt = Text("\n\n".join(f"{m['role']}: {(m.get('content') or '')[-600:]}" for m in context))
    return Group(
        Panel(prompt, title=f"pair {number} of {total} — context (last messages)"),
        Panel(Text(turn_text(first)), title="A"),
        Panel(Text(turn_text(second)), title="B"),
    )
