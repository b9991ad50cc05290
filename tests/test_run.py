"""`prefkit run`: stages in order, unchanged stages skipped, changed ones redone, errors before any work."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from prefkit.cli import cli
from prefkit.errors import PrefkitError
from prefkit.recipe import Recipe
from prefkit.run import Runner

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "corpus" / "react" / "alfworld.json"


def recipe(tmp_path, **changes):
    data = {"name": "t", "tasks": {"source": "alfworld-react", "path": str(CORPUS), "limit": 60, "eval_share": 0.0},
            "generate": {"strategy": "corrupt"}, "filter": {}, "review": {"mode": "auto"}}
    for key, value in changes.items():
        data[key] = value
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run(path, run_dir, *args):
    result = Runner(Recipe.from_yaml(path), path, run_dir, quiet=True, **dict(args))
    return {r.stage: r for r in result.run()}


def test_stages_run_in_order_then_skip_when_unchanged(tmp_path):
    path, run_dir = recipe(tmp_path), tmp_path / "run"
    first = run(path, run_dir)
    assert [s.status for s in first.values()] == ["done"] * 4
    assert first["generate"].counts["pairs"] > 40 and (run_dir / "reviewed.jsonl").exists()
    reviewed = [json.loads(line) for line in (run_dir / "reviewed.jsonl").read_text().splitlines()]
    assert all(row["meta"]["review"]["mode"] == "auto" for row in reviewed)
    second = run(path, run_dir)
    assert all(s.status.startswith("skipped") for s in second.values())


def test_changed_settings_redo_that_stage_and_later_ones(tmp_path):
    path, run_dir = recipe(tmp_path), tmp_path / "run"
    run(path, run_dir)
    path = recipe(tmp_path, filter={"verbosity": {"max_thought_tokens": 5}})
    again = run(path, run_dir)
    assert [again[s].status for s in ("tasks", "generate")] == ["skipped (unchanged)"] * 2
    assert [again[s].status for s in ("filter", "review")] == ["done", "done"]


def test_changed_or_damaged_output_is_redone(tmp_path):
    path, run_dir = recipe(tmp_path), tmp_path / "run"
    run(path, run_dir)
    (run_dir / "curated.jsonl").write_text("")
    again = run(path, run_dir)
    assert again["filter"].status == "done" and again["generate"].status.startswith("skipped")


def test_from_and_force(tmp_path):
    path, run_dir = recipe(tmp_path), tmp_path / "run"
    run(path, run_dir)
    redo = run(path, run_dir, ("from_stage", "filter"))
    assert [r.status for r in redo.values()] == ["skipped (unchanged)", "skipped (unchanged)", "done", "done"]
    forced = run(path, run_dir, ("force", True))
    assert all(r.status == "done" for r in forced.values())


def test_missing_teacher_url_fails_before_any_work(tmp_path):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(ROOT / "pipelines" / "dbbench.yaml"), "--run-dir", str(run_dir)])
    assert result.exit_code == 2
    assert "pipelines/dbbench.yaml: missing required setting 'teacher.base_url'" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert not run_dir.exists()


def test_review_modes_that_cannot_work_fail_before_any_work(tmp_path, monkeypatch):
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    run_dir = tmp_path / "run"
    review = {"mode": "argilla", "data_dir": str(tmp_path / "no-server")}
    result = CliRunner().invoke(cli, ["run", str(recipe(tmp_path, review=review)), "--run-dir", str(run_dir)])
    assert result.exit_code == 2 and "review mode 'argilla': no Argilla server given" in result.stderr
    assert not run_dir.exists()
    result = CliRunner().invoke(cli, ["run", str(recipe(tmp_path, review={"mode": "tui"})), "--run-dir", str(run_dir)])
    assert result.exit_code == 2 and "review mode 'tui' needs a terminal" in result.stderr
    assert not run_dir.exists()


def test_tui_review_stage_resumes_until_every_pair_is_decided(tmp_path, monkeypatch):
    import sys

    import rich.console

    path, run_dir = recipe(tmp_path, review={"mode": "tui"}, tasks={"source": "alfworld-react", "path": str(CORPUS),
                                                                    "limit": 3, "eval_share": 0.0}), tmp_path / "run"
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    keys = iter(["a", "q"])
    monkeypatch.setattr(rich.console.Console, "input", lambda self, prompt="": next(keys, "q"))
    with pytest.raises(PrefkitError, match="1 of 3 pairs decided"):
        run(path, run_dir)
    keys = iter(["b", "a"])
    results = run(path, run_dir)
    assert results["review"].status == "done" and results["review"].counts["pairs"] == 3
    rows = [json.loads(line) for line in (run_dir / "reviewed.jsonl").read_text().splitlines()]
    assert all(row["meta"]["review"]["mode"] == "tui" for row in rows)
