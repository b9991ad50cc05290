"""Push and pull of 10,000 pairs through a local Argilla server (`prefkit review serve`'s stack).

Prints: push, re-push (update) and pull wall seconds for N pairs with every pair answered, and, side by
side in the same run, a push of a smaller slice to the server with and without `annotation/launch.py`'s two
speed-ups (a cached settings validator; no webhook event built when no webhook exists).

    python benchmarks/review_roundtrip.py [--pairs 10000] [--compare 2000]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from filter_throughput import make_pairs  # noqa: E402 - realistic pairs in four formats

from prefkit.review.argilla_queue import Connection, pull, push  # noqa: E402
from prefkit.review.serve import ArgillaServer, free_port  # noqa: E402


def timed(label: str, function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    seconds = time.perf_counter() - started
    print(f"{label:<46} {seconds:8.1f} s")
    return result, seconds


def answer_all(connection: Connection, dataset_name: str, rows: list[dict]) -> int:
    """Give every record a submitted answer from the owner, through the same bulk upsert `push` uses
    (Argilla's one-response-at-a-time endpoints take about 35 ms a response here: a reviewer's pace, not a
    benchmark's)."""
    import argilla as rg

    from prefkit.review.argilla_queue import _quiet_sdk, to_record
    from prefkit.review.auto import RuleJudge

    client = rg.Argilla(api_url=connection.api_url, api_key=connection.api_key, timeout=120)
    dataset = client.datasets(name=dataset_name, workspace="prefkit")
    judge, labels, me = RuleJudge(), ["a_better", "b_better", "tie", "both_bad"], client.me.id
    for start in range(0, len(rows), 500):
        records = []
        for i, row in enumerate(rows[start : start + 500]):
            record = to_record(row, judge)
            record.responses.add(rg.Response("preference", labels[(start + i) % 4], user_id=me, status="submitted"))
            records.append(record)
        with _quiet_sdk():
            dataset.records.log(records, batch_size=500)
    return len(rows)


def search_ms(connection: Connection, dataset_name: str) -> dict[str, float]:
    """Median milliseconds of the searches a reviewer's browser makes, on the SQL-backed search engine."""
    import statistics

    import argilla as rg

    client = rg.Argilla(api_url=connection.api_url, api_key=connection.api_key, timeout=120)
    dataset = client.datasets(name=dataset_name, workspace="prefkit")
    http, base = client.api.http_client, f"/api/v1/datasets/{dataset.id}"
    pending = {
        "filters": {
            "and": [{"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["pending"]}]
        }
    }
    calls = {
        "next pending record for me (the UI's query)": (
            "post",
            f"/api/v1/me/datasets/{dataset.id}/records/search",
            pending,
        ),
        "text query 'cabinet'": ("post", f"{base}/records/search", {"query": {"text": {"q": "cabinet"}}}),
        "dataset progress": ("get", f"{base}/progress", None),
    }
    out = {}
    for label, (method, path, body) in calls.items():
        times = []
        for _ in range(5):
            started = time.perf_counter()
            response = http.post(path, json=body, params={"limit": 1}) if method == "post" else http.get(path)
            response.raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
        out[label] = statistics.median(times)
        print(f"{label:<46} {out[label]:8.0f} ms (median of 5)")
    return out


def push_slice(rows: list[dict], stock: bool, root: Path) -> float:
    with ArgillaServer(root / ("stock" if stock else "prefkit"), port=free_port(), stock=stock) as server:
        connection = Connection(server.url, server.credentials["api_key"])
        label = f"push {len(rows):,} ({'stock argilla-server' if stock else 'with launch.py speed-ups'})"
        return timed(label, push, rows, connection, "compare")[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--compare", type=int, default=2_000, help="Pairs in the side-by-side push (0: skip).")
    args = parser.parse_args()
    rows = list({row["id"]: row for row in make_pairs(args.pairs + args.pairs // 50)}.values())[: args.pairs]
    print(f"machine: {platform.machine()}, {platform.python_version()}, {sys.platform}; pairs: {len(rows):,}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with ArgillaServer(root / "main", port=free_port()) as server:
            connection = Connection(server.url, server.credentials["api_key"])
            _, push_s = timed(f"push {len(rows):,} (new dataset)", push, rows, connection, "roundtrip")
            search_ms(connection, "roundtrip")
            _, repush_s = timed(f"push {len(rows):,} again (updates)", push, rows, connection, "roundtrip")
            timed(f"answer {len(rows):,} (bulk upsert, not prefkit)", answer_all, connection, "roundtrip", rows)
            result, pull_s = timed(f"pull {len(rows):,} (all answered)", pull, connection, "roundtrip")
            print(
                f"pulled: {len(result.kept):,} kept, {len(result.dropped):,} dropped; "
                f"{len(rows) / push_s:,.0f} pairs/s push, {len(rows) / pull_s:,.0f} pairs/s pull"
            )
        if args.compare:
            subset = rows[: args.compare]
            fast = push_slice(subset, stock=False, root=root)
            slow = push_slice(subset, stock=True, root=root)
            print(f"stock / with speed-ups: {slow / fast:.2f}x the time for the same {len(subset):,} pairs")


if __name__ == "__main__":
    main()
