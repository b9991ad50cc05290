"""`prefkit generate` through the OpenAI Batch API against the stand-in: failed lines, kill -9 between
submission and completion, a batch created but never recorded, one cache with online runs, input files for
vLLM's run-batch and their results read back, and the batch price."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from prefkit.generate import GenerateConfig, generate_file
from prefkit.jsonl import write_jsonl
from prefkit.stage import StageContext
from prefkit.teacher import batch as batch_module
from prefkit.testing.standin import Behaviour, StandinServer
from tests.conftest import tasks_of
from tests.generate_helpers import PREFKIT, lines, run

FAST = {"poll_seconds": 0.05}


@pytest.fixture()
def tasks_file(tmp_path, corpus_tasks):
    path = tmp_path / "tasks.jsonl"
    write_jsonl(path, tasks_of(corpus_tasks, "alfworld")[:40] + tasks_of(corpus_tasks, "react")[:20])
    return path


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


def config(url: str, strategy: str = "contrastive", **teacher) -> GenerateConfig:
    settings = {"base_url": url, "model": "teacher-model", "mode": "batch", "batch": FAST, **teacher}
    return GenerateConfig.model_validate({"strategy": strategy, "teacher": settings})


def ended(out: Path) -> tuple[list[str], list[str], list[str]]:
    """Task ids with a pair, skipped, failed."""
    return (
        [row["meta"]["task_id"] for row in lines(out)],
        [row["task_id"] for row in lines(out.with_name(out.stem + ".skipped.jsonl"))],
        [row["task_id"] for row in lines(out.with_name(out.stem + ".failures.jsonl"))],
    )


def task_ids(path: Path) -> list[str]:
    return [row["id"] for row in lines(path)]


def test_failed_lines_are_listed_as_failed_tasks_then_a_new_run_retries_them(tmp_path, tasks_file):
    with StandinServer(Behaviour(batch_delay=0.1, batch_fail_rate=0.05, seed=4)) as server:
        out = tmp_path / "pairs.jsonl"
        first = generate_file(config(server.url, batch={**FAST, "max_attempts": 1}), tasks_file, out)
        done, skipped, failed = ended(out)
        assert first["failed"] == len(failed) > 0  # about 5% of 120 lines failed: their tasks are listed
        assert sorted(done + skipped + failed) == sorted(task_ids(tasks_file))
        assert all("failed in 1 batches: 500" in row["error"] for row in lines(tmp_path / "pairs.failures.jsonl"))
        assert first["requests"] == 0 and server.stats.batches_created == 1  # nothing was asked online
        server.behaviour.batch_fail_rate = 0.0
        second = generate_file(config(server.url, batch={**FAST, "max_attempts": 1}), tasks_file, out)
    done, skipped, failed = ended(out)
    assert second["failed"] == 0 and not failed
    assert sorted(done + skipped) == sorted(task_ids(tasks_file))
    # The second run asked exactly the lines that had failed (the answered ones came from the cache).
    assert server.stats.batches_created == 2 and second["batches"][-1]["requests"] == first["batches"][0]["failed"]


def test_failed_lines_go_into_new_batches_until_every_task_has_its_pair(tmp_path, tasks_file):
    with StandinServer(Behaviour(batch_delay=0.05, batch_fail_rate=0.05, seed=4)) as server:
        out = tmp_path / "pairs.jsonl"
        report = generate_file(config(server.url), tasks_file, out)
    done, skipped, failed = ended(out)
    assert not failed and sorted(done + skipped) == sorted(task_ids(tasks_file))
    assert server.stats.batches_created >= 2  # the first batch's failed lines went into another
    failed_lines = sum(batch["failed"] for batch in report["batches"])
    distinct = report["batches"][0]["requests"]  # tasks with the same context share their requests
    assert failed_lines > 0 and sum(batch["requests"] for batch in report["batches"]) == distinct + failed_lines
    assert distinct == len(server.stats.batch_lines)


def test_failed_lines_can_be_retried_online(tmp_path, tasks_file):
    with StandinServer(Behaviour(batch_delay=0.05, batch_fail_rate=0.05, seed=4)) as server:
        out = tmp_path / "pairs.jsonl"
        report = generate_file(config(server.url, batch={**FAST, "retry": "online"}), tasks_file, out)
    assert server.stats.batches_created == 1 and report["failed"] == 0
    assert report["requests"] == report["batches"][0]["failed"]  # exactly the failed lines, asked online


def test_batch_and_online_runs_share_one_cache(tmp_path, tasks_file):
    restart = StageContext(resume=False)  # the output starts over, the answer cache stays
    with StandinServer(Behaviour(batch_delay=0.05)) as server:
        out = tmp_path / "pairs.jsonl"
        batched = generate_file(config(server.url), tasks_file, out)
        asked = sum(server.stats.completions.values())
        online = generate_file(config(server.url, mode="online"), tasks_file, out, ctx=restart)
        assert asked == batched["batches"][0]["requests"]  # every distinct request once, in the batch
        assert online["requests"] == 0 and online["cache_hits"] == 2 * 60  # both turns of every task, cached
        other = tmp_path / "other.jsonl"
        generate_file(config(server.url, mode="online"), tasks_file, other)
        again = generate_file(config(server.url), tasks_file, other, ctx=restart)
    assert again["batches"] == [] and server.stats.batches_created == 1  # all answers there: no batch at all
    assert batched["pairs"] == online["pairs"] == again["pairs"]
    assert sorted(row["id"] for row in lines(out)) == sorted(row["id"] for row in lines(other))


def test_kill_9_between_submission_and_completion_submits_nothing_twice(tmp_path, tasks_file):
    with StandinServer(Behaviour(batch_delay=2.0)) as server:
        recipe = tmp_path / "r.yaml"
        teacher = {"base_url": server.url, "model": "teacher-model", "mode": "batch", "batch": {"poll_seconds": 0.1}}
        recipe.write_text(json.dumps({"generate": {"strategy": "contrastive", "teacher": teacher}}))
        out = tmp_path / "pairs.jsonl"
        state = tmp_path / "pairs.batches" / "state.jsonl"
        command = [*PREFKIT, "generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "-q"]
        process = subprocess.Popen(command, env=dict(os.environ), stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not any(row.get("kind") == "submitted" for row in lines(state)) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert server.stats.batches_created == 1 and not lines(out)
        second = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "--json")
    assert second.returncode == 0, second.stderr
    assert "resuming 1 batch(es)" in second.stderr
    assert server.stats.batches_created == 1  # the recorded batch was followed, not submitted again
    submitted = [row for row in lines(state) if row["kind"] == "submitted"]
    assert max(server.stats.batch_lines.values()) == 1 and len(server.stats.batch_lines) == submitted[0]["requests"]
    done, skipped, failed = ended(out)
    assert sorted(done + skipped) == sorted(task_ids(tasks_file)) and not failed


class Killed(Exception):
    pass


def test_a_batch_created_but_killed_before_its_id_was_written_is_found_again(tmp_path, tasks_file, monkeypatch):
    record = batch_module.BatchRunner._record

    def dies_at_submitted(self, row):
        if row["kind"] == "submitted":
            raise Killed()  # the batch exists on the server; its id never reached the state log
        record(self, row)

    with StandinServer(Behaviour(batch_delay=0.05)) as server:
        out = tmp_path / "pairs.jsonl"
        monkeypatch.setattr(batch_module.BatchRunner, "_record", dies_at_submitted)
        with pytest.raises(Killed):
            generate_file(config(server.url), tasks_file, out)
        monkeypatch.setattr(batch_module.BatchRunner, "_record", record)
        report = generate_file(config(server.url), tasks_file, out)
    assert server.stats.batches_created == 1 and max(server.stats.batch_lines.values()) == 1
    assert report["failed"] == 0 and [batch["id"] for batch in report["batches"]] == ["batch_000001"]
    kinds = [row["kind"] for row in lines(tmp_path / "pairs.batches" / "state.jsonl")]
    assert kinds == ["input", "uploaded", "submitted", "finished"]


def vllm_run_batch(server: StandinServer, source: Path, target: Path, drop: int = 0, fail: int = 0) -> None:
    """What `vllm run-batch -i SOURCE -o TARGET` writes, answered by the stand-in: the first `drop` lines left
    out, the next `fail` answered with a 500."""
    rows = []
    for number, line in enumerate(source.read_text().splitlines()):
        request = json.loads(line)
        if number < drop:
            continue
        status, payload = (
            (500, b'{"error": {"message": "boom"}}') if number < drop + fail else server._complete(request["body"])
        )
        rows.append(
            {
                "id": f"vllm-{number}",
                "custom_id": request["custom_id"],
                "response": {"status_code": status, "request_id": f"r{number}", "body": json.loads(payload)},
                "error": None,
            }
        )
    write_jsonl(target, rows)


def test_input_files_for_vllm_run_batch_and_results_read_back(tmp_path, tasks_file):
    recipe = tmp_path / "r.yaml"
    # No server anywhere: --batch-file-only sends nothing.
    teacher = {"base_url": "http://127.0.0.1:9/v1", "model": "teacher-model"}
    recipe.write_text(json.dumps({"generate": {"strategy": "contrastive", "teacher": teacher}}))
    out = tmp_path / "pairs.jsonl"
    base = ["generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out)]
    written = run(*base, "--batch-file-only", "--json")
    assert written.returncode == 0, written.stderr
    report = json.loads(written.stdout)
    source = Path(report["batch_files"][0])
    requests = lines(source)
    ids = [request["custom_id"] for request in requests]
    assert report["waiting"] == 60 and 100 < len(requests) == len(set(ids)) <= 120 and not lines(out)
    assert set(requests[0]) == {"custom_id", "method", "url", "body"} and requests[0]["url"] == "/v1/chat/completions"
    assert run(*base, "--batch-file-only", "--json").stdout.count("input-0001.jsonl") == 1  # written once only
    no_url = ["generate", str(tasks_file), "--model", "teacher-model", "--out", str(tmp_path / "other.jsonl")]
    unnamed = run(*no_url, "--batch-file-only", "--json")  # no server, so no URL needed; the same requests
    assert unnamed.returncode == 0, unnamed.stderr
    assert len(lines(Path(json.loads(unnamed.stdout)["batch_files"][0]))) == len(requests)
    missing = run(*no_url[:2], "--out", str(tmp_path / "third.jsonl"), "--batch-file-only")
    assert missing.returncode == 2 and "teacher.model" in missing.stderr

    results = tmp_path / "results.jsonl"
    vllm_run_batch(StandinServer(), source, results, drop=2, fail=3)
    read = run(*base, "--batch-results", str(results), "--batch-file-only", "--json")
    assert read.returncode == 0, read.stderr
    report = json.loads(read.stdout)
    assert (
        55 <= report["pairs"] + report["skipped"] <= 58
        and report["waiting"] + report["pairs"] + report["skipped"] == 60
    )
    assert len(lines(Path(report["batch_files"][0]))) == 5  # only the 2 missing and 3 failed requests are left


def test_results_that_are_not_ours_are_refused_with_file_and_line(tmp_path, tasks_file):
    recipe = tmp_path / "r.yaml"
    teacher = {"base_url": "http://127.0.0.1:9/v1", "model": "teacher-model"}
    recipe.write_text(json.dumps({"generate": {"strategy": "contrastive", "teacher": teacher}}))
    out = tmp_path / "pairs.jsonl"
    base = ["generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "--batch-file-only"]
    assert run(*base).returncode == 0
    results = tmp_path / "results.jsonl"
    results.write_text('{"custom_id": "someone-else", "response": {"status_code": 200, "body": {}}}\n')
    refused = run(*base, "--batch-results", str(results))
    assert refused.returncode != 0
    assert refused.stderr.strip().startswith(f"error: {results}:1:") and "someone-else" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    results.write_text("not json\n")
    assert f"{results}:1:" in run(*base, "--batch-results", str(results)).stderr


def test_the_batch_price_is_used_for_batched_tokens(tmp_path, tasks_file):
    with StandinServer(Behaviour(batch_delay=0.05)) as server:
        prices = {"price_input_per_mtok": 10.0, "price_output_per_mtok": 30.0}
        batch = {**FAST, "price_input_per_mtok": 5.0, "price_output_per_mtok": 15.0}
        report = generate_file(config(server.url, batch=batch, **prices), tasks_file, tmp_path / "pairs.jsonl")
    assert report["batch_prompt_tokens"] == report["prompt_tokens"] > 0
    expected = (report["prompt_tokens"] * 5.0 + report["completion_tokens"] * 15.0) / 1e6
    assert report["cost"] == pytest.approx(round(expected, 4))


def judge_or_agent(body: dict, index: int) -> str:
    """Sampled turns of two qualities (both valid), and "A" when asked to judge."""
    if "Better candidate:" in body["messages"][-1]["content"]:
        return "A"
    if index == 0:
        return "THOUGHT: The cabinet may hold it.\nACTION: go to cabinet 1"
    return "THOUGHT: Well, let me think about this for a while, it might be anywhere.\nACTION: go to cabinet 2"


def test_judge_comparisons_make_a_second_round(tmp_path, tasks_file):
    with StandinServer(Behaviour(batch_delay=0.05, responder=judge_or_agent)) as server:
        cfg = config(server.url, strategy="sample-rank")
        cfg.sample_rank.judge, cfg.sample_rank.n, cfg.sample_rank.min_margin, cfg.limit = True, 2, 0.0, 10
        report = generate_file(cfg, tasks_file, tmp_path / "pairs.jsonl")
    # Round 1: the samples; round 2: the judge's comparisons of the valid ones, in both orders.
    assert [batch["status"] for batch in report["batches"]] == ["completed", "completed"]
    judged = [b for b in server.stats.bodies if "Better candidate:" in b["messages"][-1]["content"]]
    assert report["batches"][1]["requests"] == len(judged) > 0 and len(judged) % 2 == 0
    assert report["failed"] == 0 and report["waiting"] == 0
    done, skipped, failed = ended(tmp_path / "pairs.jsonl")
    assert len(done) + len(skipped) == 10 and done


def test_the_standin_batch_api_through_the_openai_sdk(tmp_path):
    from openai import AsyncOpenAI

    async def scenario(url: str) -> tuple:
        client = AsyncOpenAI(base_url=url, api_key="sk-test")
        body = {"model": "teacher-model", "messages": [{"role": "user", "content": "hi"}]}
        line = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": body})
        upload = await client.files.create(file=("in.jsonl", line.encode(), "application/jsonl"), purpose="batch")
        first = await client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        second = await client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        cancelled = await client.batches.cancel(second.id)
        page = await client.batches.list(limit=1)
        listed = [b.id async for b in client.batches.list(limit=1)]
        await asyncio.sleep(0.25)
        done = await client.batches.retrieve(first.id)
        output = (await client.files.content(done.output_file_id)).content
        await client.close()
        return first, cancelled, page, listed, done, output

    with StandinServer(Behaviour(batch_delay=0.2)) as server:
        first, cancelled, page, listed, done, output = asyncio.run(scenario(server.url))
    assert first.status == "in_progress" and cancelled.status == "cancelled"
    assert page.has_more and listed == ["batch_000002", "batch_000001"]  # newest first, page by page
    assert done.status == "completed" and done.request_counts.completed == 1
    answer = json.loads(output)
    assert answer["custom_id"] == "a" and answer["response"]["status_code"] == 200


def test_a_server_without_the_batch_api_is_one_line_that_says_what_to_do(tmp_path, tasks_file):
    with StandinServer(Behaviour(batch_api=False)) as server:
        recipe = tmp_path / "r.yaml"
        teacher = {"base_url": server.url, "model": "teacher-model", "mode": "batch"}
        recipe.write_text(json.dumps({"generate": {"strategy": "contrastive", "teacher": teacher}}))
        out = tmp_path / "pairs.jsonl"
        failed = run("generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out))
    assert failed.returncode != 0 and len(failed.stderr.strip().splitlines()) == 1
    assert "no Batch API" in failed.stderr and "--batch-file-only" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_the_corrupt_strategy_has_no_batches(tmp_path, tasks_file):
    refused = run(
        "generate", str(tasks_file), "--strategy", "corrupt", "--out", str(tmp_path / "p.jsonl"), "--batch-file-only"
    )
    assert refused.returncode != 0 and "asks no teacher" in refused.stderr


def test_input_files_are_split_by_lines_and_by_bytes(tmp_path, tasks_file):
    from prefkit.teacher.batch import BatchRequest, BatchRunner
    from prefkit.teacher.cache import ResponseCache
    from prefkit.teacher.client import Teacher, TeacherConfig

    def runner(**limits) -> BatchRunner:
        config = TeacherConfig(base_url="http://127.0.0.1:9/v1", model="m", batch={**FAST, **limits})
        folder = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
        return BatchRunner(Teacher(config), ResponseCache(folder / "c.sqlite"), folder)

    requests = {
        f"k{i}": BatchRequest(f"k{i}", [f"k{i}"], {"model": "m", "messages": [{"role": "user", "content": "x" * 900}]})
        for i in range(10)
    }
    by_lines = runner(max_requests=4).write_inputs(requests)
    assert [len(lines(path)) for path in by_lines] == [4, 4, 2]
    by_bytes = runner(max_bytes=3000).write_inputs(requests)  # each line is about 1 KB
    assert all(path.stat().st_size <= 3000 for path in by_bytes) and sum(len(lines(p)) for p in by_bytes) == 10
    assert len(by_bytes) == 5  # two lines of about 1,050 bytes a file
    with pytest.raises(Exception, match="more than teacher.batch.max_bytes"):
        runner(max_bytes=1024).write_inputs(requests)


def test_batch_file_only_refuses_while_a_submitted_batch_is_unfinished(tmp_path, tasks_file):
    with StandinServer(Behaviour(batch_delay=30)) as server:
        out = tmp_path / "pairs.jsonl"
        cfg = config(server.url)

        def stop_after_submitting(self, records):
            raise Killed()

        from unittest import mock

        with mock.patch.object(batch_module.BatchRunner, "_follow", stop_after_submitting), pytest.raises(Killed):
            generate_file(cfg, tasks_file, out)
        from prefkit.errors import ConfigError

        with pytest.raises(ConfigError, match="batch_000001 were submitted by an earlier run"):
            generate_file(cfg, tasks_file, out, batch_file_only=True)


def test_batch_paths_that_cannot_be_used_are_one_line_and_leave_inputs_alone(tmp_path, tasks_file):
    recipe = tmp_path / "r.yaml"
    teacher = {"base_url": "http://127.0.0.1:9/v1", "model": "teacher-model"}
    recipe.write_text(json.dumps({"generate": {"strategy": "contrastive", "teacher": teacher}}))
    out = tmp_path / "pairs.jsonl"
    base = ["generate", str(tasks_file), "--recipe", str(recipe), "--out", str(out), "--batch-file-only"]
    before = tasks_file.read_bytes()
    (tmp_path / "pairs.batches").write_text("mine")  # a file where the batch folder would go
    refused = run(*base)
    assert refused.returncode == 2 and "is a file; give a folder" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    (tmp_path / "pairs.batches").unlink()
    (tmp_path / "pairs.batches").mkdir()
    (tmp_path / "pairs.batches" / "notes.txt").write_text("the user's")
    refused = run(*base)
    assert refused.returncode == 2 and "prefkit did not write" in refused.stderr
    assert (tmp_path / "pairs.batches" / "notes.txt").read_text() == "the user's"
    (tmp_path / "pairs.batches" / "notes.txt").unlink()
    assert run(*base).returncode == 0
    same = run(*base, "--batch-results", str(out))  # the output given as results
    assert same.returncode == 2 and len(same.stderr.strip().splitlines()) == 1
    folder = run(*base, "--batch-results", str(tmp_path))  # a folder given as results
    assert folder.returncode != 0 and "Traceback" not in folder.stderr
    assert len(folder.stderr.strip().splitlines()) == 1
    assert tasks_file.read_bytes() == before
