"""`prefkit tasks`: real agent trajectories -> tasks, one task per assistant turn, the context before it as
`messages` and the real turn as `meta.reference`; then the selection a recipe's `tasks:` section makes
(short contexts, one task per context, a seeded shuffle, a limit, a held-out share for evaluation)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefkit.config import ConfigPath
from prefkit.errors import ConfigError, InputError
from prefkit.jsonl import InvalidLines, iter_jsonl, write_jsonl
from prefkit.outputs import check_outputs, side_file
from prefkit.records import Task, content_hash, context_chars
from prefkit.stage import Output, Plan, Stage, StageContext

SOURCES = ("react", "alfworld-react", "agentbench", "agentbench-os", "messages")
Source = Literal["react", "alfworld-react", "agentbench", "agentbench-os", "messages", "tasks"]


class TasksConfig(BaseModel):
    """Settings of `prefkit tasks` (the `tasks:` section of a recipe)."""

    model_config = ConfigDict(extra="forbid")

    source: Source = Field(
        description="Trajectory layout (react, alfworld-react, agentbench, agentbench-os, messages; see "
        "`prefkit tasks --help`), "
        "or `tasks` for a ready tasks JSONL."
    )
    path: list[ConfigPath] | None = Field(None, description="One or more trajectory (or task) files.")
    max_prompt_chars: int | None = Field(None, ge=1, description="Leave out tasks whose context is longer.")
    unique_contexts: bool = Field(True, description="Keep one task per distinct context.")
    eval_share: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="Share of tasks held out for evaluation, when held-out tasks are written (`--eval-out`; in a "
        "recipe, when it has an eval: section). Held-out tasks are never trained on.",
    )
    limit: int | None = Field(None, ge=1, description="Use at most this many tasks (after shuffling).")
    seed: int = Field(0, description="Shuffle seed.")

    @field_validator("path", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, Path)) else value


def read_tasks(path: str | Path, invalid: InvalidLines | None = None) -> list[dict]:
    """Tasks from JSONL; duplicate ids are an error naming both lines."""
    tasks, first_line = [], {}
    for line, row in iter_jsonl(path, Task, invalid=invalid, skippable=True):
        if row["id"] in first_line:
            raise InputError(
                f"duplicate task id {row['id']!r} (first on line {first_line[row['id']]}); ids must be unique",
                str(path),
                line,
            )
        first_line[row["id"]] = line
        tasks.append(row)
    return tasks


def select_tasks(config: TasksConfig, held_out: bool, invalid: InvalidLines | None = None) -> tuple[list, list]:
    """(tasks, held-out tasks) as the config selects them from its files."""
    tasks: list[dict] = []
    for item in config.path:
        tasks.extend(read_tasks(item, invalid) if config.source == "tasks" else load_tasks(item, config.source))
    if not tasks:
        raise InputError(
            f"no assistant turns found for source {config.source}; is that the right source?", str(config.path[0])
        )
    if config.max_prompt_chars:
        tasks = [t for t in tasks if context_chars(t["messages"]) <= config.max_prompt_chars]
    if config.unique_contexts:
        seen: set[str] = set()
        unique = []
        for task in tasks:
            key = content_hash(task["messages"])
            if key not in seen:
                seen.add(key)
                unique.append(task)
        tasks = unique
    random.Random(config.seed).shuffle(tasks)
    if config.limit:
        tasks = tasks[: config.limit]
    held = round(len(tasks) * config.eval_share) if held_out else 0
    if len(tasks) - held < 1:
        raise InputError("no tasks left after the task settings; loosen max_prompt_chars or limit", str(config.path[0]))
    return tasks[held:], tasks[:held]


def make_tasks(
    config: TasksConfig,
    out: Path,
    eval_out: Path | None = None,
    *,
    skip_invalid: bool = False,
    ctx: StageContext | None = None,
) -> dict[str, Any]:
    """Write the selected tasks to `out` (and the held-out share to `eval_out`); returns the counts."""
    ctx = ctx or StageContext()
    _require_path(config, ctx.source)
    invalid = InvalidLines(side_file(out, "invalid")) if skip_invalid else None
    check_outputs(
        config.path,
        {"--out": out, "--eval-out": eval_out, "--out's invalid lines": invalid.path if invalid is not None else None},
    )
    tasks, held = select_tasks(config, eval_out is not None, invalid)
    write_jsonl(out, tasks)
    if eval_out is not None:
        write_jsonl(eval_out, held)
    report: dict[str, Any] = {"tasks": len(tasks), "held out": len(held)}
    formats: dict[str, int] = {}
    for task in tasks:
        formats[str(task.get("format"))] = formats.get(str(task.get("format")), 0) + 1
    report["formats"] = formats
    if invalid is not None:
        invalid.flush()
        report["invalid lines"] = len(invalid)
    return report


def _require_path(config: TasksConfig, source: str) -> None:
    if not config.path:
        raise ConfigError(f"{source}: missing required setting 'tasks.path'")


def _check(config: TasksConfig, source: str) -> None:
    _require_path(config, source)
    for item in config.path:
        if not Path(item).exists():
            raise ConfigError(f"{source}: tasks file not found: {item}; check tasks.path")


def _plan(config: TasksConfig, plan: Plan) -> TasksConfig:
    if "eval_out" in plan.outputs and not config.eval_share:
        raise ConfigError(f"{plan.source}: the eval stage needs held-out tasks; set tasks.eval_share above 0")
    return config


STAGE = Stage(
    "tasks",
    TasksConfig,
    make_tasks,
    inputs={},
    outputs={"out": Output("tasks", "tasks.jsonl"), "eval_out": Output("eval-tasks", "eval-tasks.jsonl", True)},
    check=_check,
    plan=_plan,
)

SYSTEM_PROMPTS = {
    "react": (
        "Solve the task by interleaving reasoning and actions. Each turn write one line 'Thought N: <reasoning>' "
        "then one line 'Action N: <Tool>[<argument>]' and stop; the tools are Search[entity], Lookup[keyword] "
        "and Finish[answer]."
    ),
    "alfworld": (
        "Interact with a household to solve a task. Each turn output exactly one line: either 'think: <reasoning>' "
        "or one admissible command (e.g. 'go to cabinet 1', 'take apple 1 from countertop 1'). No other text."
    ),
    "tool-call": "Interact with a household to solve a task by calling the take_action tool once per turn.",
}

_ROLE_ALIASES = {"agent": "assistant", "human": "user", "gpt": "assistant", "function": "tool"}
_STEP = re.compile(r"^(Thought|Action|Observation) (\d+): ?(.*)$")


def load_tasks(path: str | Path, source: str) -> list[dict]:
    """Read a trajectory file as-is and split it into tasks (see `SOURCES`)."""
    path = Path(path)
    if source not in SOURCES:
        raise InputError(f"unknown trajectory source {source!r}; choose one of: {', '.join(SOURCES)}")
    if source == "messages" or (source == "agentbench" and path.suffix == ".jsonl"):
        if source == "agentbench":
            from prefkit.envs.dbbench.tasks import first_turn_tasks

            return list(first_turn_tasks(path))
        return list(_messages_tasks(path))
    if source == "agentbench-os":
        return list(_os_tasks(path))
    data = _read_json(path)
    if source == "react":
        return list(_react_tasks(path, data))
    if source == "alfworld-react":
        return list(_alfworld_react_tasks(path, data))
    return list(_agentbench_tasks(path, data))


def _read_json(path: Path, expected: type = dict) -> Any:
    if not path.exists():
        raise InputError("file not found; check the path", str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("not valid UTF-8; re-encode the file as UTF-8", str(path)) from None
    except json.JSONDecodeError as error:
        raise InputError(f"malformed JSON ({error.msg})", str(path), error.lineno) from None
    if expected is not dict:
        return data
    if not isinstance(data, dict) or not data:
        raise InputError("expected a JSON object of named trajectories", str(path))
    return data


def _split(messages: list[dict], format_: str, domain: str, episode: str, extra: dict | None = None) -> Iterator[dict]:
    """One task per assistant message: its context, the message as reference."""
    step = 0
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        context = messages[:index]
        # A turn that follows another assistant turn with no observation between is a continuation,
        # not a next-turn decision; a task needs a context that ends with the environment or the user.
        if not context or context[-1]["role"] not in ("user", "tool"):
            continue
        step += 1
        task_id = f"{domain}-{episode}-t{step}-{content_hash(context, message, length=8)}"
        meta = {"reference": message, "episode": episode, "step": step, **(extra or {})}
        yield {"id": task_id, "messages": context, "format": format_, "domain": domain, "meta": meta}


def _react_tasks(path: Path, data: dict) -> Iterator[dict]:
    for name, text in data.items():
        if not isinstance(text, str):
            raise InputError(f"trajectory {name!r} is not a string", str(path))
        for number, example in enumerate(re.split(r"\n\s*\n", text.strip())):
            messages = _react_messages(example)
            if messages:
                yield from _split(messages, "react", "fever", f"{name}-{number}", {"source": str(path.name)})


def _react_messages(example: str) -> list[dict]:
    """Numbered ReAct text -> chat: instruction/claim as user, Thought+Action as assistant, Observation as user."""
    head, turns, current = [], [], None
    for line in example.strip().splitlines():
        step = _STEP.match(line)
        if step is None:
            if current is None and not turns:
                head.append(line)
            elif current is not None:
                current["content"] += "\n" + line
            continue
        kind = step.group(1)
        if kind == "Observation":
            current = {"role": "user", "content": line}
            turns.append(current)
        elif kind == "Thought" or current is None or current["role"] != "assistant":
            current = {"role": "assistant", "content": line}
            turns.append(current)
        else:
            current["content"] += "\n" + line
    if not any(t["role"] == "assistant" and "Action" in t["content"] for t in turns):
        return []
    return [
        {"role": "system", "content": SYSTEM_PROMPTS["react"]},
        {"role": "user", "content": "\n".join(head).strip()},
        *turns,
    ]


def _alfworld_react_tasks(path: Path, data: dict) -> Iterator[dict]:
    for name, text in data.items():
        if not isinstance(text, str):
            raise InputError(f"trajectory {name!r} is not a string", str(path))
        messages = [{"role": "system", "content": SYSTEM_PROMPTS["alfworld"]}]
        observation: list[str] = []
        for line in text.strip().splitlines():
            if line.startswith("> "):
                if observation:
                    messages.append({"role": "user", "content": "\n".join(observation)})
                    observation = []
                messages.append({"role": "assistant", "content": line[2:].strip()})
            else:
                observation.append(line)
        yield from _split(messages, "alfworld", "alfworld", name, {"source": str(path.name)})


def _agentbench_tasks(path: Path, data: dict) -> Iterator[dict]:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "take_action",
                "description": "Take one action in the household environment.",
                "parameters": {"type": "object", "properties": {"action": {"type": "string"}}, "required": ["action"]},
            },
        }
    ]
    for name, episode in data.items():
        if not isinstance(episode, list):
            raise InputError(f"episode {name!r} is not a list of messages", str(path))
        messages = [{"role": "system", "content": SYSTEM_PROMPTS["tool-call"]}]
        messages += [_normalise(message, path) for message in episode]
        spec = {"tools": tools}
        yield from _split(messages, "tool-call", "alfworld", name, {"source": str(path.name), "action_spec": spec})


def _os_tasks(path: Path) -> Iterator[dict]:
    """AgentBench OS interaction trajectories: a JSON list of user/agent messages (one episode, as the task's
    own history keeps it), a list of such lists, or an object of named ones. The instruction is the first user
    message, as AgentBench sends it; tasks are in the `os` format."""
    data = _read_json(path, list)
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        episodes = {path.stem: data}
    elif isinstance(data, list) and data and all(isinstance(item, list) for item in data):
        episodes = {f"{path.stem}-{number}": episode for number, episode in enumerate(data)}
    elif isinstance(data, dict) and data and all(isinstance(item, list) for item in data.values()):
        episodes = {str(name): episode for name, episode in data.items()}
    else:
        raise InputError(
            "expected a JSON list of messages, a list of such lists, or an object of named lists", str(path)
        )
    for name, episode in episodes.items():
        messages = [_normalise(message, path) for message in episode]
        if not any(message["role"] == "assistant" for message in messages):
            raise InputError(f"episode {name!r} has no agent turn", str(path))
        yield from _split(messages, "os", "os", name, {"source": str(path.name)})


def _normalise(message: dict, path: Path) -> dict:
    """A chat message with OpenAI role names and without null-valued keys."""
    if not isinstance(message, dict) or "role" not in message:
        raise InputError("a message without a role", str(path))
    role = _ROLE_ALIASES.get(message["role"], message["role"])
    if role not in ("system", "user", "assistant", "tool"):
        raise InputError(f"unknown message role {message['role']!r}", str(path))
    clean = {key: value for key, value in message.items() if value is not None and key != "role"}
    return {"role": role, **clean}


def _messages_tasks(path: Path) -> Iterator[dict]:
    for line, row in iter_jsonl(path):
        messages = row.get("messages", row.get("conversations"))
        if not isinstance(messages, list) or not messages:
            raise InputError("expected a 'messages' list", str(path), line)
        messages = [_normalise(message, path) for message in messages]
        episode = str(row.get("id", f"l{line}"))
        yield from _split(
            messages, row.get("format"), row.get("domain", "messages"), episode, dict(row.get("meta") or {})
        )
