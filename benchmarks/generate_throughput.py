"""Throughput of `prefkit generate` against the stand-in teacher (a separate process) at fixed latency.

Prints requests/s as a fraction of the ideal bound (concurrency / latency) and the client's CPU seconds
per request (user + system time of the `prefkit generate` process).

    python benchmarks/generate_throughput.py [--tasks 2000] [--concurrency 64] [--latency 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from standin_process import standin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.5)
    args = parser.parse_args()
    with standin("--latency", str(args.latency)) as url:
        with tempfile.TemporaryDirectory() as folder:
            folder = Path(folder)
            with (folder / "tasks.jsonl").open("w") as handle:
                for i in range(args.tasks):
                    handle.write(
                        json.dumps(
                            {
                                "id": f"t{i}",
                                "format": "react",
                                "messages": [
                                    {"role": "system", "content": "Answer questions about the table with SQL."},
                                    {"role": "user", "content": f"Question {i}: how many rows have id above {i}?"},
                                ],
                            }
                        )
                        + "\n"
                    )
            (folder / "recipe.yaml").write_text(
                f"generate:\n  strategy: contrastive\n  teacher:\n    base_url: {url}\n    model: teacher-model\n"
                f"    concurrency: {args.concurrency}\n    timeout: 30\n"
            )
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "prefkit",
                    "generate",
                    str(folder / "tasks.jsonl"),
                    "--recipe",
                    str(folder / "recipe.yaml"),
                    "--out",
                    str(folder / "pairs.jsonl"),
                    "--json",
                    "-q",
                ],
                capture_output=True,
                text=True,
                env=dict(os.environ, OPENAI_API_KEY="bench"),
            )
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            # The same command on no work: interpreter and import start-up, to report CPU per request without it.
            (folder / "empty.jsonl").write_text(
                json.dumps({"id": "x", "messages": [{"role": "user", "content": "q"}]}) + "\n"
            )
            start_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "prefkit",
                    "generate",
                    str(folder / "empty.jsonl"),
                    "--recipe",
                    str(folder / "recipe.yaml"),
                    "--out",
                    str(folder / "pairs.jsonl"),
                    "--limit",
                    "1",
                    "-q",
                ],
                capture_output=True,
                env=dict(os.environ, OPENAI_API_KEY="bench"),
            )
            start_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(done.stderr)
    summary = json.loads(done.stdout)
    requests = summary["requests"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    run_seconds = summary["seconds"]
    bound = args.concurrency / args.latency
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"tasks {args.tasks}, strategy contrastive (2 requests a task), concurrency {args.concurrency}, "
        f"latency {args.latency}s"
    )
    print(
        f"requests {requests} in {run_seconds:.1f}s of generation ({wall:.1f}s wall incl. start-up): "
        f"{requests / run_seconds:.1f} req/s vs ideal bound {bound:.0f} req/s = {requests / run_seconds / bound:.1%}"
    )
    startup = (start_after.ru_utime - start_before.ru_utime) + (start_after.ru_stime - start_before.ru_stime)
    print(
        f"client CPU {cpu:.1f}s = {cpu / requests * 1000:.2f} ms per request with start-up, "
        f"{(cpu - startup) / requests * 1000:.2f} ms without (start-up {startup:.1f}s); pairs {summary['pairs']}"
    )


if __name__ == "__main__":
    main()
