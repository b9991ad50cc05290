"""AgentBench DBBench, played and graded as THUDM/AgentBench branch v0.2 plays and grades it (commit
41e6807349f741e06428fae3e9e4d334e7002362, `src/server/tasks/dbbench/__init__.py`):

- the episode opens with the instruction prompt as a user turn, an injected "Ok." agent turn, then the
  question (`description + "\\n" + add_description`);
- a turn operates when `re.search(r"Action: (.*?)\\n")` reads exactly `Operation` and fewer than `max_round`
  statements have run (5, the task code's default; AgentBench's shipped config sets 15): the first
  ```` ```sql ```` block, stripped, its newlines made spaces, is executed and its observation sent back (an
  empty one as ""); an operation with no block fails the sample (agent validation failed);
- any other turn ends the episode with the answer `re.search(r"\\nFinal Answer:(.*)")` reads (completed), or
  with none (agent validation failed; task limit reached once `max_round` statements have run);
- the grade: for INSERT/DELETE/UPDATE tasks the table hash (`engines.hash_query`) against `answer_md5`,
  computed however the episode ended; for the others `list(eval(answer))` (or `[answer]`) against the
  label: one value each compared as floats when both parse, else as text; several as sets. `eval` is not run
  on model output here: literals and arithmetic on them are evaluated, anything else counts as not
  evaluable, as AgentBench's bare `except` treats a NameError;
- the metrics: an accuracy per type, where SELECT counts every task that is not INSERT or UPDATE, and
  `overall_cat_accuracy`, the mean of the SELECT, INSERT and UPDATE accuracies.

The per-step progress signal is 1 for a step whose statement ran without an error message and 0 otherwise;
the last step carries the episode's success.
"""

from __future__ import annotations

import ast
import operator
import threading
import time
from pathlib import Path
from typing import Any

from prefkit.envs.base import Environment, Episode, Outcome, Step
from prefkit.envs.dbbench import NAME
from prefkit.envs.dbbench.engines import Database, Engine, open_engine
from prefkit.envs.dbbench.tasks import task_id as id_of
from prefkit.errors import InputError
from prefkit.formats import ActionSpec, parse_turn
from prefkit.formats.react import DBBENCH_ACTION, DBBENCH_ANSWER, DBBENCH_SQL
from prefkit.jsonl import iter_jsonl

# The instruction prompt of dbbench/__init__.py (`big_prompt`), Apache-2.0, THUDM/AgentBench.
INSTRUCTION = """
I will ask you a question, then you should help me operate a MySQL database with SQL to answer the question.
You have to explain the problem and your solution to me and write down your thoughts.
After thinking and explaining thoroughly, every round you can choose to operate or to answer.
your operation should be like this:
Action: Operation
```sql
SELECT * FROM table WHERE condition;
```
You MUST put SQL in markdown format without any other comments. Your SQL should be in one line.
Every time you can only execute one SQL statement. I will only execute the statement in the first SQL code block. Every time you write a SQL, I will execute it for you and give you the output.
If you are done operating, and you want to commit your final answer, then write down:
Action: Answer
Final Answer: ["ANSWER1", "ANSWER2", ...]
DO NOT write this pattern unless you are sure about your answer. I expect an accurate and correct answer.
Your answer should be accurate. Your answer must be exactly the same as the correct answer.
If the question is about modifying the database, then after done operating, your answer field can be anything.
If your response cannot match any pattern I mentioned earlier, you will be judged as FAIL immediately.
Your input will be raw MySQL response, you have to deal with it by yourself.
"""  # noqa: E501

COMPLETED = "completed"
VALIDATION_FAILED = "agent validation failed"
TASK_LIMIT = "task limit reached"
CONTEXT_LIMIT = "agent context limit"
UNKNOWN = "unknown"
STATUSES = (COMPLETED, VALIDATION_FAILED, TASK_LIMIT, CONTEXT_LIMIT, UNKNOWN)
MODIFYING = ("INSERT", "DELETE", "UPDATE")
TYPES = (
    "other", "counting", "comparison", "ranking", "aggregation-SUM", "aggregation-MIN", "aggregation-MAX",
    "aggregation-AVG", "SELECT", "INSERT", "UPDATE",
)  # fmt: skip

_SPEC = ActionSpec(style="dbbench")


class DBBench(Environment):
    """DBBench tasks from AgentBench's own JSONL on an engine (mariadb: a server prefkit starts, or `db_url`)."""

    name = NAME

    def __init__(
        self,
        tasks_path: str | Path,
        engine: str = "mariadb",
        db_url: str | None = None,
        max_round: int = 5,
        statement_timeout: float = 10.0,
        concurrency: int = 1,
    ):
        self.path = Path(tasks_path)
        if not self.path.exists():
            raise InputError("file not found; check the path", str(self.path))
        self.max_round = max_round
        self.entries: dict[str, dict] = {}
        for line, row in _rows(self.path):
            _check_entry(row, self.path, line)
            self.entries[id_of(line, row)] = row
        if not self.entries:
            raise InputError("no DBBench tasks in the file", str(self.path))
        # Episodes of tasks sharing a table name cannot share a server: enough servers for `concurrency`
        # episodes to run at once however many of them are samples of one task, and one more, as episodes of
        # different lengths drift the order they end in (at most 8).
        names = len({row["table"]["table_name"] for row in self.entries.values()})
        servers = min(8, -(-concurrency // names) + 1) if concurrency > 1 else 1
        self._engine: Engine = open_engine(engine, db_url, statement_timeout, servers)
        self.engine = self._engine.name

    def task_ids(self) -> list[str]:
        return list(self.entries)

    def start(self, task_id: str, sample: int = 0) -> DBBenchEpisode:
        return DBBenchEpisode(task_id, self.entries[task_id], self._engine, self.max_round)

    def summarise(self, outcomes: list[tuple[str, Outcome]]) -> dict[str, Any]:
        return metrics([(self.entries[task_id], outcome) for task_id, outcome in outcomes])

    def close(self) -> None:
        self._engine.close()


def _rows(path: Path):
    """(line or index, row) of a DBBench file: JSON Lines, or a JSON list when the name ends in .json, as
    AgentBench reads either."""
    if path.suffix != ".json":
        yield from iter_jsonl(path)
        return
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"not a JSON list of DBBench tasks ({error})", str(path)) from None
    if not isinstance(data, list):
        raise InputError("expected a JSON list of DBBench tasks", str(path))
    for index, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            raise InputError(f"item {index} is not a task object", str(path))
        yield index, row


def _check_entry(row: dict, path: Path, line: int) -> None:
    """What playing and grading a row needs, checked before any episode (one line naming what is missing)."""
    table = row.get("table") or {}
    info = table.get("table_info") if isinstance(table, dict) else None
    if not isinstance(table.get("table_name"), str) or not isinstance(info, dict):
        raise InputError("a DBBench task needs table.table_name and table.table_info", str(path), line)
    if not isinstance(info.get("columns"), list) or not isinstance(info.get("rows"), list):
        raise InputError("a DBBench task needs table.table_info.columns and .rows", str(path), line)
    if not isinstance(row.get("description"), str) or not isinstance(row.get("type"), list) or not row["type"]:
        raise InputError('a DBBench task needs its description and type (a list, e.g. ["SELECT"])', str(path), line)
    kind = row["type"][0]
    if kind in MODIFYING and not isinstance(row.get("answer_md5"), str):
        raise InputError(f"a {kind} task needs its answer_md5", str(path), line)
    if kind not in MODIFYING and not isinstance(row.get("label"), list):
        raise InputError("a DBBench question needs its label (a list of answers)", str(path), line)


class DBBenchEpisode(Episode):
    """One DBBench task being played on its own database."""

    def __init__(self, task_id: str, entry: dict, engine: Engine, max_round: int):
        self.task_id, self.entry, self.max_round = task_id, entry, max_round
        self.messages = [
            {"role": "user", "content": INSTRUCTION},
            {"role": "assistant", "content": "Ok."},
            {"role": "user", "content": entry["description"] + "\n" + entry.get("add_description", "")},
        ]
        self.engine = engine
        self.database: Database | None = None
        self._prepared = threading.Lock()
        self._closed = False
        self.rounds = 0
        self.done = False
        self.status = COMPLETED
        self.answer = ""
        self.steps: list[Step] = []
        self._failed: list[bool] = []  # per executed statement: did it answer with an error
        self.error = ""

    def prepare(self) -> None:
        with self._prepared:
            if self.database is None and not self._closed:
                self.database = self.engine.create(self.entry)

    def step(self, message: dict) -> Step:
        if self.done:
            raise RuntimeError("the episode is over")
        self.prepare()
        started = time.monotonic()
        content = message.get("content")
        if content is None and self.steps:
            # AgentBench reads `res.content` unguarded after the first turn: re.search(None) raises -> unknown
            self.error = "expected string or bytes-like object, got 'NoneType'"
            self._end(UNKNOWN)
        text = content or ""
        self.messages.append({"role": "assistant", "content": text})
        parsed = parse_turn("react", {"role": "assistant", "content": text}, _SPEC)
        step = Step(turn=len(self.steps) + 1, accepted=parsed.accepted, violations=parsed.codes)
        action = DBBENCH_ACTION.search(text)
        try:
            if self.done:
                pass
            elif action and action.group(1) == "Operation" and self.rounds < self.max_round:
                block = DBBENCH_SQL.search(text)
                if block is None:
                    self._end(VALIDATION_FAILED)
                else:
                    sql = block.group(1).strip().replace("\n", " ")
                    step.action = {"name": "Operation", "argument": sql}
                    observation = self.database.execute(sql) or ""
                    self.rounds += 1
                    step.observation = observation
                    self._failed.append(self.database.failed)
                    self.messages.append({"role": "user", "content": observation})
            else:
                answer = DBBENCH_ANSWER.search(text)
                status = COMPLETED
                if answer is not None:
                    self.answer = answer.group(1)
                    step.action = {"name": "Answer", "argument": self.answer}
                else:
                    self.answer, status = "", VALIDATION_FAILED
                if self.rounds >= self.max_round and not self.answer:
                    status = TASK_LIMIT
                self._end(status)
        except Exception as error:  # AgentBench: any exception in the loop is an unknown failure
            self.error = str(error)
            self.answer = ""
            self._end(UNKNOWN)
        step.done = self.done
        step.seconds = round(time.monotonic() - started, 6)
        self.steps.append(step)
        return step

    def _end(self, status: str) -> None:
        self.status, self.done = status, True

    def stop(self, status: str) -> None:
        if not self.done:
            self.answer = ""
            self._end(status if status in STATUSES else UNKNOWN)

    def grade(self) -> Outcome:
        self.prepare()
        kind = self.entry["type"][0]
        if kind in MODIFYING:
            answer = self.database.table_hash() if self.database is not None else ""
            success = answer == self.entry["answer_md5"]
        else:
            answer = str(self.answer)
            success = answer_matches(answer, self.entry["label"])
        failed = iter(self._failed)
        progress = [0.0 if step.observation is not None and next(failed) else 1.0 for step in self.steps]
        if progress:
            progress[-1] = float(success)
        result = {"answer": answer, "type": kind, "error": self.error, "rounds": self.rounds}
        if self.database is not None and self.database.setup_error:
            result["setup_error"] = self.database.setup_error
        return Outcome(self.status, success, float(success), result, progress)

    def close(self) -> None:
        with self._prepared:
            self._closed = True
            if self.database is not None:
                self.database.close()
                self.database = None


def answer_matches(answer: str, label: list) -> bool:
    """AgentBench's metric for a question's answer (dbbench/__init__.py `factory.acc`)."""
    try:
        values = list(safe_eval(answer))
    except Exception:
        values = [answer]
    if len(values) == 1 and len(label) == 1:
        try:
            return float(values[0]) == float(label[0])
        except (ValueError, TypeError):
            return values[0] == label[0]
    try:
        return set(label) == set(values)
    except TypeError:
        return False


_OPERATORS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.USub: operator.neg, ast.UAdd: operator.pos,
}  # fmt: skip


def safe_eval(text: str) -> Any:
    """Python's `eval` for what an answer holds (literals, containers, arithmetic on numbers); anything else
    (a name, a call, an attribute) raises, as it would make AgentBench's `eval` raise or run code."""
    # eval() drops leading spaces and tabs of a string source; ast.parse would call them an indent
    return _evaluate(ast.parse(text.lstrip(" \t"), mode="eval").body)


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_evaluate(item) for item in node.elts]
        return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict):
        return {_evaluate(key): _evaluate(value) for key, value in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_number(_evaluate(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _number(_evaluate(node.left)), _number(_evaluate(node.right))
        if isinstance(node.op, ast.Pow) and abs(right) > 1000:
            raise ValueError("exponent too large to evaluate")
        return _OPERATORS[type(node.op)](left, right)
    raise ValueError(f"{type(node).__name__} is not evaluated")


def _number(value: Any) -> int | float | complex:
    """Arithmetic is evaluated on numbers only (not on strings or lists, which eval would also combine)."""
    if not isinstance(value, (int, float, complex)):
        raise ValueError("arithmetic on a non-number")
    return value


def metrics(graded: list[tuple[dict, Outcome]]) -> dict[str, float]:
    """AgentBench's per-type accuracies and overall_cat_accuracy (dbbench/__init__.py `metrics`)."""
    out = {}
    for kind in TYPES:
        correct = total = 0
        for entry, outcome in graded:
            found = entry["type"][0]
            if found != kind and not (kind == "SELECT" and found not in ("INSERT", "UPDATE")):
                continue
            correct += outcome.success
            total += 1
        out[f"{kind}_accuracy"] = correct / total if total else 0.0
    out["overall_cat_accuracy"] = sum(out[f"{kind}_accuracy"] for kind in ("SELECT", "INSERT", "UPDATE")) / 3
    return out
