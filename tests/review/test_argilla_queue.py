"""push / status / pull against a real argilla-server 2.8 (SQL-backed search engine, Redis, SQLite)."""

from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner

from prefkit.cli import cli
from prefkit.errors import ServerError
from prefkit.jsonl import read_jsonl
from prefkit.review.argilla_queue import Connection, push, resolve_connection, status
from prefkit.review.serve import free_port

pytestmark = pytest.mark.slow


def _server_ids(owner, dataset_name: str) -> dict[str, str]:
    dataset = owner.datasets(name=dataset_name, workspace="prefkit")
    return {record.id: record._server_id for record in dataset.records(with_responses=False)}


def _answer(client, server_id, label: str, status: str = "submitted", correction: str | None = None) -> None:
    """One annotator's response, through the SDK's own API client, signed in as that annotator."""
    from argilla._models import UserResponseModel

    values = {"preference": {"value": label}}
    if correction:
        values["correction"] = {"value": correction}
    client.api.records.create_record_response(
        server_id, UserResponseModel(values=values, status=status, user_id=client.me.id)
    )


def test_push_creates_a_review_dataset_with_pair_ids_hidden_order_and_suggestions(owner, connection, pairs):
    result = push(pairs[:12], connection, "push-basic")
    assert (result["added"], result["updated"], result["dataset_created"]) == (12, 0, True)
    dataset = owner.datasets(name="push-basic", workspace="prefkit")
    assert [f.name for f in dataset.settings.fields] == ["prompt", "response_a", "response_b"]
    assert {q.name for q in dataset.settings.questions} == {"preference", "correction", "comment"}
    assert "Both bad" in dataset.settings.guidelines
    order = dataset.settings.metadata["order"]
    assert order.visible_for_annotators is False
    records = {record.id: record for record in dataset.records(with_suggestions=True)}
    assert set(records) == {row["id"] for row in pairs[:12]}
    for row in pairs[:12]:
        record = records[row["id"]]
        first = "chosen" if record.metadata["order"] == "chosen-first" else "rejected"
        assert record.fields["response_a"] == row[first][-1]["content"]
        assert json.loads(record.metadata["prefkit_pair"]) == row  # the whole pair, meta included
        suggestion = record.suggestions["preference"]
        assert suggestion.agent == "prefkit-rules" and 0.5 <= suggestion.score <= 1
        # Corpus pairs: the real turn is chosen, so the rules should prefer whichever side shows it.
        assert suggestion.value == ("a_better" if first == "chosen" else "b_better")
    assert {records[row["id"]].metadata["order"] for row in pairs[:12]} == {"chosen-first", "rejected-first"}


def test_pushing_again_updates_records_and_keeps_responses(owner, connection, annotators, pairs):
    push(pairs[:6], connection, "push-twice")
    ids = _server_ids(owner, "push-twice")
    _answer(annotators["ann1"], ids[pairs[0]["id"]], "a_better")
    orders = {r.id: r.metadata["order"] for r in owner.datasets(name="push-twice", workspace="prefkit").records()}
    changed = [dict(row, meta=dict(row["meta"], note="second push")) for row in pairs[:6]]
    result = push(changed + pairs[6:8], connection, "push-twice", seed=12345)  # another seed: same A/B as before
    assert (result["added"], result["updated"], result["dataset_created"]) == (2, 6, False)
    dataset = owner.datasets(name="push-twice", workspace="prefkit")
    records = list(dataset.records(with_responses=True))
    assert len(records) == 8 and len({record.id for record in records}) == 8
    by_id = {record.id: record for record in records}
    assert json.loads(by_id[pairs[1]["id"]].metadata["prefkit_pair"])["meta"]["note"] == "second push"
    assert [r.value for r in by_id[pairs[0]["id"]].responses if r.question_name == "preference"] == ["a_better"]
    assert {pair_id: by_id[pair_id].metadata["order"] for pair_id in orders} == orders


def _expected(row: dict, order: str, label: str) -> tuple[str, str]:
    """(chosen, rejected) contents after a decision, from the recorded order."""
    a, b = (row["chosen"], row["rejected"]) if order == "chosen-first" else (row["rejected"], row["chosen"])
    better, worse = (a, b) if label == "a_better" else (b, a)
    return better[-1]["content"], worse[-1]["content"]


def test_pull_maps_answers_back_through_the_recorded_order(owner, connection, annotators, pairs, tmp_path):
    rows = pairs[20:32]
    push(rows, connection, "pull-cases")
    ids = _server_ids(owner, "pull-cases")
    orders = {
        record.id: record.metadata["order"]
        for record in owner.datasets(name="pull-cases", workspace="prefkit").records()
    }
    a1, a2, a3 = annotators["ann1"], annotators["ann2"], annotators["ann3"]
    r = [row["id"] for row in rows]
    _answer(a1, ids[r[0]], "a_better")  # A better
    _answer(a1, ids[r[1]], "b_better")  # B better
    _answer(a1, ids[r[2]], "tie")  # tie -> dropped
    _answer(a1, ids[r[3]], "both_bad")  # both bad, no correction -> dropped
    _answer(a1, ids[r[4]], "both_bad", correction='Thought: fixed.\nAction: Answer\nFinal Answer: ["x"]')
    for client in (a1, a2):  # majority 2 of 3
        _answer(client, ids[r[5]], "b_better")
    _answer(a3, ids[r[5]], "a_better")
    _answer(a1, ids[r[6]], "a_better")  # 1-1 split -> undecided, dropped
    _answer(a2, ids[r[6]], "b_better")
    _answer(a1, ids[r[7]], "a_better", status="draft")  # a draft is not an answer yet
    _answer(a1, ids[r[8]], "a_better", status="discarded")  # nor is a discarded record
    for client in (a1, a2, a3):  # unanimous, three annotators
        _answer(client, ids[r[9]], "a_better")

    result = CliRunner().invoke(
        cli,
        [
            "review",
            "pull",
            "--dataset",
            "pull-cases",
            "--out",
            str(tmp_path / "rev.jsonl"),
            "--api-url",
            connection.api_url,
            "--api-key",
            connection.api_key,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    kept = {row["id"]: row for row in read_jsonl(tmp_path / "rev.jsonl")}
    dropped = {row["id"]: row for row in read_jsonl(tmp_path / "rev.dropped.jsonl")}
    assert set(kept) == {r[0], r[1], r[4], r[5], r[9]}
    assert set(dropped) == {r[2], r[3], r[6]}
    for index, label in ((0, "a_better"), (1, "b_better"), (5, "b_better"), (9, "a_better")):
        row, out = rows[index], kept[r[index]]
        assert (out["chosen"][-1]["content"], out["rejected"][-1]["content"]) == _expected(row, orders[r[index]], label)
        assert out["meta"]["review"]["order"] == orders[r[index]]
        assert out["prompt"] == row["prompt"]
        assert {k: v for k, v in out["meta"].items() if k != "review"} == row["meta"]  # nothing lost
    corrected = kept[r[4]]
    assert corrected["chosen"][-1]["content"].startswith("Thought: fixed.")
    assert corrected["rejected"] == rows[4]["chosen"] and corrected["meta"]["review"]["corrected"] is True
    assert kept[r[5]]["meta"]["review"]["agreement"] == pytest.approx(2 / 3)
    assert [a["annotator"] for a in kept[r[5]]["meta"]["review"]["answers"]] == ["ann1", "ann2", "ann3"]
    assert dropped[r[2]]["meta"]["review"]["label"] == "tie"
    assert dropped[r[6]]["meta"]["review"]["label"] is None
    counts = report["counts"]
    assert counts["pending"] == 4 and counts["draft_responses"] == 1 and counts["discarded_responses"] == 1
    assert counts["kept_corrected"] == 1 and counts["dropped_tie"] == 1 and counts["dropped_undecided"] == 1
    assert report["agreement"]["pairs_with_several_answers"] == 3
    assert "ann1|ann2" in report["agreement"]["cohen_kappa"]


def test_status_reports_progress_per_annotator(connection, owner, annotators, pairs):
    push(pairs[40:45], connection, "status-demo", annotators_per_pair=2)
    ids = list(_server_ids(owner, "status-demo").values())
    for server_id in ids[:2]:
        _answer(annotators["ann1"], server_id, "a_better")
        _answer(annotators["ann2"], server_id, "tie")
    _answer(annotators["ann2"], ids[2], "a_better", status="discarded")
    _answer(annotators["ann3"], ids[3], "a_better")  # one of two answers: still pending
    progress = status(connection, "status-demo")
    assert (progress["total"], progress["completed"], progress["pending"]) == (5, 2, 3)
    assert progress["users"]["ann1"] == {"submitted": 2, "draft": 0, "discarded": 0}
    assert progress["users"]["ann2"] == {"submitted": 2, "draft": 0, "discarded": 1}
    result = CliRunner().invoke(
        cli,
        [
            "review",
            "status",
            "--dataset",
            "status-demo",
            "--api-url",
            connection.api_url,
            "--api-key",
            connection.api_key,
        ],
    )
    assert result.exit_code == 0 and "2 of 5 pairs completed" in " ".join(result.output.split())


def test_credentials_come_from_the_data_dir_and_are_private(argilla_server, pairs, tmp_path, monkeypatch):
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    path = argilla_server.data_dir / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    credentials = json.loads(path.read_text())
    assert credentials["password"] not in ("12345678", "argilla", "1234") and len(credentials["api_key"]) >= 32
    assert credentials["api_key"] != "argilla.apikey" and credentials["url"] == argilla_server.url
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(row) + "\n" for row in pairs[50:53]))
    result = CliRunner().invoke(
        cli,
        [
            "review",
            "push",
            str(tmp_path / "in.jsonl"),
            "--dataset",
            "via-data-dir",
            "--data-dir",
            str(argilla_server.data_dir),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert credentials["api_key"] not in result.output and credentials["password"] not in result.output
    assert status(resolve_connection(data_dir=argilla_server.data_dir), "via-data-dir")["total"] == 3


@pytest.mark.parametrize("command", [["push", "IN"], ["pull", "--out", "OUT"], ["status"]])
def test_a_server_that_is_down_is_one_clear_line_and_nothing_written(command, pairs, tmp_path):
    (tmp_path / "in.jsonl").write_text(json.dumps(pairs[0]) + "\n")
    args = [
        str(tmp_path / "in.jsonl") if a == "IN" else str(tmp_path / "out.jsonl") if a == "OUT" else a for a in command
    ]
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(cli, ["review", *args, "--dataset", "x", "--api-url", url, "--api-key", "k"])
    assert result.exit_code == ServerError.exit_code
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the Argilla server at " + url)
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.dropped.jsonl").exists()


def test_a_wrong_api_key_and_a_missing_dataset_are_clear_errors(connection, tmp_path):
    bad = Connection(connection.api_url, "not-the-key")
    with pytest.raises(ServerError, match="rejected the API key"):
        status(bad, "anything")
    result = CliRunner().invoke(
        cli,
        [
            "review",
            "pull",
            "--dataset",
            "never-pushed",
            "--out",
            str(tmp_path / "o.jsonl"),
            "--api-url",
            connection.api_url,
            "--api-key",
            connection.api_key,
        ],
    )
    assert result.exit_code == 2 and "no dataset 'never-pushed'" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_long_contexts_tool_calls_and_odd_roles_are_pushed_whole(owner, connection, pairs, tmp_path):
    call = {"id": "c1", "type": "function", "function": {"name": "execute_sql", "arguments": '{"sql": "SELECT 1"}'}}
    observation = "row " * 15_000  # 60,000 characters: over Argilla's 20,000 per chat message
    row = dict(
        pairs[0],
        id=None,
        prompt=[
            {"role": "system", "content": "Use the tools."},
            {"role": "user", "content": "How many rows?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": observation},
            {"role": "environment-observation-with-a-long-name", "content": ""},
        ],
        chosen=[{"role": "assistant", "content": None, "tool_calls": [call]}],
        rejected=[{"role": "assistant", "content": "Sure! " + observation}],
    )
    from prefkit.records import ensure_pair_id

    row = ensure_pair_id(row)
    push([row], connection, "odd-pairs")
    record = next(iter(owner.datasets(name="odd-pairs", workspace="prefkit").records()))
    messages = record.fields["prompt"]
    assert [m.role for m in messages][:4] == ["system", "user", "assistant", "tool"]
    assert 'execute_sql({"sql": "SELECT 1"})' in messages[2].content
    assert "characters not shown" in messages[3].content and len(messages[3].content) <= 20_000
    assert messages[4].content == "(empty)" and len(messages[4].role) <= 20
    assert json.loads(record.metadata["prefkit_pair"]) == row  # the whole pair, long texts included


def test_add_annotator_creates_an_account_whose_password_stays_in_a_private_file(connection, owner, tmp_path):
    import urllib.request

    args = [
        "review",
        "add-annotator",
        "reviewer-x",
        "--api-url",
        connection.api_url,
        "--api-key",
        connection.api_key,
        "--data-dir",
        str(tmp_path),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    path = tmp_path / "annotators" / "reviewer-x.json"
    credentials = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and credentials["password"] not in result.output
    assert owner.users(username="reviewer-x").role == "annotator"
    assert "reviewer-x" in [member.username for member in owner.workspaces(name="prefkit").users]
    # The generated password signs in (Argilla's token endpoint).
    request = urllib.request.Request(
        f"{connection.api_url}/api/v1/token",
        method="POST",
        data=(f"username=reviewer-x&password={credentials['password']}").encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert "access_token" in json.loads(response.read())
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and "already has an account" in again.output
    assert json.loads(path.read_text()) == credentials  # not overwritten


HOSTILE_NAMES = ["..", "/", "a/b", "../credentials", "../../etc/evil", "a\0b", "x" * 300, "Alice", "-lead", ""]


def test_add_annotator_with_hostile_names_changes_nothing(connection, owner, argilla_server, tmp_path):
    """Names that break Argilla's username rule, climb out of the folder or are the owner's own account are
    refused with one line, and nothing on disk or on the server changes."""
    data_dir = tmp_path / "data"
    (data_dir / "annotators").mkdir(parents=True)
    (data_dir / "credentials.json").write_text('{"username": "owner", "api_key": "the only copy"}\n')
    before = {str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    users_before = sorted(user.username for user in owner.users)
    for name in [*HOSTILE_NAMES, argilla_server.credentials["username"]]:
        result = CliRunner().invoke(
            cli,
            ["review", "add-annotator", "--api-url", connection.api_url, "--api-key", connection.api_key,
             "--data-dir", str(data_dir), "--", name],
        )  # fmt: skip
        assert result.exit_code == 2, (name, result.output)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, (name, result.stderr)
        assert result.exception is None or isinstance(result.exception, SystemExit)
    assert {str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert sorted(user.username for user in owner.users) == users_before


def test_pull_onto_a_full_disk_is_one_line_and_leaves_nothing_partial(owner, connection, annotators, pairs, tmp_path):
    from tests.output_helpers import assert_one_error_line, full_disk, nothing_partial, prefkit

    rows = pairs[60:64]
    push(rows, connection, "pull-full-disk")
    ids = _server_ids(owner, "pull-full-disk")
    for row in rows:
        _answer(annotators["ann1"], ids[row["id"]], "a_better")
    argv = ["review", "pull", "--dataset", "pull-full-disk", "--api-url", connection.api_url, "--api-key",
            connection.api_key]  # fmt: skip
    with full_disk(tmp_path, free=0) as (folder, preexec):
        result = prefkit([*argv, "--out", str(folder / "reviewed.jsonl")], tmp_path, preexec)
        assert_one_error_line(result, 1, "reviewed.jsonl")
        nothing_partial(folder, "review pull")
        assert not (folder / "reviewed.jsonl").exists()
    assert connection.api_key not in result.stderr
