"""Throughput of `prefkit rollout` on DBBench against the stand-in agent teacher (a separate process) at fixed
latency, on both engines side by side.

Prints episodes/s as a fraction of the bound concurrency / (turns per episode x latency), and the environment's
own time per step (set-up, statement, grading and drop, from the trajectories' timings).

    python benchmarks/rollout_throughput.py [--samples 8] [--concurrency 64] [--latency 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from standin_process import standin

DEV = Path(__file__).resolve().parents[1] / "data" / "corpus" / "agentbench" / "dbbench_dev.jsonl"


def measure(engine: str, url: str, args: argparse.Namespace, folder: Path) -> dict:
    out = folder / f"{engine}.jsonl"
    command = [sys.executable, "-m", "prefkit", "rollout", str(DEV), "--engine", engine,
               "--policy", f"openai:teacher-model@{url}", "--samples", str(args.samples), "--temperature", "0.7",
               "--concurrency", str(args.concurrency), "--out", str(out), "--json", "-q"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, OPENAI_API_KEY="bench"))
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(done.stderr)
    summary = json.loads(done.stdout)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    turns = sum(len([t for t in r["turns"] if "accepted" in t]) for r in records)
    env_seconds = sum(r["seconds"]["env"] for r in records)
    per_episode = turns / len(records)
    bound = args.concurrency / (per_episode * args.latency)
    rate = len(records) / summary["seconds"]
    playing = len(records) / summary["play_seconds"]
    return {"engine": engine, "episodes": len(records), "turns_per_episode": per_episode, "rate": rate,
            "bound": bound, "fraction": rate / bound, "playing": playing, "env_ms_per_step": 1000 * env_seconds / turns,
            "seconds": summary["seconds"], "wall": wall, "success": summary["success_rate"],
            "start": summary["seconds"] - summary["play_seconds"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=8, help="episodes per task (60 tasks)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--engines", default="sqlite,mariadb")
    args = parser.parse_args()
    flags = ("--latency", str(args.latency), "--dbbench-tasks", str(DEV), "--correct-share", "0.5")
    with standin(*flags) as url, tempfile.TemporaryDirectory() as folder:
        results = [measure(engine, url, args, Path(folder)) for engine in args.engines.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"DBBench dev (60 tasks) x {args.samples} samples, concurrency {args.concurrency}, latency {args.latency}s")
    for r in results:
        print(
            f"{r['engine']:8} {r['episodes']} episodes, {r['turns_per_episode']:.2f} turns each, "
            f"{r['rate']:.1f} episodes/s vs bound {r['bound']:.1f} = {r['fraction']:.1%} of the whole run "
            f"({r['playing'] / r['bound']:.1%} while playing, without the {r['start']:.1f}s of opening and closing "
            f"the environment); environment {r['env_ms_per_step']:.2f} ms per step; {r['seconds']:.1f}s "
            f"({r['wall']:.1f}s wall incl. the interpreter's start); success {r['success']:.3f}"
        )


if __name__ == "__main__":
    main()
