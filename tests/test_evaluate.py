"""`prefkit eval`: local tiny models and the stand-in OpenAI server, scored with the filter's rules."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from prefkit.cli import cli
from prefkit.evaluate.config import ModelSpec
from prefkit.evaluate.report import TURN_MEASURES
from prefkit.evaluate.statistics import summarise
from prefkit.jsonl import write_jsonl
from prefkit.testing.standin import Behaviour, StandinServer
from tests.conftest import tasks_of


@pytest.fixture()
def eval_tasks(tmp_path, corpus_tasks):
    path = tmp_path / "tasks.jsonl"
    write_jsonl(path, tasks_of(corpus_tasks, "alfworld")[:12])
    return path


def test_remote_model_through_the_openai_client(tmp_path, eval_tasks):
    def responder(body, index):
        if body["model"] == "lenient":  # the game reads the first line and never sees the second
            return "go to cabinet 1\nopen cabinet 1"
        good = "chatty" not in body["model"]
        return "go to cabinet 1" if good else "Certainly! I'd be happy to help. Let me look around."

    with StandinServer(Behaviour(models=("good", "chatty", "lenient"), responder=responder)) as server:
        result = CliRunner().invoke(
            cli,
            [
                "eval",
                "--model",
                f"openai:chatty@{server.url}",
                "--model",
                f"openai:good@{server.url}",
                "--model",
                f"openai:lenient@{server.url}",
                "--tasks",
                str(eval_tasks),
                "--format",
                "alfworld",
                "--out",
                str(tmp_path / "rep"),
                "--json",
                "-q",
            ],
        )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["models"]["chatty"]["format_valid"]["mean"] == 0.0
    assert report["models"]["good"]["format_valid"]["mean"] == 1.0
    assert report["models"]["chatty"]["filler"]["mean"] == 1.0
    diff = report["differences"]["good - chatty"]
    assert diff["format_valid"]["mean"] == 1.0 and diff["filler"]["mean"] == -1.0
    lenient = report["models"]["lenient"]
    assert lenient["accepted"]["mean"] == 1.0 and lenient["disciplined"]["mean"] == 0.0
    assert lenient["format_valid"]["mean"] == 0.0 and report["models"]["chatty"]["accepted"]["mean"] == 0.0
    assert report["models"]["chatty"]["disciplined"]["mean"] is None  # nothing accepted, nothing to judge
    for name in ("report.json", "report.md", "chart.png", "turns-good.jsonl", "turns-chatty.jsonl"):
        assert (tmp_path / "rep" / name).exists()
    turns = [json.loads(line) for line in (tmp_path / "rep" / "turns-good.jsonl").read_text().splitlines()]
    assert len(turns) == 12 and turns[0]["turn"]["content"] == "go to cabinet 1"
    lenient_turns = [json.loads(line) for line in (tmp_path / "rep" / "turns-lenient.jsonl").read_text().splitlines()]
    assert lenient_turns[0]["executed"] == {"name": "go", "argument": "go to cabinet 1"}
    assert lenient_turns[0]["violations"] == ["discipline.multiple_actions"]
    assert "format-valid rate" in (tmp_path / "rep" / "report.md").read_text()
    # No --temperature or --max-new-tokens: the defaults are EvalConfig's, the same a recipe's eval: section has.
    assert {(body["temperature"], body["max_tokens"]) for body in server.stats.bodies} == {(0.0, 96)}


def test_model_spec_parsing():
    assert ModelSpec.parse("after=runs/x/adapter") == ModelSpec("after", "runs/x/adapter")
    assert ModelSpec.parse("runs/x/adapter").label == "adapter"
    spec = ModelSpec.parse("openai:qwen3@http://localhost:8000/v1")
    assert spec.label == "qwen3" and (spec.policy.model, spec.policy.base_url) == ("qwen3", "http://localhost:8000/v1")


def test_bootstrap_intervals_and_paired_difference():
    a = [
        {
            "format_valid": float(i % 2),
            "accepted": 1.0,
            "disciplined": float(i % 2),
            "filler": 0.0,
            "thought_tokens": 3.0,
            "repeated_action": 0.0,
            "reference_agreement": None,
        }
        for i in range(200)
    ]
    b = [dict(row, format_valid=1.0) for row in a]
    report = summarise({"a": a, "b": b}, TURN_MEASURES, resamples=500)
    valid = report["models"]["a"]["format_valid"]
    assert valid["low"] < 0.5 < valid["high"] and valid["high"] - valid["low"] < 0.2
    assert report["differences"]["b - a"]["format_valid"]["mean"] == pytest.approx(0.5)
    assert report["models"]["a"]["reference_agreement"]["mean"] is None
    assert np.isclose(report["models"]["b"]["format_valid"]["low"], 1.0)


def test_bad_model_arguments_are_one_line_errors(tmp_path, eval_tasks):
    pytest.importorskip("transformers")
    for model, message in (
        (str(tmp_path / "missing"), "model path not found"),
        (str(tmp_path), "not a model checkpoint or adapter folder"),
        ("openai:only-a-name", "expected openai:MODEL@BASE_URL"),
    ):
        result = CliRunner().invoke(
            cli,
            [
                "eval",
                "--model",
                f"m={model}",
                "--tasks",
                str(eval_tasks),
                "--format",
                "alfworld",
                "--out",
                str(tmp_path / "r"),
                "-q",
            ],
        )
        assert result.exit_code == 2, result.output
        assert message in result.stderr and result.stderr.strip().count("\n") == 0


def test_eval_in_an_environment_measures_task_success_side_by_side(tmp_path):
    """--env dbbench: each model plays every episode; success as AgentBench grades it, with intervals and the
    paired difference, beside each episode's format measures and AgentBench's own metrics."""
    from prefkit.testing.agents import DBBenchAgent
    from tests.conftest import CORPUS
    from tests.rollout_helpers import gold_replay

    dev = CORPUS / "agentbench/dbbench_dev.jsonl"
    weak, strong = DBBenchAgent(dev, correct_share=0.3), DBBenchAgent(dev, correct_share=0.3, seed=1)

    def responder(body, index):
        return (strong if body["model"] == "strong" else weak)(body, index)

    with StandinServer(Behaviour(models=("weak", "strong"), responder=responder)) as server:
        result = CliRunner().invoke(
            cli,
            ["eval", "--env", "dbbench", "--engine", "sqlite", "--tasks", str(dev),
             "--model", f"openai:weak@{server.url}", "--model", f"openai:strong@{server.url}",
             "--model", f"gold=replay:{gold_replay(tmp_path / 'gold.jsonl')}",
             "--out", str(tmp_path / "rep"), "--json", "-q"],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    models = report["models"]
    assert models["gold"]["success"]["mean"] == 1.0 and models["gold"]["success"]["n"] == 60
    assert 0 < models["weak"]["success"]["mean"] < 1 and models["weak"]["turns"]["mean"] >= 1
    assert report["differences"]["gold - weak"]["success"]["mean"] == pytest.approx(
        1 - models["weak"]["success"]["mean"]
    )
    assert report["agentbench"]["gold"]["overall_cat_accuracy"] == 1.0
    assert report["agentbench"]["weak"]["overall_cat_accuracy"] < 1
    assert models["weak"]["format_valid"]["mean"] < models["gold"]["format_valid"]["mean"] == 1.0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "task success rate" in text and "overall_cat_accuracy" in text
    for name in ("trajectories-weak.jsonl", "trajectories-strong.jsonl", "trajectories-gold.jsonl", "chart.png"):
        assert (tmp_path / "rep" / name).exists()


def test_eval_in_an_environment_averages_a_tasks_samples_and_pairs_only_shared_episodes(tmp_path):
    from tests.conftest import CORPUS
    from tests.rollout_helpers import gold_replay

    dev = CORPUS / "agentbench/dbbench_dev.jsonl"
    rows = [json.loads(line) for line in gold_replay(tmp_path / "g.jsonl").read_text().splitlines()]
    both = tmp_path / "both.jsonl"  # two samples a task: the gold one and a wrong answer
    wrong = "Thought: no.\nAction: Answer\nFinal Answer: []"
    both.write_text("".join(json.dumps({**r, "sample": 0}) + "\n" + json.dumps({**r, "sample": 1, "turns": [wrong]})
                            + "\n" for r in rows))  # fmt: skip
    fewer = tmp_path / "fewer.jsonl"  # only the first ten tasks
    fewer.write_text("".join(json.dumps({**r, "sample": s}) + "\n" for r in rows[:10] for s in (0, 1)))
    result = CliRunner().invoke(
        cli,
        ["eval", "--env", "dbbench", "--engine", "sqlite", "--tasks", str(dev), "--samples", "2",
         "--temperature", "0.5", "--model", f"both=replay:{both}", "--model", f"fewer=replay:{fewer}",
         "--out", str(tmp_path / "rep"), "--json", "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["tasks"] == 10  # the episodes both models played
    assert report["models"]["both"]["success"]["mean"] == 0.5 and report["models"]["fewer"]["success"]["mean"] == 1.0
    assert report["differences"]["fewer - both"]["success"]["mean"] == 0.5
