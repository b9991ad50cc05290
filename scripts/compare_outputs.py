"""Every command's output, before and after a change: the same commands run with the prefkit of another commit
(its `prefkit/` folder from git, first on PYTHONPATH) and with this tree's, and their files compared byte for
byte.

What runs, offline: the shipped quickstart recipe (tasks -> corrupt pairs -> filter -> auto review -> demo
model -> DPO -> eval); the dbbench recipe's tasks -> generate -> filter against the stand-in teacher; a DBBench
rollout with a replay policy (the gold solutions) on SQLite; and `prefkit eval --env dbbench` of two replay
models. Concurrency is 1 where the order of lines depends on it.

What is set aside, and said: DBBench task ids (a DBBench id is `dbbench-lLINE-HASH`; the hash is compared as
`dbbench-lLINE`, since the id scheme changed once), timings (keys naming seconds, latencies, runtimes or
rates), the order of episodes in a trajectories file (each is appended as it ends, and the grading of one
races the next one's play: they are compared sorted by task and sample), the run state's config hashes
(`state.json`), locks and answer caches.

    python scripts/compare_outputs.py e269f42 [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "pipelines"
DEV = ROOT / "data" / "corpus" / "agentbench" / "dbbench_dev.jsonl"
ID = re.compile(r"dbbench-l(\d+)-[0-9a-f]{8}")
VOLATILE = re.compile(r"seconds|latency|runtime|per_second|_time$|^time$|elapsed|flos", re.I)
SKIPPED = ("state.json", ".lock", ".sqlite", "run.lock")


def checkout(revision: str, into: Path) -> Path:
    """The `prefkit/` folder of `revision`, unpacked under `into`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "prefkit"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def prefkit(code: Path | None, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OPENAI_API_KEY="compare", PYTHONHASHSEED="0")
    if code is not None:
        env["PYTHONPATH"] = str(code)
    done = subprocess.run([sys.executable, "-m", "prefkit", *argv], capture_output=True, text=True, env=env, cwd=cwd)
    if done.returncode:
        raise SystemExit(f"prefkit {' '.join(argv)} ({code or 'this tree'}) failed:\n{done.stderr[-3000:]}")
    return done


def teacher_recipe(name: str, url: str, into: Path) -> Path:
    """A shipped teacher recipe's tasks, generate and filter sections, its paths made absolute, its teacher the
    stand-in (one request at a time, so pairs come in task order)."""
    import yaml

    recipe = yaml.safe_load((PIPELINES / f"{name}.yaml").read_text())
    tasks = dict(recipe["tasks"], limit=24)
    paths = tasks["path"] if isinstance(tasks["path"], list) else [tasks["path"]]
    tasks["path"] = [str((PIPELINES / path).resolve()) for path in paths]
    generate = recipe["generate"]
    generate["teacher"].update(base_url=url, model="teacher-model", concurrency=1)
    copy = into / f"{name}.yaml"
    copy.write_text(yaml.safe_dump({"name": name, "tasks": tasks, "generate": generate, "filter": recipe["filter"]}))
    return copy


def gold_replay(path: Path, ids: list[str]) -> Path:
    """The gold solution of every DBBench dev task, as a replay file under these ids."""
    rows = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    with path.open("w") as handle:
        for task_id, row in zip(ids, rows):
            kind = row["type"][0]
            sql = row["label"][0] if kind in ("INSERT", "UPDATE") else row["sql"]["query"]
            turns = [f"Thought: run it.\nAction: Operation\n```sql\n{sql}\n```",
                     f"Thought: done.\nAction: Answer\nFinal Answer: {json.dumps(row['label'])}"]  # fmt: skip
            handle.write(json.dumps({"task_id": task_id, "turns": turns}) + "\n")
    return path


def play(code: Path | None, out: Path, url: str) -> None:
    """Every command of the comparison, into `out`."""
    out.mkdir(parents=True)
    prefkit(code, "run", str(PIPELINES / "quickstart.yaml"), "--run-dir", str(out / "quickstart"), "-q", cwd=out)
    for name in ("dbbench",):  # alfworld.yaml asks for a contrast the stand-in never writes: no pair to filter
        recipe = teacher_recipe(name, url, out)
        prefkit(code, "run", str(recipe), "--run-dir", str(out / name), "-q", cwd=out)
        recipe.unlink()
    ids = [task["id"] for task in _dbbench_tasks(code, out)]
    replay = gold_replay(out / "replay.jsonl", ids)
    prefkit(code, "rollout", str(DEV), "--policy", f"replay:{replay}", "--engine", "sqlite", "--concurrency", "1",
            "--out", str(out / "trajectories.jsonl"), "-q", cwd=out)  # fmt: skip
    prefkit(code, "eval", "--env", "dbbench", "--engine", "sqlite", "--concurrency", "1", "--tasks", str(DEV),
            "--model", f"a=replay:{replay}", "--model", f"b=replay:{replay}", "--out", str(out / "eval-env"), "-q",
            cwd=out)  # fmt: skip
    replay.unlink()


def _dbbench_tasks(code: Path | None, out: Path) -> list[dict]:
    prefkit(code, "tasks", "--from", "agentbench", str(DEV), "--all-contexts", "--out", str(out / "dev-tasks.jsonl"),
            "-q", cwd=out)  # fmt: skip
    rows = [json.loads(line) for line in (out / "dev-tasks.jsonl").read_text().splitlines()]
    (out / "dev-tasks.jsonl").unlink()
    return rows


def normal(value):
    """A JSON value without timings, with DBBench ids cut to their line."""
    if isinstance(value, dict):
        return {ID.sub(r"dbbench-l\1", k): normal(v) for k, v in value.items() if not VOLATILE.search(k)}
    if isinstance(value, list):
        return [normal(item) for item in value]
    if isinstance(value, str):
        return ID.sub(r"dbbench-l\1", value)
    return value


def contents(path: Path):
    """What is compared of a file: parsed and normalised JSON, else its bytes (ids cut in text files)."""
    data = path.read_bytes()
    try:
        if path.suffix == ".jsonl":
            rows = [normal(json.loads(line)) for line in data.decode().splitlines() if line.strip()]
            if rows and all(isinstance(row, dict) and "sample" in row and "turns" in row for row in rows):
                rows.sort(key=lambda row: (row["task_id"], row["sample"]))  # episodes are appended as they end
            return rows
        if path.suffix == ".json":
            return normal(json.loads(data))
        if path.suffix in (".md", ".txt", ".yaml"):
            return ID.sub(r"dbbench-l\1", data.decode())
    except (UnicodeDecodeError, ValueError):
        pass
    return data


def compare(before: Path, after: Path) -> list[str]:
    """The files that differ, or exist on one side only."""
    names = {str(p.relative_to(side)) for side in (before, after) for p in side.rglob("*") if p.is_file()}
    problems = []
    for name in sorted(names):
        if any(name.endswith(skip) or Path(name).name == skip for skip in SKIPPED):
            continue
        a, b = before / name, after / name
        if not a.exists() or not b.exists():
            problems.append(f"{name}: only {'after' if b.exists() else 'before'}")
        elif contents(a) != contents(b):
            problems.append(f"{name}: differs")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revision", help="The commit to compare this tree with.")
    parser.add_argument("--keep", type=Path, help="Keep both sides' outputs in this folder.")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from standin_process import standin

    with tempfile.TemporaryDirectory() as scratch, standin() as url:
        scratch = Path(args.keep or scratch)
        scratch.mkdir(parents=True, exist_ok=True)
        old = checkout(args.revision, Path(tempfile.mkdtemp(dir=scratch)))
        for side, code in (("before", old), ("after", None)):
            # both sides write into the same folder (paths are recorded in reports and training arguments)
            shutil.rmtree(scratch / side, ignore_errors=True)
            shutil.rmtree(scratch / "run", ignore_errors=True)
            play(code, scratch / "run", url)
            (scratch / "run").rename(scratch / side)
        files = sum(1 for p in (scratch / "after").rglob("*") if p.is_file())
        problems = compare(scratch / "before", scratch / "after")
    print(f"{files} files written by this tree, compared with {args.revision}: {len(problems)} differ")
    for problem in problems:
        print(f"  {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
