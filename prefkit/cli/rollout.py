"""`prefkit rollout`: whole episodes played by a policy in an environment, graded as the benchmark grades them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import click
from rich.table import Table

from prefkit.cli.app import console, echo_json, stage_context
from prefkit.cli.options import PATH, build_config, config_option, env_flags_need_env, env_options, pop_config_flags
from prefkit.rollout import RolloutConfig
from prefkit.stage import no_progress


@click.command("rollout")
@click.argument("tasks_path", metavar="TASKS", type=PATH)
@click.option("--out", "out_path", required=True, type=PATH, help="Trajectories (JSONL, appended; a re-run resumes).")
@env_options
@config_option(RolloutConfig, "policy", required=True)
@config_option(RolloutConfig, "samples")
@config_option(RolloutConfig, "temperature")
@config_option(RolloutConfig, "max_tokens")
@config_option(RolloutConfig, "concurrency")
@config_option(RolloutConfig, "limit")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or table.")
def rollout_command(tasks_path, out_path, as_json, quiet, **flags) -> None:
    """Play every task of TASKS (AgentBench's DBBench JSONL, read as it is) to the end with a policy; each
    finished episode is appended to --out with its turns, observations, status and grade.

    A killed run resumes: finished episodes are not played again, and a teacher's answers are cached in
    OUT.cache.sqlite. The mariadb engine starts a MariaDB server of its own (or uses --db-url) and stops it
    at the end.

    \b
    Example:
      prefkit rollout data/corpus/agentbench/dbbench_dev.jsonl --policy openai:qwen3-8b@http://localhost:8000/v1 \\
          --samples 4 --temperature 0.7 --out trajectories.jsonl
      prefkit rollout dev.jsonl --policy replay:turns.jsonl --engine sqlite --out graded.jsonl
    """
    from prefkit.envs.registry import DEFAULT_ENV
    from prefkit.rollout import rollout_file

    given = pop_config_flags(flags)
    env_flags_need_env(given, DEFAULT_ENV)
    config = build_config(RolloutConfig, {"tasks": tasks_path}, given, "rollout options")
    ctx = stage_context(quiet, "rollout options")
    with _success_bar(quiet) as told:
        report = rollout_file(config, out_path, ctx=replace(ctx, progress=no_progress), progress=told)
    if as_json:
        echo_json(report)
    if not quiet:
        _print_table(report, config.env.headline)


def _print_table(report: dict, headline: str | None) -> None:
    table = Table(title=f"prefkit rollout -> {report['out']}")
    table.add_column("")
    table.add_column("", justify="right")
    rate = report["success_rate"]
    rows = [
        ("episodes", report["episodes"]),
        ("already done (resumed)", report["already_done"]),
        ("played now", report["played"]),
        ("success rate", "-" if rate is None else f"{rate:.3f}"),
        *((f"status: {status}", count) for status, count in sorted(report["statuses"].items())),
        *((name, f"{value:.3f}") for name, value in report["metrics"].items() if name == headline),
        ("prompt tokens", report["prompt_tokens"]),
        ("completion tokens", report["completion_tokens"]),
        ("cached turns", report["cache_hits"]),
        ("seconds", f"{report['seconds']:.1f}"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)


@contextmanager
def _success_bar(quiet: bool) -> Iterator[Callable]:
    """A rich bar of finished episodes with the success rate so far (nothing with --quiet or off a terminal)."""
    if quiet or not sys.stderr.isatty():
        yield lambda n, summary: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    with bar:
        task = None

        def told(n: int, summary) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task("rollout", total=summary.episodes, rate="")
            done = summary.already_done + summary.played
            rate = f"success {summary.successes / done:.1%}" if done else ""
            bar.update(task, completed=done, rate=rate)

        yield told
