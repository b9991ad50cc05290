"""DBBench as AgentBench v0.2 plays and grades it (THUDM/AgentBench 41e6807, src/server/tasks/dbbench/), on both
engines: gold replays, the grading of typical failures, observations as AgentBench's client writes them,
isolation, the statement time limit and the server's life."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from prefkit.envs.dbbench.config import DBBenchConfig
from prefkit.envs.dbbench.engines import quoted
from prefkit.envs.dbbench.env import COMPLETED, TASK_LIMIT, VALIDATION_FAILED, answer_matches
from tests.conftest import CORPUS

DEV = CORPUS / "agentbench/dbbench_dev.jsonl"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def turn(text):
    return {"role": "assistant", "content": text}


def operation(sql):
    return turn(f"Thought: I will run it.\nAction: Operation\n```sql\n{sql}\n```")


def answer(values):
    return turn(f"Thought: done.\nAction: Answer\nFinal Answer: {json.dumps(values)}")


def gold(entry):
    kind = entry["type"][0]
    return entry["label"][0] if kind in ("INSERT", "UPDATE", "DELETE") else entry["sql"]["query"]


@pytest.fixture(scope="module")
def mariadb():
    with DBBenchConfig(engine="mariadb", statement_timeout=2).open(Path(DEV)) as env:
        yield env


@pytest.fixture(scope="module")
def sqlite():
    with DBBenchConfig(engine="sqlite", statement_timeout=2).open(Path(DEV)) as env:
        yield env


def replay(env, task_id, turns):
    episode = env.start(task_id)
    try:
        steps = [episode.step(message) for message in turns if not episode.done]
        return episode, steps, episode.grade()
    finally:
        episode.close()


def first(env, kind):
    return next(task_id for task_id, entry in env.entries.items() if entry["type"][0] == kind)


def test_opening_messages_are_agentbenchs(sqlite):
    task_id = sqlite.task_ids()[0]
    entry = sqlite.entries[task_id]
    episode = sqlite.start(task_id)
    episode.close()
    assert [m["role"] for m in episode.messages] == ["user", "assistant", "user"]
    assert episode.messages[0]["content"].startswith("\nI will ask you a question, then you should help me operate")
    assert episode.messages[1]["content"] == "Ok."
    assert episode.messages[2]["content"] == entry["description"] + "\n" + entry["add_description"]


def test_task_ids_are_the_ones_prefkit_tasks_gives(sqlite):
    from prefkit.tasks import load_tasks

    assert sqlite.task_ids() == [task["id"] for task in load_tasks(DEV, "agentbench")]


@pytest.mark.slow
def test_every_gold_solution_succeeds_on_mariadb(mariadb):
    outcomes = []
    for task_id, entry in mariadb.entries.items():
        _, steps, outcome = replay(mariadb, task_id, [operation(gold(entry)), answer(entry["label"])])
        assert outcome.success and outcome.status == COMPLETED, (task_id, steps[0].observation, outcome.result)
        outcomes.append((task_id, outcome))
    assert len(outcomes) == 60
    metrics = mariadb.summarise(outcomes)
    assert metrics["overall_cat_accuracy"] == 1.0 and metrics["INSERT_accuracy"] == metrics["UPDATE_accuracy"] == 1.0


def test_gold_solutions_on_sqlite_and_the_gold_sql_sqlite_cannot_run(sqlite):
    """Every modification's gold SQL runs on SQLite and reproduces answer_md5; the SELECT-type tasks grade by
    their answer, and the gold queries SQLite refuses (WikiSQL's, not valid SQL there either) are listed."""
    refused = {}
    for task_id, entry in sqlite.entries.items():
        _, steps, outcome = replay(sqlite, task_id, [operation(gold(entry)), answer(entry["label"])])
        assert outcome.success, (task_id, outcome.result)
        if not steps[0].observation.startswith("["):
            refused[task_id] = steps[0].observation
    kinds = {sqlite.entries[task_id]["type"][0] for task_id in refused}
    assert refused and not kinds & {"INSERT", "UPDATE", "DELETE"}
    assert len(refused) == 8, refused  # the list is in docs/environments.md


def test_a_wrong_final_answer_completes_and_fails(sqlite):
    task_id = first(sqlite, "counting")
    _, _, outcome = replay(sqlite, task_id, [answer(["-1"])])
    assert outcome.status == COMPLETED and not outcome.success and outcome.result["answer"] == ' ["-1"]'


def test_a_wrong_update_fails_by_the_table_hash(sqlite):
    task_id = first(sqlite, "UPDATE")
    entry = sqlite.entries[task_id]
    table = entry["table"]["table_name"]
    column = entry["table"]["table_info"]["columns"][0]["name"]
    _, steps, outcome = replay(
        sqlite, task_id, [operation(f"UPDATE `{table}` SET `{column}` = 'wrong'"), answer(["done"])]
    )
    assert steps[0].observation == "[]" and outcome.status == COMPLETED and not outcome.success
    assert outcome.result["answer"] != entry["answer_md5"] and outcome.result["answer"].startswith("[('")


def test_a_turn_with_no_action_fails_validation(sqlite):
    task_id = first(sqlite, "counting")
    _, steps, outcome = replay(sqlite, task_id, [turn("Sure! Let me think about the table first.")])
    assert outcome.status == VALIDATION_FAILED and not outcome.success and steps[0].done
    assert not steps[0].accepted and "format.missing_action" in steps[0].violations


def test_an_operation_without_a_sql_block_fails_validation(sqlite):
    task_id = first(sqlite, "counting")
    _, steps, outcome = replay(sqlite, task_id, [turn("Action: Operation\nSELECT 1;")])
    assert outcome.status == VALIDATION_FAILED and steps[0].observation is None


def test_six_rounds_of_queries_reach_the_task_limit(sqlite):
    """max_round 5: five statements run; the sixth operation ends the episode (task limit reached)."""
    task_id = first(sqlite, "counting")
    episode, steps, outcome = replay(sqlite, task_id, [operation("SELECT 1")] * 7)
    assert len(steps) == 6 and [s.observation for s in steps[:5]] == ["[(1,)]"] * 5
    assert steps[5].observation is None and steps[5].done
    assert outcome.status == TASK_LIMIT and not outcome.success and outcome.result["rounds"] == 5


def test_a_final_answer_after_the_round_limit_still_counts(sqlite):
    task_id = first(sqlite, "counting")
    label = sqlite.entries[task_id]["label"]
    _, _, outcome = replay(sqlite, task_id, [operation("SELECT 1")] * 5 + [answer(label)])
    assert outcome.status == COMPLETED and outcome.success


@pytest.mark.parametrize(
    "answer_text,label,expected",
    [
        (' ["17"]', ["17"], True),
        (" 17", ["17"], True),  # list(17) fails: [" 17"], compared as floats
        (" [17.0]", ["17"], True),
        (' ["a", "b"]', ["b", "a"], True),  # several values compare as sets
        (' ["a", "a", "b"]', ["b", "a"], True),
        (" 'abc'", ["abc"], False),  # list('abc') is its characters
        (' ["1,000"]', ["1000"], False),
        (" [2 * 3]", ["6"], True),  # eval computes it
        (" [__import__('os').getcwd()]", ["x"], False),  # not evaluated here; AgentBench would run it
        ("", ["x"], False),
    ],
)
def test_answers_compare_as_agentbenchs_metric(answer_text, label, expected):
    assert answer_matches(answer_text, label) is expected


# AgentBench v0.2 src/server/tasks/dbbench/Interaction.py Container.execute, written out to compare with: the same
# client calls on the same server and database.
def agentbench_execute(connection, sql, database):
    connection.reconnect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"use `{database}`;")
            cursor.fetchall()
            cursor.execute(sql, (), multi=True)
            result = str(cursor.fetchall())
        connection.commit()
    except Exception as error:
        result = str(error)
    if len(result) > 800:
        result = result[:800] + "[TRUNCATED]"
    return result


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1, 2 + 3, -7",
        "SELECT 'text', 'it''s', NULL",
        "SELECT AVG(CAST(1 AS DECIMAL(10,2))), SUM(2.5), COUNT(*)",
        "SELECT nope FROM nowhere",
        "SELEC 1",
        "SELECT REPEAT('x', 2000)",
        "SELECT 1; SELECT 2",
    ],
)
def test_mariadb_observations_are_agentbenchs_character_for_character(mariadb, sql):
    import mysql.connector

    task_id = first(mariadb, "counting")
    episode = mariadb.start(task_id)
    try:
        episode.prepare()
        database = episode.database.database
        step = episode.step(operation(sql))
        reference = mysql.connector.connect(**mariadb._engine.targets[0])
        try:
            expected = agentbench_execute(reference, sql, database)
        finally:
            reference.close()
        assert step.observation == expected
    finally:
        episode.close()
    assert len(step.observation) <= 800 + len("[TRUNCATED]")


def test_mariadb_observations_of_the_tasks_own_table(mariadb):
    task_id = first(mariadb, "counting")
    entry = mariadb.entries[task_id]
    table = entry["table"]["table_name"]
    _, steps, _ = replay(mariadb, task_id, [operation(f"SELECT COUNT(*) FROM `{table}`"), operation("SELECT * FROM x")])
    assert steps[0].observation == f"[({len(entry['table']['table_info']['rows'])},)]"
    assert steps[1].observation == f"1146 (42S02): Table '{table}.x' doesn't exist"  # the database is the table's


def test_episodes_are_isolated_while_they_run_side_by_side(mariadb):
    update, counting = first(mariadb, "UPDATE"), first(mariadb, "counting")
    table = mariadb.entries[counting]["table"]["table_name"]
    a, b = mariadb.start(update), mariadb.start(counting)
    try:
        a.prepare()
        b.prepare()
        wrecked = a.step(operation(f"DROP TABLE `{mariadb.entries[update]['table']['table_name']}`"))
        assert wrecked.observation == "[]"
        assert b.step(operation(f"SELECT COUNT(*) > 0 FROM `{table}`")).observation == "[(1,)]"
    finally:
        a.close()
        b.close()


def test_two_episodes_of_one_task_take_turns_and_each_starts_fresh(mariadb):
    task_id = first(mariadb, "UPDATE")
    table = mariadb.entries[task_id]["table"]["table_name"]
    first_episode = mariadb.start(task_id)
    first_episode.step(operation(f"DELETE FROM `{table}`"))
    seen = []

    def second():
        episode = mariadb.start(task_id)  # waits for the first to close
        seen.append(episode.step(operation(f"SELECT COUNT(*) FROM `{table}`")).observation)
        episode.close()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)
    assert not seen  # still waiting
    first_episode.close()
    thread.join(timeout=30)
    rows = len(mariadb.entries[task_id]["table"]["table_info"]["rows"])
    assert seen == [f"[({rows},)]"]


@pytest.mark.parametrize("engine", ["mariadb", "sqlite"])
def test_a_runaway_query_is_cut_by_the_time_limit(request, engine):
    env = request.getfixturevalue(engine)
    task_id = first(env, "counting")
    runaway = {  # ten billion rows joined; MariaDB caps recursive CTEs at 1000 iterations, so its own sequences
        "mariadb": "SELECT COUNT(*) FROM seq_1_to_100000 a JOIN seq_1_to_100000 b ON a.seq + b.seq = 7",
        "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1e11) "
        "SELECT COUNT(*) FROM n",
    }[engine]
    started = time.monotonic()
    _, steps, _ = replay(env, task_id, [operation(runaway)])
    assert time.monotonic() - started < 20
    observation = steps[0].observation
    assert ("max_statement_time" in observation) if engine == "mariadb" else observation.startswith("interrupted")


SERVER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from prefkit.envs.dbbench.config import DBBenchConfig
    env = DBBenchConfig(engine="mariadb").open(Path(sys.argv[1]))
    try:  # the signal may come the moment the line is out
        print(env._engine.servers[0]._process.pid, env._engine.servers[0].folder, flush=True)
        time.sleep(120)
    finally:
        env.close()
    """
)


def _gone(pid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            with open(f"/proc/{pid}/stat") as stat:  # a zombie nobody has reaped yet counts as gone
                if stat.read().split()[2] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "kill-9"])
def test_the_server_prefkit_started_is_gone_after_ctrl_c_and_after_the_parent_is_killed(tmp_path, how):
    child = subprocess.Popen([sys.executable, "-c", SERVER_SCRIPT, str(DEV)], stdout=subprocess.PIPE, text=True)
    server_pid, folder = child.stdout.readline().split()
    child.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
    child.wait(timeout=60)
    assert _gone(int(server_pid)), "mariadbd still runs"
    if how == "ctrl-c":
        assert not os.path.exists(folder)
    else:  # the next start removes what a killed run left
        with DBBenchConfig(engine="mariadb").open(Path(DEV)):
            assert not os.path.exists(folder)


def test_the_server_is_gone_after_the_run():
    env = DBBenchConfig(engine="mariadb").open(Path(DEV))
    server = env._engine.servers[0]
    pid, folder = server._process.pid, server.folder
    env.close()
    assert _gone(pid) and not folder.exists()


def test_with_enough_servers_two_episodes_of_one_task_run_side_by_side():
    with DBBenchConfig(engine="mariadb").open(Path(DEV), concurrency=40) as env:  # 59 table names: 1 + 1 spare
        assert len(env._engine.servers) == 2
        task_id = first(env, "UPDATE")
        table = env.entries[task_id]["table"]["table_name"]
        a, b = env.start(task_id), env.start(task_id)
        try:
            a.prepare()
            b.prepare()  # does not wait for a
            assert a.database.target != b.database.target
            a.step(operation(f"DELETE FROM `{table}`"))
            rows = len(env.entries[task_id]["table"]["table_info"]["rows"])
            assert b.step(operation(f"SELECT COUNT(*) FROM `{table}`")).observation == f"[({rows},)]"
        finally:
            a.close()
            b.close()


def test_a_task_set_of_another_shape_plays_by_the_same_rules(tmp_path):
    """A JSON list (AgentBench reads .json that way), a DELETE task (graded by the table hash, counted under
    SELECT by AgentBench's metric), a task with no rows and a label of several values."""
    rows = [["a", "1"], ["b", None], ["c", "3"]]
    table = {"table_name": "things", "table_info": {"columns": [{"name": "name"}, {"name": "n"}], "rows": rows}}
    empty = {"table_name": "empty", "table_info": {"columns": [{"name": "x"}], "rows": []}}
    delete = {"description": "Delete b.", "add_description": "", "type": ["DELETE"], "table": table,
              "label": ["DELETE FROM things WHERE name = 'b'"], "answer_md5": ""}  # fmt: skip
    from prefkit.envs.dbbench.engines import SQLiteEngine

    db = SQLiteEngine().create(delete)  # the hash the gold DELETE leaves
    db.execute(delete["label"][0])
    delete["answer_md5"] = db.table_hash()
    db.close()
    several = {"description": "Names?", "add_description": "", "type": ["SELECT"], "table": table,
               "label": ["a", "c"]}  # fmt: skip
    nothing = {"description": "Rows?", "add_description": "", "type": ["counting"], "table": empty, "label": ["0"]}
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([delete, several, nothing]))
    with DBBenchConfig(engine="sqlite").open(Path(path)) as env:
        ids = env.task_ids()
        _, _, deleted = replay(env, ids[0], [operation(delete["label"][0]), answer(["done"])])
        _, _, names = replay(env, ids[1], [answer(["c", "a"])])
        _, steps, counted = replay(env, ids[2], [operation("SELECT COUNT(*) FROM empty"), answer(["0"])])
        assert deleted.success and names.success and counted.success and steps[0].observation == "[(0,)]"
        metrics = env.summarise([(ids[0], deleted), (ids[1], names), (ids[2], counted)])
    assert metrics["SELECT_accuracy"] == 1.0 and metrics["INSERT_accuracy"] == 0.0  # no INSERT task: 0, as there


def test_a_task_without_its_type_is_one_line_naming_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"description": "q", "table": {"table_name": "t", "table_info": {}}}) + "\n")
    from prefkit.errors import InputError

    with pytest.raises(InputError, match="bad.jsonl:1"):
        DBBenchConfig(engine="sqlite").open(Path(path))


def test_the_react_parser_accepts_exactly_the_turns_the_episode_loop_acts_on(sqlite):
    """The format's `accepted` (prefkit/formats/react.py, dbbench style) and the environment's loop read the
    same AgentBench code: on turns and their corruptions and random one-character edits, they agree."""
    import random

    from prefkit.corruptions import KINDS, corrupt
    from prefkit.formats import ActionSpec

    rng, spec = random.Random(0), ActionSpec(style="dbbench")
    texts = [
        "Thought: x\nAction: Operation\n```sql\nSELECT 1\n```",
        'Thought: y\nAction: Answer\nFinal Answer: ["1"]',
        "Action: Operation\n```sql\nSELECT 1\n```\nAction: Answer\nFinal Answer: [1]",
    ]
    for text in list(texts):
        for kind in KINDS:
            bad = corrupt({"role": "assistant", "content": text}, "react", kind, rng, spec)
            if bad:
                texts.append(bad["content"])
    for text in list(texts):
        for _ in range(6):
            chars, at = list(text), rng.randrange(len(text))
            chars.insert(at, rng.choice(["\n", " ", chars[at]])) if rng.random() < 0.7 else chars.pop(at)
            texts.append("".join(chars))
    task_id = first(sqlite, "counting")
    for text in texts:
        episode = sqlite.start(task_id)
        step = episode.step(turn(text))
        episode.close()
        assert (step.action is not None) == step.accepted, (text, step.violations)


@pytest.mark.parametrize(
    "sql, refused",
    [
        ("ATTACH DATABASE '{canary}' AS x", "not authorized"),
        ("VACUUM INTO '{canary}'", "authorization denied"),
        ("SELECT load_extension('{canary}')", "not authorized"),
        ("PRAGMA hard_heap_limit = 0", "not authorized"),
        ("PRAGMA max_page_count = 999999999", "not authorized"),
        ("SELECT zeroblob(999000000)", "string or blob too big"),
    ],
)
def test_a_sqlite_episode_cannot_reach_a_file_load_code_or_lift_its_limits(sqlite, tmp_path, sql, refused):
    """Each is refused as an observation (the episode goes on), and the canary file is never written."""
    canary = tmp_path / "canary.db"
    task_id = sqlite.task_ids()[0]
    started = time.monotonic()
    episode, steps, _ = replay(sqlite, task_id, [operation(sql.format(canary=canary)), operation("SELECT 1")])
    assert refused in steps[0].observation, steps[0].observation
    assert steps[1].observation == "[(1,)]" and not canary.exists()
    assert time.monotonic() - started < 5


def test_a_sqlite_episode_may_describe_its_own_table(sqlite):
    task_id = sqlite.task_ids()[0]
    table = sqlite.entries[task_id]["table"]["table_name"]
    _, steps, _ = replay(sqlite, task_id, [operation(f"PRAGMA table_info(`{table}`)")])
    assert "TEXT" in steps[0].observation and not sqlite.start(task_id).done


def test_a_huge_result_is_read_only_as_far_as_the_observation_goes(sqlite):
    """A 4-way cross join of a 100-row table is 10^8 rows; the observation needs its first 800 characters."""
    sql = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
           "SELECT * FROM n a, n b, n c, n d")  # fmt: skip
    started = time.monotonic()
    _, steps, _ = replay(sqlite, sqlite.task_ids()[0], [operation(sql)])
    assert steps[0].observation.endswith("[TRUNCATED]") and len(steps[0].observation) == 811
    assert steps[0].observation.startswith("[(1, 1, 1, 1), (1, 1, 1, 2)") and time.monotonic() - started < 2


def test_bounded_observations_equal_agentbenchs_cut():
    from prefkit.envs.dbbench.engines import bounded_observation, truncate

    for rows in ([], [(1,)], [("x" * 797,)], [("x" * 796,)], [(i, "a" * 30) for i in range(40)], [(None, 1.5)]):
        assert bounded_observation(iter(rows)) == truncate(str(rows))


# Names a MySQL server can hold too (no `/`, `.`, `\\` or a trailing space: those it refuses, and the episode
# plays without its table, as AgentBench's would); on SQLite the first also names a file it would write if run.
HOSTILE_NAMES = ["a`b; SELECT 1 INTO OUTFILE '{canary}'; --x", "rate %s of %d", "quote ' and \" both"]


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("mariadb", marks=pytest.mark.slow)])
def test_names_from_a_task_file_are_identifiers_never_sql(tmp_path, engine):
    """A table or column name with backticks, `%` or quotes is created as it is written: nothing it holds runs,
    the gold answer and the grader's table hash still work."""
    canary = tmp_path / "canary.txt"
    rows = []
    for number, name in enumerate(HOSTILE_NAMES):
        name = name.format(canary=canary if engine == "sqlite" else "canary")
        columns = [{"name": f"{name} col", "type": "TEXT"}, {"name": "n%s`", "type": "TEXT"}]
        table = {"table_name": name, "table_info": {"columns": columns, "rows": [["x", "1"], ["y", "2"]]}}
        rows.append({"description": f"How many rows? ({number})", "add_description": "", "table": table,
                     "type": ["counting"], "label": [2]})  # fmt: skip
        rows.append({"description": f"Add a row ({number})", "add_description": "", "table": table,
                     "type": ["INSERT"], "label": ["placeholder"], "answer_md5": ""})  # fmt: skip
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with DBBenchConfig(engine=engine).open(path) as env:
        for task_id, entry in env.entries.items():
            name = entry["table"]["table_name"].replace("`", "``")
            if entry["type"][0] == "counting":
                _, steps, outcome = replay(env, task_id, [operation(f"SELECT COUNT(*) FROM `{name}`"), answer([2])])
                assert steps[0].observation == "[(2,)]" and outcome.success, steps[0].observation
            else:
                episode, steps, outcome = replay(env, task_id, [answer(["nothing changed"])])
                assert outcome.result.get("setup_error") is None and outcome.result["answer"].startswith("[('")
    assert not canary.exists()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT LOAD_FILE('{secret}')",
        "SELECT 'x' INTO OUTFILE '{canary}'",
        "SELECT 'x' INTO DUMPFILE '{canary}'",
        "LOAD DATA INFILE '{secret}' INTO TABLE t",
        "SHUTDOWN",
        "SET GLOBAL max_statement_time = 0",
        "CREATE USER 'intruder'@'localhost'",
        "CREATE EVENT e ON SCHEDULE EVERY 1 SECOND DO SELECT 1",
        "GRANT ALL ON *.* TO 'prefkit'@'localhost'",
    ],
)
def test_a_mariadb_episode_cannot_reach_the_hosts_files_or_the_server(mariadb, tmp_path, sql):
    """Refused as an observation (LOAD_FILE answers NULL), nothing written or read on the host, and the server
    still serves the next statement and the next episode."""
    secret, canary = tmp_path / "secret.txt", tmp_path / "canary.txt"
    secret.write_text("the host's secret")
    task_id = mariadb.task_ids()[0]
    _, steps, _ = replay(mariadb, task_id, [operation(sql.format(secret=secret, canary=canary)), operation("SELECT 1")])
    assert "the host's secret" not in steps[0].observation and not canary.exists()
    assert steps[0].observation == "[(None,)]" or "denied" in steps[0].observation.lower(), steps[0].observation
    assert steps[1].observation == "[(1,)]"
    _, after, _ = replay(mariadb, mariadb.task_ids()[1], [operation("SELECT 1")])
    assert after[0].observation == "[(1,)]"


def test_prefkits_mariadb_runs_as_an_unprivileged_user_when_started_by_root(mariadb):
    import pwd

    server = mariadb._engine.servers[0]
    owner = os.stat(f"/proc/{server._process.pid}").st_uid
    if os.geteuid() == 0 and any(entry.pw_name == "mysql" for entry in pwd.getpwall()):
        assert owner == pwd.getpwnam("mysql").pw_uid
    else:
        assert owner == os.geteuid()


def test_an_episode_cannot_see_change_or_kill_another_episode(mariadb):
    """Each episode speaks as an account of its own, granted on its own database alone."""
    first_id, second_id = mariadb.task_ids()[:2]
    other = mariadb.start(second_id)
    other.prepare()
    try:
        database = other.database.database
        table = quoted(mariadb.entries[second_id]["table"]["table_name"])
        (connection_id,) = [step.observation for step in [other.step(operation("SELECT CONNECTION_ID()"))]]
        number = int(connection_id.strip("[(,)]"))
        _, steps, _ = replay(mariadb, first_id, [
            operation("SHOW DATABASES"),
            operation(f"DELETE FROM {quoted(database)}.{table}"),
            operation(f"KILL {number}"),
            operation("SET PASSWORD = PASSWORD('x')"),
        ])  # fmt: skip
        assert database not in steps[0].observation
        assert "denied" in steps[1].observation.lower() and "thread" in steps[2].observation.lower()
        count = other.step(operation(f"SELECT COUNT(*) FROM {table}")).observation
        assert count == f"[({len(mariadb.entries[second_id]['table']['table_info']['rows'])},)]", count
    finally:
        other.close()
    _, again, _ = replay(mariadb, first_id, [operation("SELECT 1")])  # its account is made anew
    assert again[0].observation == "[(1,)]"


def test_a_database_prefkit_did_not_create_is_never_dropped(tmp_path):
    """A task named like a system database plays under another name; on a server of the user's (a prefix of the
    run's own), a database the run did not create is refused for that episode, never dropped."""
    from prefkit.envs.dbbench.engines import MySQLEngine, database_name
    from prefkit.errors import ServerError

    assert database_name("mysql").startswith("task_") and database_name("Sales") == "Sales"
    assert database_name("Sales", "prefkit_ab12cd34_") == "prefkit_ab12cd34_Sales"
    assert len(database_name("x" * 60, "prefkit_ab12cd34_")) <= 64
    rows = [{"description": "How many?", "add_description": "", "type": ["counting"], "label": [1],
             "table": {"table_name": name, "table_info": {"columns": [{"name": "a", "type": "TEXT"}],
                                                          "rows": [["1"]]}}}
            for name in ("mysql", "customer_data")]  # fmt: skip
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with DBBenchConfig(engine="mariadb").open(path) as env:
        engine: MySQLEngine = env._engine
        system, users = env.task_ids()
        _, steps, outcome = replay(env, system, [operation("SELECT COUNT(*) FROM `mysql`"), answer([1])])
        assert outcome.success and steps[0].observation == "[(1,)]"
        engine.prefix = "prefkit_ab12cd34_"  # as on a server given by --db-url
        admin = engine.connection(0)
        with admin.cursor() as cursor:  # the user's own database, with the name this run would use
            cursor.execute("CREATE DATABASE `prefkit_ab12cd34_customer_data`")
            cursor.execute("CREATE TABLE `prefkit_ab12cd34_customer_data`.keep (v TEXT)")
            cursor.execute("INSERT INTO `prefkit_ab12cd34_customer_data`.keep VALUES ('precious')")
        admin.commit()
        with pytest.raises(ServerError, match="refused an episode's database"):
            env.start(users).prepare()
        with admin.cursor() as cursor:
            cursor.execute("SELECT v FROM `prefkit_ab12cd34_customer_data`.keep")
            assert cursor.fetchall() == [("precious",)]
            cursor.execute("SHOW DATABASES LIKE 'mysql'")
            assert cursor.fetchall() == [("mysql",)]
        admin.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SET STATEMENT max_statement_time=0 FOR SELECT SLEEP(12)",
        "SET STATEMENT max_statement_time=0 FOR "
        "SELECT COUNT(*) FROM seq_1_to_100000 a JOIN seq_1_to_100000 b ON a.seq + b.seq = 7",
    ],
)
def test_a_statement_that_lifts_its_own_time_limit_is_ended_from_outside(mariadb, sql):
    """The session's limit is the episode's to change; the watchdog's is not (limit 2 s, ended a second later)."""
    started = time.monotonic()
    _, steps, _ = replay(mariadb, mariadb.task_ids()[0], [operation(sql), operation("SELECT 1")])
    assert time.monotonic() - started < 8
    assert "interrupted" in steps[0].observation.lower(), steps[0].observation
    assert steps[1].observation == "[(1,)]"
