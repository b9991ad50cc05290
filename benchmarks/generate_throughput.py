"""Throughput and client CPU of `prefkit generate` against stand-in teachers (separate processes) at a fixed
latency, with one endpoint and with several behind one job (`teacher.base_url` as a list).

For each endpoint count it prints requests/s as a fraction of the ideal bound (endpoints x concurrency /
latency) and the client's CPU per request (user + system time of the `prefkit generate` process): once
with everything (interpreter start-up, imports, the server check), and once as the marginal cost of a request:
the CPU of a full run minus that of a run with a tenth of the tasks, divided by the requests between them,
which leaves out every fixed cost. With one endpoint the bare `openai` SDK sends the same requests in its own
process (`benchmarks/sdk_client.py`), side by side. `--compare REV` runs the prefkit of another commit (its
`prefkit/` folder from git, first on PYTHONPATH) in the same rounds, alternating with this tree's.

    python benchmarks/generate_throughput.py [--tasks 2000] [--concurrency 64] [--latency 0.5] [--endpoints 1 3]
        [--compare e269f42]
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
from contextlib import ExitStack
from pathlib import Path

from standin_process import standin


def write_tasks(path: Path, count: int) -> None:
    with path.open("w") as handle:
        for i in range(count):
            messages = [
                {"role": "system", "content": "Answer questions about the table with SQL."},
                {"role": "user", "content": f"Question {i}: how many rows have id above {i}?"},
            ]
            handle.write(json.dumps({"id": f"t{i}", "format": "react", "messages": messages}) + "\n")


def generate(folder: Path, tasks: Path, recipe: Path, name: str, code: Path | None = None) -> tuple[dict, float, float]:
    """One `prefkit generate` run in its own process (of the prefkit in `code`, else this tree's): (summary, CPU
    seconds, wall seconds)."""
    env = dict(os.environ, OPENAI_API_KEY="bench")
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "prefkit", "generate", str(tasks), "--recipe", str(recipe)]
        + ["--out", str(folder / f"out-{name}.jsonl"), "--json", "-q"],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(done.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(done.stdout), cpu, wall


def sdk(url: str, count: int, concurrency: int) -> tuple[dict, float]:
    """The bare openai SDK sending `count` requests in its own process: (its report, CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    here = Path(__file__).parent / "sdk_client.py"
    done = subprocess.run(
        [sys.executable, str(here), url, str(count), str(concurrency)], capture_output=True, text=True, check=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return json.loads(done.stdout), (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def checkout(revision: str, into: Path) -> Path:
    """The `prefkit/` folder of a commit of this repository, unpacked under `into`."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", revision, "prefkit"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_row(folder: Path, recipe: Path, name: str, code: Path | None = None) -> dict:
    """A full run and a tenth-size run: the rate and the CPU per request, marginal and with start-up."""
    summary, cpu, wall = generate(folder, folder / "tasks.jsonl", recipe, f"all-{name}", code)
    few, few_cpu, _ = generate(folder, folder / "few.jsonl", recipe, f"few-{name}", code)
    return {
        "rate": summary["requests"] / summary["seconds"],
        "marginal": (cpu - few_cpu) / (summary["requests"] - few["requests"]),
        "with_start": cpu / summary["requests"],
        "summary": summary,
        "wall": wall,
    }


def measure(endpoints: int, args: argparse.Namespace) -> None:
    """Each round: a full run and a tenth-size run of prefkit (and of the bare SDK with one endpoint),
    alternating, each in a fresh output; prints every round and the best."""
    rounds = []
    with ExitStack() as stack, tempfile.TemporaryDirectory() as folder:
        urls = [stack.enter_context(standin("--latency", str(args.latency))) for _ in range(endpoints)]
        folder = Path(folder)
        total = args.tasks * endpoints
        write_tasks(folder / "tasks.jsonl", total)
        write_tasks(folder / "few.jsonl", total // 10)
        recipe = folder / "recipe.yaml"
        recipe.write_text(
            "generate:\n  strategy: contrastive\n  teacher:\n"
            f"    base_url: {json.dumps(urls)}\n    model: teacher-model\n"
            f"    concurrency: {args.concurrency}\n    timeout: 30\n"
        )
        old = checkout(args.compare, Path(stack.enter_context(tempfile.TemporaryDirectory()))) if args.compare else None
        for number in range(args.rounds):
            row = run_row(folder, recipe, str(number))
            if old is not None:
                row["old"] = run_row(folder, recipe, f"old{number}", old)
            if endpoints == 1 and args.sdk:
                bare, bare_cpu = sdk(urls[0], 2 * total, args.concurrency)
                bare_few, bare_few_cpu = sdk(urls[0], 2 * (total // 10), args.concurrency)
                row["sdk_rate"] = bare["requests"] / bare["seconds"]
                row["sdk_marginal"] = (bare_cpu - bare_few_cpu) / (bare["requests"] - bare_few["requests"])
            rounds.append(row)
    bound = endpoints * args.concurrency / args.latency
    for number, row in enumerate(rounds, start=1):
        summary = row["summary"]
        line = (
            f"{endpoints} endpoint(s), round {number}: {summary['requests']} requests in {summary['seconds']:.1f}s "
            f"({row['wall']:.1f}s wall): {row['rate']:.1f} req/s = {row['rate'] / bound:.1%} of the bound "
            f"{bound:.0f} req/s; client CPU {row['marginal'] * 1000:.3f} ms per request (marginal), "
            f"{row['with_start'] * 1000:.3f} ms with start-up"
        )
        if "old" in row:
            before = row["old"]
            line += (
                f"; prefkit {args.compare}: {before['rate'] / bound:.1%} of the bound, "
                f"{before['marginal'] * 1000:.3f} ms (marginal), {before['with_start'] * 1000:.3f} ms with start-up"
            )
        if "sdk_marginal" in row:
            line += (
                f"; the bare openai SDK (chat.completions.create, same requests, no cache or pairs): "
                f"{row['sdk_rate'] / bound:.1%} of the bound, {row['sdk_marginal'] * 1000:.3f} ms: "
                f"prefkit {row['marginal'] / row['sdk_marginal']:.2f}x its CPU per request"
            )
        print(line)
    for endpoint in rounds[-1]["summary"]["endpoints"]:
        print(f"    {endpoint['url']}: {endpoint['requests']} requests, mean latency {endpoint['mean_latency_s']}s")
    fastest = max(row["rate"] for row in rounds) / bound
    leanest, heaviest = (f(row["marginal"] for row in rounds) * 1000 for f in (min, max))
    print(
        f"{endpoints} endpoint(s), best of {len(rounds)}: {fastest:.1%} of the bound, {leanest:.3f} ms CPU per "
        f"request (worst round {heaviest:.3f})"
    )
    if args.compare:
        old_fastest = max(row["old"]["rate"] for row in rounds) / bound
        old_leanest = min(row["old"]["marginal"] for row in rounds) * 1000
        print(
            f"{endpoints} endpoint(s), prefkit {args.compare}, best of {len(rounds)}: {old_fastest:.1%} of the bound, "
            f"{old_leanest:.3f} ms CPU per request; this tree / {args.compare}: CPU per request "
            f"{leanest / old_leanest:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000, help="Tasks per endpoint (2 requests each).")
    parser.add_argument("--concurrency", type=int, default=64, help="Requests in flight per endpoint.")
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--endpoints", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--rounds", type=int, default=2, help="Rounds per endpoint count (the best is shown).")
    parser.add_argument("--no-sdk", dest="sdk", action="store_false", help="Skip the bare openai SDK comparison.")
    parser.add_argument("--compare", metavar="REV", help="Also run the prefkit of this commit, side by side.")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"{args.tasks} tasks per endpoint, strategy contrastive (2 requests a task), concurrency "
        f"{args.concurrency} per endpoint, latency {args.latency}s"
    )
    for endpoints in args.endpoints:
        measure(endpoints, args)


if __name__ == "__main__":
    main()
