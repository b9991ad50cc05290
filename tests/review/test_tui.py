"""`prefkit review tui`: A/B order recorded, B-better swaps, undo, skip, quit and resume, saved every answer."""

import json
import subprocess
import sys

from prefkit.review.tui import replay, review, shown_order
from tests.filters.helpers import pair


def pairs(n=4):
    rows = [
        pair(chosen=f"Thought: look.\nAction: Operation\n```sql\nSELECT {i};\n```", rejected=f"Sure! {i}")
        for i in range(n)
    ]
    for i, row in enumerate(rows):
        row["id"] = f"p{i}"
    return rows


def scripted(keys):
    keys = iter(keys)
    return lambda prompt: next(keys, "q")


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_answers_map_back_through_the_shown_order(tmp_path):
    rows = pairs(4)
    out = tmp_path / "reviewed.jsonl"
    counts = review(rows, out, scripted(["a", "b", "t", "x"]), lambda _: None)
    assert counts == {"a": 1, "b": 1, "t": 1, "x": 1}
    kept = {row["id"]: row for row in lines(out)}
    assert set(kept) == {"p0", "p1"}  # tie and both-bad are left out
    for pid, label in (("p0", "a"), ("p1", "b")):
        original = rows[int(pid[1])]
        winner_first = label == "a"
        chosen_first = shown_order(pid) == "chosen-first"
        expected = original["chosen"] if winner_first == chosen_first else original["rejected"]
        assert kept[pid]["chosen"] == expected
        assert kept[pid]["meta"]["review"]["order"] == shown_order(pid)
        assert kept[pid]["meta"]["format"] == "react"  # other meta keys kept


def test_quit_then_resume_and_undo(tmp_path):
    rows = pairs(3)
    out = tmp_path / "reviewed.jsonl"
    review(rows, out, scripted(["a", "q"]), lambda _: None)
    assert [row["id"] for row in lines(out)] == ["p0"]  # saved before quitting
    shown = []
    review(rows, out, scripted(["s", "u", "b", "a"]), shown.append)
    decisions = replay(lines(tmp_path / "reviewed.decisions.jsonl"))
    assert {k: v["label"] for k, v in decisions.items()} == {"p0": "a", "p1": "b", "p2": "a"}
    assert [row["id"] for row in lines(out)] == ["p0", "p1", "p2"]
    assert shown[-1] == "all 3 pairs reviewed"


def test_cli_reads_keys_from_stdin(tmp_path):
    src = tmp_path / "curated.jsonl"
    src.write_text("".join(json.dumps(row) + "\n" for row in pairs(2)))
    done = subprocess.run(
        [sys.executable, "-m", "prefkit", "review", "tui", str(src), "--out", str(tmp_path / "r.jsonl")],
        input="a\nzz\nb\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "unknown key 'z'" in done.stdout + done.stderr
    assert len(lines(tmp_path / "r.jsonl")) == 2
