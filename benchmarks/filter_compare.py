"""This tree's rule filters side by side with another git revision's, in alternating fresh processes.

    python benchmarks/filter_compare.py REV [--size 100000] [--rounds 2] [--pairs FILE]

Both trees filter the same pairs (this tree's generator from filter_throughput.py, or FILE); each process
reports its best of 3 runs and its peak memory. Prints every process's figures and the ratio of the bests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Runs in the tree under test: its prefkit, this tree's pair generator and measurement.
CHILD = """
import json, resource, sys
tree, benchmarks, size, pairs = sys.argv[1:5]
sys.path[:0] = [tree, benchmarks]
import prefkit
assert prefkit.__file__.startswith(tree), prefkit.__file__
from filter_throughput import make_pairs, rule_throughput
if pairs:
    rows = [json.loads(line) for line in open(pairs, encoding="utf-8") if line.strip()]
else:
    rows = make_pairs(int(size))
rates = rule_throughput(rows, 3)
print(json.dumps({"pairs": len(rows), "best": rates[0], "slowest": rates[-1],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(tree: Path, size: int, pairs: Path | None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), str(HERE), str(size), str(pairs or "")],
        cwd=tree,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"{tree}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="Git revision to compare with (e.g. a commit before a change).")
    parser.add_argument("--size", type=int, default=100_000, help="Synthetic pairs (ignored with --pairs).")
    parser.add_argument("--rounds", type=int, default=2, help="Alternating rounds, one process per tree each.")
    parser.add_argument("--pairs", type=Path, help="Filter these pairs (JSONL) instead of synthetic ones.")
    args = parser.parse_args()
    pairs = args.pairs.resolve() if args.pairs else None
    if pairs and not pairs.is_file():
        raise SystemExit(f"{args.pairs}: no such file")
    known = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "-q", f"{args.rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if known.returncode:
        raise SystemExit(f"{args.rev}: not a commit of this repository (try `git log --oneline`)")
    with tempfile.TemporaryDirectory() as folder:
        other = Path(folder) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(other), args.rev], check=True)
        try:
            best = {args.rev: 0.0, "this tree": 0.0}
            for _ in range(args.rounds):
                for label, tree in ((args.rev, other), ("this tree", ROOT)):
                    result = measure(tree, args.size, pairs)
                    best[label] = max(best[label], result["best"])
                    print(
                        f"{label:>12}: {result['pairs']:,} pairs, {result['best']:,.0f} pairs/s best of 3 "
                        f"(slowest {result['slowest']:,.0f}), peak RSS {result['peak_rss_mb']:.0f} MB"
                    )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], check=False)
    print(f"this tree / {args.rev}: {best['this tree'] / best[args.rev]:.2f}x")


if __name__ == "__main__":
    main()
