"""`prefkit generate` against the stand-in teacher: failures, resume after kill -9, cache, secrets, bad input."""

import json
import os
import signal
import subprocess
import time
from collections import Counter

import pytest

from prefkit.jsonl import write_jsonl
from prefkit.testing.standin import Behaviour, StandinServer, request_key
from tests.conftest import tasks_of
from tests.generate_helpers import PREFKIT, lines, run, write_recipe


@pytest.fixture()
def tasks_file(tmp_path, corpus_tasks):
    path = tmp_path / "tasks.jsonl"
    write_jsonl(path, tasks_of(corpus_tasks, "alfworld")[:60] + tasks_of(corpus_tasks, "react")[:10])
    return path


def test_flaky_teacher_every_task_ends_exactly_once(tmp_path, tasks_file):
    behaviour = Behaviour(
        error_rate=0.10,
        rate_limit_rate=0.05,
        retry_after=0.01,
        hang_rate=0.03,
        malformed_rate=0.03,
        hang_seconds=3,
        seed=1,
    )
    with StandinServer(behaviour) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server.url, timeout=0.5, max_attempts=3)
        out = tmp_path / "pairs.jsonl"
        result = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "--json", "-q")
    summary = json.loads(result.stdout)
    assert server.stats.outcomes["500"] and server.stats.outcomes["429"] and server.stats.outcomes["hang"]
    done = [row["meta"]["task_id"] for row in lines(out)]
    failed = [row["task_id"] for row in lines(tmp_path / "pairs.failures.jsonl")]
    # Tasks whose context repeats another's (the corpus has some) yield the same pair: recorded as skipped.
    skipped = [row["task_id"] for row in lines(tmp_path / "pairs.skipped.jsonl")]
    assert all(row["reason"].startswith("duplicate of pair") for row in lines(tmp_path / "pairs.skipped.jsonl"))
    task_ids = [row["id"] for row in lines(tasks_file)]
    assert sorted(done + failed + skipped) == sorted(task_ids)
    assert len(set(done + failed + skipped)) == len(task_ids)
    assert summary["pairs"] == len(done) and summary["failed"] == len(failed)
    assert result.returncode == (4 if failed else 0)  # a teacher failure, as in eval


def test_failed_tasks_are_retried_by_the_next_run(tmp_path, tasks_file):
    with StandinServer(Behaviour(error_rate=0.6, seed=3)) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server.url, max_attempts=1)
        out = tmp_path / "pairs.jsonl"
        first = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "-q")
        failed = lines(tmp_path / "pairs.failures.jsonl")
        assert first.returncode == 4 and failed  # 60% errors and one attempt: some of 70 tasks fail for sure
        assert first.stderr.strip() == (
            f"error: {len(failed)} of 70 tasks failed after every retry; they are listed in "
            f"{tmp_path / 'pairs.failures.jsonl'} and the next run retries them"
        )
        server.behaviour.error_rate = 0.0
        second = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "-q")
    assert second.returncode == 0, second.stderr
    ended = len(lines(out)) + len(lines(tmp_path / "pairs.skipped.jsonl"))
    assert ended == 70 and not (tmp_path / "pairs.failures.jsonl").exists()


def test_kill_9_midway_then_resume_without_duplicates_or_repeat_requests(tmp_path, tasks_file):
    with StandinServer(Behaviour(latency=0.05)) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server.url, concurrency=2)
        out = tmp_path / "pairs.jsonl"
        env = dict(os.environ, OPENAI_API_KEY="sk-test")
        process = subprocess.Popen(
            [*PREFKIT, "generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "-q"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while len(lines(out)) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        finished = {row["meta"]["task_id"] for row in lines(out)}
        assert 10 <= len(finished) < 70
        # A torn last line, as a crash during a write would leave it.
        with out.open("a") as handle:
            handle.write('{"id": "torn", "prompt": [')
        resumed = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "--json", "-q")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    rows = lines(out)
    assert len(rows) + len(lines(tmp_path / "pairs.skipped.jsonl")) == 70
    assert len({row["id"] for row in rows}) == len(rows)
    assert summary["already_done"] >= len(finished) and "incomplete" in summary["repaired"]
    assert (tmp_path / "pairs.torn.jsonl").read_text().startswith('{"id": "torn"')
    tasks = {row["id"]: row for row in lines(tasks_file)}
    finished_users = {json.dumps(tasks[task_id]["messages"][1:]) for task_id in finished}
    for body in server.stats.bodies:
        if json.dumps(body["messages"][1:]) in finished_users:
            assert server.stats.completions[request_key(body)] == 1


def test_cache_means_a_rerun_never_asks_again(tmp_path, tasks_file):
    with StandinServer() as server:
        recipe = write_recipe(tmp_path / "r.yaml", server.url, cache=str(tmp_path / "shared-cache.sqlite"))
        first = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(tmp_path / "a.jsonl"), "-q")
        asked = server.stats.outcomes["ok"]
        second = run(
            "generate", str(tasks_file), "--recipe", str(recipe), "--out", str(tmp_path / "b.jsonl"), "--json", "-q"
        )
    assert first.returncode == second.returncode == 0
    assert asked == server.stats.outcomes["ok"]  # the second run asked nothing
    assert json.loads(second.stdout)["cache_hits"] >= asked > 0
    # The same pairs; their order is the order tasks finished in, which concurrency leaves open.
    assert sorted(r["id"] for r in lines(tmp_path / "a.jsonl")) == sorted(r["id"] for r in lines(tmp_path / "b.jsonl"))
    assert all(r["meta"]["cached"] for r in lines(tmp_path / "b.jsonl"))


def test_api_key_never_appears_in_output_logs_or_files(tmp_path, tasks_file):
    secret = "sk-very-secret-4242"
    with StandinServer(Behaviour(api_key=secret, error_rate=0.2, seed=5)) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server.url)
        result = run(
            "-v",
            "generate",
            str(tasks_file),
            "--recipe",
            str(recipe),
            "--out",
            str(tmp_path / "p.jsonl"),
            "--json",
            key=secret,
        )
    assert result.returncode == 0, result.stderr
    assert server.stats.headers[-1]["authorization"] == f"Bearer {secret}"  # the key did reach the teacher
    assert secret not in result.stdout and secret not in result.stderr
    for path in tmp_path.iterdir():
        assert secret.encode() not in path.read_bytes(), path


def test_wrong_key_is_one_line_and_keeps_finished_pairs(tmp_path, tasks_file):
    with StandinServer(Behaviour(api_key="right")) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server.url)
        out = tmp_path / "p.jsonl"
        ok = run(
            "generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "--limit", "5", "-q", key="right"
        )
        assert ok.returncode == 0 and len(lines(out)) == 5
        bad = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "-q", key="wrong")
    assert bad.returncode == 4
    assert bad.stderr.strip().count("\n") == 0 and "refused the API key (401)" in bad.stderr
    assert "wrong" not in bad.stderr
    assert len(lines(out)) == 5


def test_wrong_model_name(tmp_path, tasks_file):
    with StandinServer() as server:
        recipe = write_recipe(tmp_path / "r.yaml", server.url)
        result = run(
            "generate",
            str(tasks_file),
            "--recipe",
            str(recipe),
            "--model",
            "gpt-nope",
            "--out",
            str(tmp_path / "p.jsonl"),
            "-q",
        )
    assert result.returncode == 4
    assert "model 'gpt-nope' is not served" in result.stderr and result.stderr.strip().count("\n") == 0


def test_unreachable_base_url(tmp_path, tasks_file):
    recipe = write_recipe(tmp_path / "r.yaml", "http://127.0.0.1:9/v1")
    result = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(tmp_path / "p.jsonl"), "-q")
    assert result.returncode == 4
    assert "cannot reach the teacher at http://127.0.0.1:9/v1" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_missing_task_file_and_malformed_lines(tmp_path):
    missing = run("generate", str(tmp_path / "none.jsonl"), "--strategy", "corrupt", "--out", str(tmp_path / "p.jsonl"))
    assert missing.returncode == 2 and "none.jsonl: file not found" in missing.stderr
    bad = tmp_path / "tasks.jsonl"
    bad.write_text('{"id": "a", "messages": [{"role": "user", "content": "hi"}]}\n{"id": "b", "messages": []}\n')
    result = run("generate", str(bad), "--strategy", "corrupt", "--out", str(tmp_path / "p.jsonl"))
    assert result.returncode == 2 and "tasks.jsonl:2: messages" in result.stderr


def test_missing_teacher_url_fails_before_any_work(tmp_path, tasks_file):
    result = run("generate", str(tasks_file), "--strategy", "contrastive", "--out", str(tmp_path / "p.jsonl"))
    assert result.returncode == 2 and "missing required setting 'teacher.base_url'" in result.stderr
    assert not (tmp_path / "p.jsonl").exists()


def test_corrupt_strategy_records_each_kind(tmp_path, tasks_file):
    out = tmp_path / "p.jsonl"
    result = run("generate", str(tasks_file), "--strategy", "corrupt", "--out", str(out), "-q")
    assert result.returncode == 0, result.stderr
    rows = lines(out)
    kinds = Counter(row["meta"]["corruption"] for row in rows)
    assert set(kinds) == {"filler", "ramble", "drop_action", "malformed_action", "two_actions", "format_break"}
    references = {task["id"]: task["meta"]["reference"] for task in lines(tasks_file)}
    assert rows and all(row["meta"]["strategy"] == "corrupt" for row in rows)
    assert all(row["chosen"] == [references[row["meta"]["task_id"]]] for row in rows)
    assert all(row["rejected"] != row["chosen"] for row in rows)
    again = run("generate", str(tasks_file), "--strategy", "corrupt", "--out", str(tmp_path / "q.jsonl"), "-q")
    assert again.returncode == 0 and lines(tmp_path / "q.jsonl") == rows  # deterministic


def test_a_key_in_the_base_url_is_never_recorded_or_shown(tmp_path, tasks_file):
    secret, key = "url-secret-777", "sk-env-secret-4242"
    with StandinServer(Behaviour(error_rate=0.2, seed=5)) as server:
        url = server.url.replace("http://", f"http://user:{secret}@")
        recipe = write_recipe(tmp_path / "r.yaml", url)
        result = run("-v", "generate", str(tasks_file), "--recipe", str(recipe), "--out", str(tmp_path / "p.jsonl"),
                     "--limit", "5", "--json", key=key)  # fmt: skip
        evaluation = run("eval", "--model", f"openai:teacher-model@{url}", "--tasks", str(tasks_file), "--limit", "3",
                         "--format", "alfworld", "--out", str(tmp_path / "eval"), key=key)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert evaluation.returncode == 0, evaluation.stderr
    assert {row["meta"]["teacher_url"] for row in lines(tmp_path / "p.jsonl")} == {server.url}
    for text in (result.stdout, result.stderr, evaluation.stdout, evaluation.stderr):
        assert secret not in text and key not in text
    for path in [*tmp_path.iterdir(), *(tmp_path / "eval").iterdir()]:
        if path.is_file() and path != recipe:  # the recipe is the user's own input
            assert secret.encode() not in path.read_bytes() and key.encode() not in path.read_bytes(), path
    unreachable = write_recipe(tmp_path / "u.yaml", f"http://user:{secret}@127.0.0.1:9/v1")
    down = run("generate", str(tasks_file), "--recipe", str(unreachable), "--out", str(tmp_path / "q.jsonl"), "-q")
    assert down.returncode == 4 and "cannot reach the teacher at http://127.0.0.1:9/v1" in down.stderr
    assert secret not in down.stderr


def test_a_bad_line_before_the_end_of_the_output_stops_the_resume_and_moves_nothing(tmp_path, tasks_file):
    out = tmp_path / "pairs.jsonl"
    assert run("generate", str(tasks_file), "--strategy", "corrupt", "--out", str(out), "-q").returncode == 0
    rows = out.read_text().splitlines()
    rows[2] = rows[2][:40]  # damaged in the middle (an edit, a bad copy): not what a crash leaves
    out.write_text("\n".join(rows) + "\n")
    damaged = out.read_bytes()
    result = run("generate", str(tasks_file), "--strategy", "corrupt", "--out", str(out), "-q")
    assert result.returncode == 2 and f"{out}:3: line 3 is not JSON" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert out.read_bytes() == damaged and not (tmp_path / "pairs.torn.jsonl").exists()


def test_an_output_that_is_not_a_pairs_log_is_refused_not_moved_aside(tmp_path, tasks_file):
    for name, text in (("sheet.csv", "a,b\n1,2\n"), ("one-line.csv", "a,b,c")):
        out = tmp_path / name
        out.write_text(text)
        result = run("generate", str(tasks_file), "--strategy", "corrupt", "--out", str(out), "-q")
        assert result.returncode == 2 and "line 1 is not JSON" in result.stderr, result.stderr
        assert out.read_text() == text and not list(tmp_path.glob(f"{out.stem}.torn*"))


def test_a_last_record_without_its_newline_is_kept(tmp_path, tasks_file):
    out = tmp_path / "pairs.jsonl"
    assert run("generate", str(tasks_file), "--strategy", "corrupt", "--out", str(out), "-q").returncode == 0
    whole = out.read_text()
    out.write_text(whole.rstrip("\n"))
    again = run("generate", str(tasks_file), "--strategy", "corrupt", "--out", str(out), "--json", "-q")
    assert again.returncode == 0 and json.loads(again.stdout)["repaired"] is None
    assert out.read_text() == whole


def test_a_501_is_not_retried_and_ends_as_in_eval(tmp_path, tasks_file):
    """A server that cannot do the request at all (501) stops the run at once, with the same exit code that
    `prefkit eval` gives for it."""
    with StandinServer(Behaviour(error_rate=1.0, error_status=501)) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server.url, concurrency=1)
        generated = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(tmp_path / "p.jsonl"), "-q")
        assert server.stats.outcomes["500"] < 10  # retried, one request alone would have made 10 attempts
        evaluated = run(
            "eval", "--model", f"openai:teacher-model@{server.url}", "--tasks", str(tasks_file), "--format",
            "alfworld", "--out", str(tmp_path / "report"), "--limit", "3", "-q",
        )  # fmt: skip
    assert generated.returncode == evaluated.returncode == 4
    for result in (generated, evaluated):
        assert "answered 501" in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_a_teacher_that_keeps_failing_ends_with_the_same_exit_code_in_generate_and_eval(tmp_path, tasks_file):
    with StandinServer(Behaviour(error_rate=1.0)) as server:
        recipe = write_recipe(tmp_path / "r.yaml", server.url, max_attempts=2)
        generated = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(tmp_path / "p.jsonl"), "-q")
        evaluated = run(
            "eval", "--model", f"openai:teacher-model@{server.url}", "--tasks", str(tasks_file), "--format",
            "alfworld", "--out", str(tmp_path / "report"), "--limit", "2", "-q",
        )  # fmt: skip
    assert generated.returncode == evaluated.returncode == 4, (generated.stderr, evaluated.stderr)


def test_a_corrupt_answer_cache_is_one_line(tmp_path, tasks_file):
    with StandinServer() as server:
        recipe = write_recipe(tmp_path / "r.yaml", server.url)
        (tmp_path / "p.cache.sqlite").write_text("not a database")
        result = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(tmp_path / "p.jsonl"), "-q")
    assert result.returncode == 2 and "p.cache.sqlite: not a usable answer cache" in result.stderr
    assert result.stderr.count("\n") == 1 and (tmp_path / "p.cache.sqlite").read_text() == "not a database"


@pytest.mark.parametrize(
    "url,message",
    [
        ("ftp://127.0.0.1/v1", "is not an http(s)://HOST/... URL"),
        ("localhost:8000/v1", "is not an http(s)://HOST/... URL"),
        ("http://127.0.0.1:99999/v1", "Port out of range"),
    ],
)
def test_a_base_url_that_is_not_http_is_refused_before_any_work(tmp_path, tasks_file, url, message):
    out = tmp_path / "p.jsonl"
    result = run("generate", str(tasks_file), "--base-url", url, "--model", "m", "--out", str(out), "-q")
    assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not out.exists()


def test_a_whole_run_never_records_or_shows_a_key(tmp_path, tasks_file):
    """The secret scan over a recipe run (tasks, a teacher's pairs, filter, review) with -v: no file of the run
    directory and no line on the terminal holds the key of the environment or the one in the base URL."""
    import yaml

    secret, key = "url-secret-9191", "sk-env-secret-9191"
    with StandinServer(Behaviour(error_rate=0.1, seed=3)) as server:
        url = server.url.replace("http://", f"http://user:{secret}@")
        recipe = tmp_path / "recipe" / "r.yaml"
        recipe.parent.mkdir()
        teacher = yaml.safe_load(write_recipe(tmp_path / "g.yaml", url).read_text())["generate"]
        recipe.write_text(yaml.safe_dump({
            "name": "scan", "tasks": {"source": "tasks", "path": str(tasks_file), "limit": 8},
            "generate": teacher, "filter": {}, "review": {"mode": "auto"},
        }))  # fmt: skip
        result = run("-v", "run", str(recipe), "--run-dir", str(tmp_path / "run"), key=key)
        bad = write_recipe(tmp_path / "bad.yaml", f"http://user:{secret}@127.0.0.1:99999/v1")
        refused = run("generate", str(tasks_file), "--recipe", str(bad), "--out", str(tmp_path / "x.jsonl"), key=key)
    assert result.returncode == 0, result.stderr
    assert refused.returncode == 2 and "Port out of range" in refused.stderr
    for text in (result.stdout, result.stderr, refused.stdout, refused.stderr):
        assert secret not in text and key not in text
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert len(files) > 5
    for path in files:
        assert secret.encode() not in path.read_bytes() and key.encode() not in path.read_bytes(), path


def test_a_key_the_server_echoes_back_is_never_shown_or_recorded(tmp_path, tasks_file):
    """A proxy that quotes the Authorization header in its errors: neither the one-line error nor the
    failures file nor a -v log line shows the key."""
    key = "sk-echoed-secret-5150"
    for status, code in ((501, 4), (503, 4)):
        with StandinServer(Behaviour(error_rate=1.0, error_status=status, echo_key=True)) as server:
            recipe = write_recipe(tmp_path / f"r{status}.yaml", server.url, max_attempts=2)
            out = tmp_path / f"p{status}.jsonl"
            result = run("-v", "generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "--limit", "3",
                         key=key)  # fmt: skip
        assert result.returncode == code, result.stderr[-2000:]
        assert "REDACTED" in result.stderr and key not in result.stderr + result.stdout
        for path in tmp_path.iterdir():
            if path.is_file():
                assert key.encode() not in path.read_bytes(), path
