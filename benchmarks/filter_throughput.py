"""Throughput of `prefkit filter` on realistic synthetic pairs.

Prints: rule-filter pairs/s at 10k..100k pairs (in process, one core), how time grows with size, and
the whole CLI run on 100k pairs with dedup (wall seconds, peak memory of the child process).

    python benchmarks/filter_throughput.py [--sizes 10000,20000,50000,100000]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prefkit.records import ensure_pair_id

WORDS = (
    "table row column value query filter join count answer search drawer cabinet fridge apple mug find "
    "take open check result list first second need next then look match name id year total"
).split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_pair(rng: random.Random, i: int) -> dict:
    """One pair in one of four formats; about 80% with a good chosen, the rest with a flawed one."""
    kind = i % 4
    thought = " ".join(sentence(rng, rng.randint(6, 14)) for _ in range(rng.randint(1, 3)))
    question = f"Question {i}: {sentence(rng, 18)} {sentence(rng, 12)}"
    prompt = [
        {"role": "system", "content": "You are an agent. Follow the action format exactly. " * 4},
        {"role": "user", "content": question},
    ]
    if kind == 0:
        fmt = "react"
        good = f"Thought: {thought}\nAction: Operation\n```sql\nSELECT c{i % 97} FROM t{i} WHERE id = {i};\n```"
    elif kind == 1:
        fmt = "react"
        good = f'Thought: {thought}\nAction: Answer\nFinal Answer: ["{rng.choice(WORDS)} {i}"]'
    elif kind == 2:
        fmt = "alfworld"
        good = f"THOUGHT: {thought}\nACTION: go to {rng.choice(['cabinet', 'drawer', 'shelf'])} {i % 20 + 1}"
    else:
        fmt = "codeact"
        good = f"<thought>{thought}</thought>\n<execute>print(sum(range({i})))</execute>"
    bad = f"Certainly! I'd be happy to help. {thought} {thought} I hope this helps!"
    chosen, rejected = (good, bad) if rng.random() < 0.8 else (bad, good)
    row = {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "meta": {"format": fmt, "domain": "bench"},
    }
    return ensure_pair_id(row)  # pairs from `prefkit generate` carry their id


def make_pairs(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = [make_pair(rng, i) for i in range(n)]
    for index in range(0, n, 50):  # 2% near-duplicates
        twin = copy.deepcopy(rows[index])
        twin["rejected"][0]["content"] = twin["rejected"][0]["content"].replace("Certainly!", "certainly,")
        twin["id"] = None
        rows[(index + 25) % n] = ensure_pair_id(twin)
    return rows


def rule_throughput(rows: list[dict], repeats: int = 3) -> list[float]:
    """Pairs per second of the rule filters (no dedup) over `repeats` runs on fresh copies, fastest first.
    On a shared machine a run is only ever slowed down by others, so the fastest is the code's own speed."""
    from prefkit.filters.pipeline import FilterConfig, run_filters

    config = FilterConfig.model_validate({"dedup": {"enabled": False}})
    rates = []
    for _ in range(repeats):
        data = copy.deepcopy(rows)
        started = time.process_time()
        run_filters(data, config)
        rates.append(len(rows) / (time.process_time() - started))
    return sorted(rates, reverse=True)


def cli_run(rows: list[dict], folder: Path) -> dict:
    src = folder / "in.jsonl"
    with src.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefkit",
            "filter",
            str(src),
            "--out",
            str(folder / "kept.jsonl"),
            "--report",
            str(folder / "report.json"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(done.stderr)
    report = json.loads((folder / "report.json").read_text())
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_rss_mb": after.ru_maxrss / 1024,
        "report": report,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,20000,50000,100000")
    parser.add_argument("--repeats", type=int, default=3, help="Runs per size; the fastest is reported.")
    parser.add_argument(
        "--pairs",
        type=Path,
        help="Also measure the rule filters on these pairs (JSONL), e.g. "
        "`prefkit generate --strategy corrupt` output on real tasks.",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    all_rows = make_pairs(max(sizes))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"\nrule filters (format, verbosity, pair; no dedup), in process, CPU time, best of {args.repeats}:")
    base = None
    for size in sizes:
        rates = rule_throughput(all_rows[:size], args.repeats)
        seconds = size / rates[0]
        base = base or (seconds / size)
        print(
            f"  {size:>7} pairs: {rates[0]:>9,.0f} pairs/s  {seconds:6.2f} s  time per pair vs {sizes[0]}: "
            f"{seconds / size / base:.2f}x  (slowest run: {rates[-1]:,.0f} pairs/s)"
        )
    if args.pairs:
        from prefkit.jsonl import read_jsonl

        given = read_jsonl(args.pairs)
        rates = rule_throughput(given, args.repeats)
        print(
            f"  {len(given):>7} pairs of {args.pairs}: {rates[0]:>9,.0f} pairs/s  "
            f"(slowest run: {rates[-1]:,.0f} pairs/s)"
        )
    with tempfile.TemporaryDirectory() as folder:
        result = cli_run(all_rows, Path(folder))
    report = result["report"]
    print(f"\nprefkit filter CLI, {report['total']} pairs, all rule filters + dedup, read + write:")
    print(
        f"  wall {result['wall_s']:.1f} s, CPU {result['cpu_s']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB, "
        f"{report['total'] / result['wall_s']:,.0f} pairs/s end to end"
    )
    print(f"  stages: {report['seconds']}; kept {report['kept']}, dropped {report['dropped']}")
    print(f"  reasons: {report['reasons']}")


if __name__ == "__main__":
    main()
