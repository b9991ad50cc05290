"""`prefkit run` with `review: {mode: argilla}`: push once, stop until reviewers are done, then pull."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from prefkit.cli import cli
from prefkit.errors import ReviewPending
from prefkit.jsonl import read_jsonl

pytestmark = pytest.mark.slow
CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "react" / "alfworld.json"


def _recipe(tmp_path: Path, url: str, dataset: str, **review) -> Path:
    data = {
        "name": "argilla-run",
        "tasks": {"source": "alfworld-react", "path": str(CORPUS), "limit": 8, "eval_share": 0.0},
        "generate": {"strategy": "corrupt"},
        "filter": {"dedup": {"enabled": False}},
        "review": {"mode": "argilla", "dataset": dataset, "api_url": url, **review},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _answer_everything(owner, dataset_name: str, label: str = "b_better", only: set | None = None) -> int:
    dataset = owner.datasets(name=dataset_name, workspace="prefkit")
    items = [
        {"record_id": str(record._server_id), "status": "submitted", "values": {"preference": {"value": label}}}
        for record in dataset.records(with_responses=False)
        if only is None or record.id in only
    ]
    owner.api.http_client.post("/api/v1/me/responses/bulk", json={"items": items}).raise_for_status()
    return len(items)


def test_run_pushes_once_stops_until_reviewed_then_pulls(connection, owner, pairs, tmp_path, monkeypatch):
    from prefkit.review.argilla_queue import push

    monkeypatch.setenv("ARGILLA_API_KEY", connection.api_key)
    path, run_dir = _recipe(tmp_path, connection.api_url, "run-stop"), tmp_path / "run"
    push(pairs[300:302], connection, "run-stop")  # an earlier run's pairs, never answered: not this run's
    result = CliRunner().invoke(cli, ["run", str(path), "--run-dir", str(run_dir), "-q"])
    assert result.exit_code == ReviewPending.exit_code, result.output
    assert "0 of" in result.stderr and "run the same command again" in result.stderr
    curated = read_jsonl(run_dir / "curated.jsonl")
    assert not (run_dir / "reviewed.jsonl").exists()
    pushed_at = json.loads((run_dir / "reviewed.push.json").read_text())
    assert pushed_at["pairs"] == len(curated) > 0

    result = CliRunner().invoke(cli, ["run", str(path), "--run-dir", str(run_dir), "-q"])
    assert result.exit_code == ReviewPending.exit_code  # still nobody answered; no second push
    assert json.loads((run_dir / "reviewed.push.json").read_text()) == pushed_at

    assert _answer_everything(owner, "run-stop", only={row["id"] for row in curated}) == len(curated)
    result = CliRunner().invoke(cli, ["run", str(path), "--run-dir", str(run_dir), "-q"])
    assert result.exit_code == 0, result.output
    reviewed = read_jsonl(run_dir / "reviewed.jsonl")
    assert len(reviewed) == len(curated)
    by_id = {row["id"]: row for row in curated}
    for row in reviewed:
        original, review = by_id[row["id"]], row["meta"]["review"]
        assert review["mode"] == "argilla" and review["label"] == "B better"
        # "B better" means: the chosen turn is whatever was shown as B.
        shown_b = original["rejected"] if review["order"] == "chosen-first" else original["chosen"]
        assert row["chosen"] == shown_b
    assert connection.api_key not in (run_dir / "state.json").read_text()
    assert connection.api_key not in (run_dir / "reviewed.push.json").read_text()


def test_run_can_wait_for_reviewers(connection, owner, tmp_path, monkeypatch):
    from prefkit.recipe import Recipe
    from prefkit.run import Runner

    monkeypatch.setenv("ARGILLA_API_KEY", connection.api_key)
    path = _recipe(tmp_path, connection.api_url, "run-wait", wait=True, poll_seconds=0.2)
    messages: list[str] = []
    runner = Runner(Recipe.from_yaml(path), path, tmp_path / "run", log=messages.append)
    done = threading.Event()

    def reviewers():
        while not any("waiting for reviewers" in m for m in messages):
            if done.wait(0.1):
                return
        _answer_everything(owner, "run-wait", label="a_better")

    helper = threading.Thread(target=reviewers)
    helper.start()
    try:
        results = {r.stage: r for r in runner.run()}
    finally:
        done.set()
        helper.join()
    assert results["review"].status == "done" and results["review"].counts["pairs"] > 0
    assert all(row["meta"]["review"]["label"] == "A better" for row in read_jsonl(tmp_path / "run" / "reviewed.jsonl"))
