"""`prefkit rollout`: whole DBBench episodes by a replay file or a teacher, appended as they end, resumable."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from prefkit.cli import cli
from prefkit.tasks import load_tasks
from prefkit.testing.agents import DBBenchAgent
from prefkit.testing.standin import Behaviour, StandinServer
from tests.rollout_helpers import DEV, gold_replay


def rollout(*args):
    result = CliRunner().invoke(cli, ["rollout", str(DEV), *args, "--json", "-q"])
    return result, (json.loads(result.stdout) if result.exit_code == 0 else None)


def test_a_replay_of_the_gold_solutions_succeeds_everywhere(tmp_path):
    out = tmp_path / "traj.jsonl"
    result, report = rollout("--policy", f"replay:{gold_replay(tmp_path / 'r.jsonl')}", "--engine", "sqlite",
                             "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert report["episodes"] == report["played"] == report["successes"] == 60
    assert report["metrics"]["overall_cat_accuracy"] == 1.0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    record = records[0]
    assert {"task_id", "sample", "env", "engine", "policy", "messages", "turns", "status", "success", "reward",
            "result", "usage", "seconds"} <= set(record)  # fmt: skip
    assert record["engine"] == "sqlite" and record["env"] == "dbbench" and record["policy"] == "replay:r.jsonl"
    first = record["turns"][0]
    assert first["accepted"] and first["action"]["name"] == "Operation" and first["observation"] is not None
    assert [m["role"] for m in record["messages"]] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert len({(r["task_id"], r["sample"]) for r in records}) == 60


def test_a_replay_that_runs_out_of_turns_ends_unknown(tmp_path):
    task_id = load_tasks(DEV, "agentbench")[0]["id"]
    replay = tmp_path / "r.jsonl"
    replay.write_text(json.dumps({"task_id": task_id, "turns": ["Action: Operation\n```sql\nSELECT 1\n```"]}) + "\n")
    result, report = rollout("--policy", f"replay:{replay}", "--engine", "sqlite", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0 and report["episodes"] == 1 and report["statuses"] == {"unknown": 1}
    record = json.loads((tmp_path / "o").read_text())
    assert record["turns"][-1]["stopped"] == "unknown" and "no further turn" in record["turns"][-1]["error"]


@pytest.mark.parametrize(
    "line,message",
    [
        ('{"task_id": "nope", "turns": []}', "task 'nope' is not in the tasks file"),
        ('{"turns": []}', 'expected {"task_id": ..., "turns": [...]}'),
        ("not json", "r.jsonl:1"),
    ],
)
def test_a_bad_replay_file_is_one_line_before_any_episode(tmp_path, line, message):
    replay = tmp_path / "r.jsonl"
    replay.write_text(line + "\n")
    result, _ = rollout("--policy", f"replay:{replay}", "--engine", "sqlite", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() or not (tmp_path / "o").read_text()


def test_the_standin_agent_succeeds_on_its_share_and_fails_as_agents_do(tmp_path):
    agent = DBBenchAgent(DEV, correct_share=0.5)
    rows = [json.loads(line) for line in DEV.read_text().splitlines()]
    plans = [agent.plan(row["description"] + "\n" + row["add_description"]) for row in rows]
    with StandinServer(Behaviour(responder=agent)) as server:
        result, report = rollout("--policy", f"openai:teacher-model@{server.url}", "--engine", "sqlite",
                                 "--concurrency", "8", "--out", str(tmp_path / "t.jsonl"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert report["successes"] == plans.count("correct") and 0 < report["successes"] < 60
    failed = plans.count("chatty") + plans.count("no_action")
    assert report["statuses"]["agent validation failed"] == failed > 0
    records = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert all(r["usage"]["completion_tokens"] > 0 for r in records)
    assert report["prompt_tokens"] > 0 and report["metrics"]["overall_cat_accuracy"] > 0


def test_several_samples_need_a_temperature(tmp_path):
    result, _ = rollout("--policy", "openai:m@http://127.0.0.1:9", "--samples", "2", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "temperature above 0" in result.stderr


ROLLOUT = [sys.executable, "-m", "prefkit", "rollout", str(DEV), "--engine", "sqlite", "--concurrency", "4", "-q"]


@pytest.mark.slow
def test_a_killed_rollout_resumes_without_playing_an_episode_twice_or_asking_twice(tmp_path):
    out = tmp_path / "traj.jsonl"
    agent = DBBenchAgent(DEV, correct_share=0.7)
    with StandinServer(Behaviour(responder=agent, latency=0.1)) as server:
        command = [*ROLLOUT, "--policy", f"openai:teacher-model@{server.url}", "--out", str(out)]
        first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 10):
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        finished = len(out.read_text().splitlines())
        assert 10 <= finished < 60
        again = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        asked_twice = [key for key, count in server.stats.completions.items() if count > 1]
        requests = server.stats.requests
        third = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert third.returncode == 0 and server.stats.requests - requests <= 1  # at most the preflight's GET
    records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    keys = [(r["task_id"], r["sample"]) for r in records]
    assert len(keys) == len(set(keys)) == 60
    # Only what was in flight when the kill came (4 episodes at once) is asked again: every answer that
    # arrived was cached, including the earlier turns of the episodes the kill cut short.
    assert len(asked_twice) <= 4


def test_an_unreachable_teacher_is_one_line_and_leaves_no_file(tmp_path):
    out = tmp_path / "traj.jsonl"
    result, _ = rollout("--policy", "openai:m@http://127.0.0.1:9/v1", "--engine", "sqlite", "--out", str(out))
    assert result.exit_code == 4 and "cannot reach the teacher" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_replay_plays_every_sample_it_records_within_the_limit(tmp_path):
    tasks = load_tasks(DEV, "agentbench")
    replay = tmp_path / "r.jsonl"
    rows = [{"task_id": tasks[i]["id"], "sample": s, "turns": ["Action: Answer\nFinal Answer: [1]\n"]}
            for i in (0, 1, 5) for s in (0, 3)]  # fmt: skip
    replay.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result, report = rollout("--policy", f"replay:{replay}", "--engine", "sqlite", "--limit", "2",
                             "--out", str(tmp_path / "o"))  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "o").read_text().splitlines()]
    assert sorted((r["task_id"], r["sample"]) for r in records) == sorted(
        (tasks[i]["id"], s) for i in (0, 1) for s in (0, 3)
    )


@pytest.mark.parametrize(
    "policy,message",
    [
        ("openai:m@ftp://x", "'ftp://x' is not an http(s)://HOST/... URL"),
        ("openai:m", "expected openai:MODEL@BASE_URL"),
    ],
)
def test_a_bad_policy_url_is_one_line_before_any_work(tmp_path, policy, message):
    result, _ = rollout("--policy", policy, "--engine", "sqlite", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_policy_url_with_credentials_keeps_them_in_the_url(tmp_path):
    from prefkit.policies.spec import PolicySpec
    from prefkit.policies.teacher import TeacherPolicy
    from prefkit.rollout import RolloutConfig

    config = RolloutConfig(policy="openai:m@http://user:pw@127.0.0.1:9/v1")
    policy = TeacherPolicy(PolicySpec.parse(config.policy), config.policy_settings(), tmp_path / "cache.sqlite")
    assert policy.teacher_config.model == "m" and policy.teacher_config.base_url == "http://user:pw@127.0.0.1:9/v1"
    assert "pw" not in policy.label


def test_task_ids_depend_on_the_benchmark_task_not_on_prefkits_prompt_text(tmp_path, monkeypatch):
    from prefkit.envs.dbbench import env as dbbench_env
    from prefkit.envs.dbbench import tasks as dbbench_tasks
    from prefkit.envs.dbbench.config import DBBenchConfig

    def ids() -> tuple[list[str], list[str]]:
        with DBBenchConfig(engine="sqlite").open(DEV) as env:
            played = env.task_ids()
        return played, [task["id"] for task in load_tasks(DEV, "agentbench")]

    before = ids()
    assert before[0] == before[1] and len(set(before[0])) == 60  # rollout and `prefkit tasks` name them alike
    monkeypatch.setattr(dbbench_tasks, "SYSTEM_PROMPT", "Another wording of the instructions.")
    monkeypatch.setattr(dbbench_env, "INSTRUCTION", "Another wording of AgentBench's instruction.")
    assert ids() == before
    edited = tmp_path / "dev.jsonl"
    rows = [json.loads(line) for line in DEV.read_text().splitlines()]
    rows[3]["description"] += " (edited)"
    edited.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with DBBenchConfig(engine="sqlite").open(edited) as env:
        changed = [a != b for a, b in zip(env.task_ids(), before[0])]
    assert changed == [index == 3 for index in range(60)]  # the edited task alone is renamed


def test_resume_replay_and_eval_pairing_survive_an_edit_of_the_prompt(tmp_path, monkeypatch):
    from prefkit.envs.dbbench import env as dbbench_env

    replay = gold_replay(tmp_path / "r.jsonl")
    out = tmp_path / "t.jsonl"
    result, first = rollout("--policy", f"replay:{replay}", "--engine", "sqlite", "--limit", "10", "--out", str(out))
    assert result.exit_code == 0 and first["played"] == 10
    monkeypatch.setattr(dbbench_env, "INSTRUCTION", "Another wording of AgentBench's instruction.")
    result, again = rollout("--policy", f"replay:{replay}", "--engine", "sqlite", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (again["already_done"], again["played"], again["successes"]) == (10, 50, 60)
    result = CliRunner().invoke(cli, ["eval", "--env", "dbbench", "--engine", "sqlite", "--tasks", str(DEV),
                                      "--model", f"a=replay:{replay}", "--model", f"b=replay:{replay}",
                                      "--out", str(tmp_path / "e"), "--json", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tasks"] == 60


def test_a_trajectories_file_with_ids_of_another_scheme_is_one_line_not_played_again(tmp_path):
    replay = gold_replay(tmp_path / "r.jsonl")
    out = tmp_path / "t.jsonl"
    assert rollout("--policy", f"replay:{replay}", "--engine", "sqlite", "--limit", "3", "--out", str(out))[1]
    lines = out.read_text().splitlines()
    old = json.loads(lines[1])
    old["task_id"] = "dbbench-l2-0badc0de"  # an id that hashed prefkit's own prompt text
    out.write_text("\n".join([lines[0], json.dumps(old), lines[2]]) + "\n")
    before = out.read_bytes()
    result, _ = rollout("--policy", f"replay:{replay}", "--engine", "sqlite", "--out", str(out))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert f"{out}:2:" in result.stderr and "dbbench-l2-0badc0de" in result.stderr and "before 0.2" in result.stderr
    assert out.read_bytes() == before


def test_a_damaged_trajectory_record_is_one_line_with_its_place(tmp_path):
    from prefkit.errors import InputError
    from prefkit.records import read_trajectories

    replay = gold_replay(tmp_path / "r.jsonl")
    out = tmp_path / "t.jsonl"
    rollout("--policy", f"replay:{replay}", "--engine", "sqlite", "--limit", "2", "--out", str(out))
    assert [record.task_id for record in read_trajectories(out)] == [
        json.loads(line)["task_id"] for line in out.read_text().splitlines()
    ]
    lines = out.read_text().splitlines()
    damaged = json.loads(lines[1])
    damaged["turns"][0]["accepted"] = "perhaps"
    out.write_text(lines[0] + "\n" + json.dumps(damaged) + "\n")
    with pytest.raises(InputError, match=r"t\.jsonl:2: .*turns\.0"):
        read_trajectories(out)
    result, _ = rollout("--policy", f"replay:{replay}", "--engine", "sqlite", "--out", str(out))
    assert result.exit_code == 2 and f"{out}:2: not a trajectory record" in result.stderr
