"""`prefkit tasks`: trajectories -> tasks, selected as a recipe's tasks: section selects them."""

from __future__ import annotations

import click

from prefkit.cli.app import console, echo_json, offering_skip_invalid, stage_context
from prefkit.cli.options import PATH, build_config, config_option, pop_config_flags
from prefkit.tasks import TasksConfig


@click.command("tasks")
@click.argument("trajectories", nargs=-1, required=True, type=PATH)
@config_option(TasksConfig, "source", "--from", required=True)
@click.option("--out", "out_path", required=True, type=PATH, help="Tasks (JSONL).")
@click.option("--eval-out", "eval_path", type=PATH, help="Hold out --eval-share of the tasks into this file.")
@config_option(TasksConfig, "max_prompt_chars")
@config_option(TasksConfig, "unique_contexts", negative="all-contexts")
@config_option(TasksConfig, "eval_share")
@config_option(TasksConfig, "limit")
@config_option(TasksConfig, "seed")
@click.option("--skip-invalid", is_flag=True, help="--from tasks: set aside unreadable lines in OUT.invalid.jsonl.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
def tasks_command(trajectories, out_path, eval_path, skip_invalid, as_json, quiet, **flags) -> None:
    """Split real trajectories into tasks: one per assistant turn, the real turn kept as meta.reference.

    Tasks are then selected as a recipe's tasks: section selects them: one per distinct context, shuffled
    with --seed, at most --limit, and with --eval-out a held-out share for `prefkit eval`.

    \b
    Sources:
      react           ReAct paper prompts with numbered Thought N / Action N / Observation N (fever.json)
      alfworld-react  ReAct ALFWorld prompts with "> think: ..." / "> command" lines
      agentbench      AgentBench multi-turn JSON (roles user/agent/tool, tool calls) or DBBench .jsonl tasks
      agentbench-os   AgentBench OS interaction: a JSON list of user/agent messages (or a list of them)
      messages        JSONL of {"messages": [...]} conversations
      tasks           a tasks JSONL (to select from it again)

    \b
    Example:
      prefkit tasks data/corpus/react/alfworld_3prompts.json --from alfworld-react --out tasks.jsonl
      prefkit tasks a.json b.json --from alfworld-react --out tasks.jsonl --eval-out eval.jsonl --eval-share 0.2
    """
    from prefkit.tasks import make_tasks

    given = pop_config_flags(flags)
    if "eval_share" in given and eval_path is None:
        raise click.UsageError("--eval-share needs --eval-out (where the held-out tasks go)")
    config = build_config(TasksConfig, {"path": list(trajectories)}, given, "tasks options")
    with offering_skip_invalid():
        report = make_tasks(config, out_path, eval_path, skip_invalid=skip_invalid, ctx=stage_context(quiet))
    if as_json:
        echo_json(report)
    elif not quiet:
        formats = ", ".join(f"{k}: {v}" for k, v in report["formats"].items())
        held = f"; {report['held out']} held out -> {eval_path}" if eval_path else ""
        console.print(f"{report['tasks']} tasks -> {out_path} ({formats}){held}")
